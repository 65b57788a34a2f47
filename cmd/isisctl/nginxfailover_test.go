package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestNginxFailoverSkipsLameDuck: the rendered nginx config (quadlets/ is
// what templates/ renders) in front of slot A as a lame duck (503 to GETs
// marked X-Isis-Failover, POSTs served, as isis on SIGTERM) and slot B.
// Once A's 503s have marked it down, no request reaches A any more, by any
// of its upstream entries: a POST sent to A as it closes its listener
// could be reset, and nginx does not resend a POST (a 502). Every answer
// comes from B.
func TestNginxFailoverSkipsLameDuck(t *testing.T) {
	needTool(t, "nginx")
	rendered, err := os.ReadFile(filepath.Join("..", "..", "quadlets", "proxy", "nginx-isis.conf"))
	if err != nil {
		t.Fatal(err)
	}
	var atA atomic.Int32
	serve := func(name string, lame bool) string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			if lame {
				atA.Add(1)
				w.Header().Set("Connection", "close")
				if r.Method == http.MethodGet && r.Header.Get("X-Isis-Failover") != "" {
					w.WriteHeader(http.StatusServiceUnavailable)
					return
				}
			}
			io.WriteString(w, name)
		})}
		go srv.Serve(ln)
		t.Cleanup(func() { srv.Close() })
		return ln.Addr().String()
	}
	a, b := serve("A", true), serve("B", false)
	conf := strings.NewReplacer("127.0.0.1:3003", a, "127.0.0.1:3004", b).Replace(string(rendered))
	port := startNginx(t, conf)
	client := &http.Client{Timeout: 10 * time.Second}
	send := func(method string) (int, string) {
		req, _ := http.NewRequest(method, fmt.Sprintf("http://127.0.0.1:%d/api/x/", port), strings.NewReader("{}"))
		req.Host = e2eDomain
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(body)
	}
	// A's lame duck: GETs and POSTs as the load test sends them, until
	// nginx has marked A down (ten 503s, at most one request per GET).
	for i := 0; i < 40; i++ {
		method := http.MethodGet
		if i%4 == 3 {
			method = http.MethodPost
		}
		if status, body := send(method); status != 200 {
			t.Fatalf("%s %d: %d %q", method, i, status, body)
		}
	}
	before := atA.Load()
	for i := 0; i < 30; i++ {
		method := http.MethodGet
		if i%2 == 1 {
			method = http.MethodPost
		}
		if status, body := send(method); status != 200 || body != "B" {
			t.Errorf("%s %d after A was marked down: %d %q, want 200 from B", method, i, status, body)
		}
	}
	if n := atA.Load() - before; n > 0 {
		t.Errorf("%d request(s) reached the lame duck A after nginx had marked it down", n)
	}
}
