// fib in Zig: the size-vs-speed snippet (the same function in every language)
export fn fib(n: i32) i32 {
    return if (n < 2) n else fib(n - 1) + fib(n - 2);
}
