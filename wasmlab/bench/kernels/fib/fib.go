// fib in Go: the size-vs-speed snippet (the same function in every language)
package main

//go:wasmexport fib
func fib(n int32) int32 {
	if n < 2 {
		return n
	}
	return fib(n-1) + fib(n-2)
}

func main() {}
