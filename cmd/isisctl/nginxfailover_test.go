package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
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

// TestNginxRidesOutDroppedSYN: the rendered nginx config in front of two
// slots of which one refuses (being replaced) and the other drops
// connections for a while (the kernel drops the SYN when a slot's accept
// queue is full, as when a loaded slot falls behind or a port forward is
// being rewritten). Linux resends a dropped SYN after 1 s and 3 s.
//   - A's queue full for half a second, B refusing: with
//     proxy_connect_timeout 1s the connect to A timed out as the second SYN
//     went out, B refused, and a GET got a 502 in a zero-downtime run. On a
//     quiet machine the second SYN wins that race, so the timeout's margin
//     is checked as a rule too: 2 s, short of the third SYN (3 s).
//   - A refusing, B's queue full for 4.5 s (a fresh machine's zero-downtime
//     run timed out twice on B's port while A was down): B's three backup
//     entries, 2 s each, outlast it.
func TestNginxRidesOutDroppedSYN(t *testing.T) {
	needTool(t, "nginx")
	rendered, err := os.ReadFile(filepath.Join("..", "..", "quadlets", "proxy", "nginx-isis.conf"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`proxy_connect_timeout (\d+)s;`).FindSubmatch(rendered)
	if m == nil {
		t.Fatal("no proxy_connect_timeout in seconds in the rendered nginx config")
	}
	if s, _ := strconv.Atoi(string(m[1])); s < 2 || s >= 3 {
		t.Errorf("proxy_connect_timeout %ss: want 2s (a dropped SYN is sent again after 1 s, the third after 3 s)", m[1])
	}
	for _, tc := range []struct {
		name string
		full time.Duration // how long the slot that answers drops SYNs
		slot string        // which slot answers ("A" or "B"); the other refuses
	}{
		{"A behind, B refusing", 500 * time.Millisecond, "A"},
		{"A refusing, B behind", 4500 * time.Millisecond, "B"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ln := fullListener(t)
			answering, refusing := ln.Addr().String(), refusedAddr(t)
			a, b := answering, refusing
			if tc.slot == "B" {
				a, b = refusing, answering
			}
			conf := strings.NewReplacer("127.0.0.1:3003", a, "127.0.0.1:3004", b).Replace(string(rendered))
			port := startNginx(t, conf)
			srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, tc.slot)
			})}
			t.Cleanup(func() { srv.Close() })
			time.AfterFunc(tc.full, func() { go srv.Serve(ln) })

			req, _ := http.NewRequest(http.MethodPost, fmt.Sprintf("http://127.0.0.1:%d/api/token/verify/", port), strings.NewReader("{}"))
			req.Host = e2eDomain
			start := time.Now()
			res, err := (&http.Client{Timeout: 20 * time.Second}).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if took := time.Since(start); took < 900*time.Millisecond {
				t.Fatalf("answered in %s: nginx's first SYN was not dropped, so this test proved nothing", took)
			}
			if res.StatusCode != 200 || string(body) != tc.slot {
				t.Errorf("POST while %s's queue was full for %s and the other slot refused: %d %q, want 200 from %s",
					tc.slot, tc.full, res.StatusCode, body, tc.slot)
			}
		})
	}
}

// fullListener is a loopback listener with the smallest accept queue,
// filled by connections nobody accepts: the kernel drops every further
// SYN until the listener is served.
func fullListener(t *testing.T) net.Listener {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	file := os.NewFile(uintptr(fd), "slot")
	ln, err := net.FileListener(file)
	file.Close()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	// The queue holds backlog+1 connections: dial until one hangs.
	for i := 0; i < 4; i++ {
		c, err := net.DialTimeout("tcp", ln.Addr().String(), 200*time.Millisecond)
		if err != nil {
			break
		}
		t.Cleanup(func() { c.Close() })
	}
	return ln
}

// refusedAddr is a loopback address nothing listens on.
func refusedAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}
