// fib in AssemblyScript: the size-vs-speed snippet (the same function in every language)
export function fib(n: i32): i32 {
  return n < 2 ? n : fib(n - 1) + fib(n - 2);
}
