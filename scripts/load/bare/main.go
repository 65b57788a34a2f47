// Command bare is the ceiling for scripts/load.sh: a bare net/http handler
// answering what /api/health/ answers, on the same machine.
package main

import (
	"log"
	"net/http"
	"os"
)

func main() {
	body := []byte(`{"status":"ok","version":"bare"}`)
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	})
	log.Fatal(http.ListenAndServe(os.Args[1], nil))
}
