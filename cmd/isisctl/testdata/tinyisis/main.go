// A tiny stand-in for the isis binary: the image the registry test pushes
// and pulls (small, and its own content, so no other test's image is touched).
package main

import (
	"fmt"
	"os"
)

var tag = "tinyisis"

func main() { fmt.Println(tag, os.Args[1:]) }
