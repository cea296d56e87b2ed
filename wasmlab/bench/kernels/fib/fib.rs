// fib in Rust: the size-vs-speed snippet (the same function in every language)
#[no_mangle]
pub extern "C" fn fib(n: i32) -> i32 {
    if n < 2 { n } else { fib(n - 1) + fib(n - 2) }
}
