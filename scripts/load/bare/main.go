// Command bare is the ceiling for scripts/load.sh: a bare net/http handler
// answering what /api/health/ answers, on the same machine.
//
// Usage: bare ADDR [URI=FILE ...]. Each FILE is an answer isis gave, as
// `curl -sD FILE.hdr -o FILE.body` saved it: for that request URI (path and
// query) the handler sends the same headers (but Date, which net/http adds)
// and the same body, so an isis endpoint is compared with a bare handler
// sending the same bytes.
package main

import (
	"bufio"
	"bytes"
	"log"
	"net/http"
	"net/textproto"
	"os"
	"strings"
)

type answer struct {
	hdr  http.Header
	body []byte
}

func load(file string) answer {
	body, err := os.ReadFile(file + ".body")
	if err != nil {
		log.Fatal(err)
	}
	raw, err := os.ReadFile(file + ".hdr")
	if err != nil {
		log.Fatal(err)
	}
	tp := textproto.NewReader(bufio.NewReader(bytes.NewReader(raw)))
	if _, err := tp.ReadLine(); err != nil { // the status line
		log.Fatal(err)
	}
	h, err := tp.ReadMIMEHeader()
	if err != nil {
		log.Fatal(err)
	}
	delete(h, "Date")
	return answer{http.Header(h), body}
}

func main() {
	health := []byte(`{"status":"ok","version":"bare"}`)
	answers := map[string]answer{}
	for _, arg := range os.Args[2:] {
		i := strings.LastIndexByte(arg, '=') // a query has = too, a file name here not
		if i < 0 {
			log.Fatalf("bare: %q is not URI=FILE", arg)
		}
		answers[arg[:i]] = load(arg[i+1:])
	}
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if a, ok := answers[r.URL.RequestURI()]; ok {
			h := w.Header()
			for k, v := range a.hdr {
				h[k] = v
			}
			w.Write(a.body)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(health)
	})
	log.Fatal(http.ListenAndServe(os.Args[1], nil))
}
