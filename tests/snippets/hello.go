package main

import (
	"fmt"
	"os"
)

func main() { fmt.Printf("hello from go, %d args\n", len(os.Args)) }
