// A deliberately broken stand-in for the isis binary, for isisctl's
// end-to-end tests. Built with -ldflags "-X main.mode=health|migrate".
package main

import (
	"fmt"
	"os"
	"time"
)

var mode = "health"

func main() {
	cmd := "serve"
	if len(os.Args) > 1 {
		cmd = os.Args[1]
	}
	switch cmd {
	case "healthcheck":
		if mode == "health" {
			fmt.Println("broken on purpose: unhealthy")
			os.Exit(1)
		}
	case "migrate":
		if mode == "migrate" {
			fmt.Println("Applying 0099_broken... FAILED: broken on purpose")
			os.Exit(1)
		}
		fmt.Println("No migrations to apply.")
	case "collectstatic":
		fmt.Println("0 static file(s) copied")
	case "serve":
		fmt.Println("broken isis: serving nothing")
		time.Sleep(time.Hour)
	}
}
