/* fib in C: the size-vs-speed snippet (the same function in every language) */
int fib(int n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); }
