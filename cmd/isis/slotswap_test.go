package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/isis-project/isis/internal/pgtest"
)

// TestSlotSwapWrites: the two backend slots as isisctl deploy swaps them
// (B replaced first, then A, each drained by SIGTERM and its successor
// proven ready before the next step), as plain isis processes on one
// database, behind real nginx and real Caddy running the configurations
// isisctl renders. Clients send authenticated PATCHes and GETs through both
// proxies all along; a proxy never resends a write, so every one must get
// a 2xx. ISIS_SWAPS sets the number of swaps (default 3). The same run
// through Podman is cmd/isisctl's TestDeployWrites.
func TestSlotSwapWrites(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	swaps := 3
	if v := os.Getenv("ISIS_SWAPS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("ISIS_SWAPS=%q: want a count, 1 or more", v)
		}
		swaps = n
	}
	for _, p := range []string{"/usr/sbin/nginx", "/usr/bin/caddy"} {
		needTool(t, p, map[string]string{"/usr/sbin/nginx": "nginx-light", "/usr/bin/caddy": "caddy"}[p])
	}
	dsn := pgtest.NewDatabase(t, "", nil)
	if _, e, code := isis(t, map[string]string{"DATABASE_URL": dsn}, "migrate"); code != 0 {
		t.Fatal(e)
	}
	// Slot B listens on A's port + 1, as isisctl publishes them.
	pa := freePort(t)
	for !portFree(pa + 1) {
		pa = freePort(t)
	}
	env := map[string]string{"DATABASE_URL": dsn, "ALLOWED_HOSTS": proxyDomain + ",localhost,127.0.0.1",
		"CLIENT_IP_HEADER": "X-Forwarded-For", "ACCESS_TOKEN_LIFETIME": "1h",
		// As isisctl sets them (ops/spec).
		"SHUTDOWN_DELAY": "1s", "SHUTDOWN_TIMEOUT": "25s"}
	slot := func(port int) map[string]string {
		e := map[string]string{"PORT": strconv.Itoa(port)}
		for k, v := range env {
			e[k] = v
		}
		return e
	}
	var mu sync.Mutex
	slots := []*server{startServer(t, slot(pa)), startServer(t, slot(pa+1))}
	started := []time.Time{time.Now(), time.Now()}
	tok := token(t, dsn, slots[0].base)

	proxies := map[string]string{} // name: https address
	dir := t.TempDir()
	cert, key, certPool := testCert(t, dir)
	for _, name := range []string{"nginx", "caddy"} {
		pd := t.TempDir()
		httpAddr, httpsAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t)), fmt.Sprintf("127.0.0.1:%d", freePort(t))
		startProxy(t, name, pd, renderProxy(t, pd, fmt.Sprintf("127.0.0.1:%d", pa), httpAddr, httpsAddr, cert, key))
		proxies[name] = httpsAddr
		waitUpVia(t, proxyClient(httpsAddr, certPool), "https://"+proxyDomain+"/api/health/")
	}

	type count struct{ reads, writes, badReads, badWrites atomic.Int64 }
	counts := map[string]*count{"nginx": {}, "caddy": {}}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var failures []string
	for name, addr := range proxies {
		for w := 0; w < 3; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				client := proxyClient(addr, certPool)
				client.Timeout = 20 * time.Second // a failover may take a while on a busy machine
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					write := i%2 == 0
					req, _ := http.NewRequest("GET", "https://"+proxyDomain+"/api/departments/", nil)
					if write {
						req, _ = http.NewRequest("PATCH", "https://"+proxyDomain+"/api/users/me/", strings.NewReader(fmt.Sprintf(`{"first_name":"w%d-%d"}`, w, i)))
						req.Header.Set("Content-Type", "application/json")
						req.Header.Set("Authorization", "Bearer "+tok)
					}
					at := time.Now()
					res, err := client.Do(req)
					status := 0
					if err == nil {
						io.Copy(io.Discard, res.Body)
						res.Body.Close()
						status = res.StatusCode
					}
					c := counts[name]
					ok := status >= 200 && status <= 299
					if write {
						c.writes.Add(1)
						if !ok {
							c.badWrites.Add(1)
						}
					} else {
						c.reads.Add(1)
						if !ok {
							c.badReads.Add(1)
						}
					}
					if !ok {
						mu.Lock()
						failures = append(failures, fmt.Sprintf("%s: %s %s %s: %d %v", name, at.Format("15:04:05.000"), req.Method, req.URL.Path, status, err))
						mu.Unlock()
					}
					time.Sleep(10 * time.Millisecond)
				}
			}()
		}
	}
	wait := func(d time.Duration) {
		if d > 0 {
			time.Sleep(d)
		}
	}
	// replace drains slot i (SIGTERM, as Podman's stop) and starts its
	// successor on the same port once the old one has exited.
	replace := func(i int) {
		old := slots[i]
		old.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-old.done:
			old.done <- err // for its cleanup
		case <-time.After(40 * time.Second):
			t.Fatalf("slot %d did not exit", i)
		}
		slots[i] = startServer(t, slot(pa+i))
		waitUp(t, slots[i].base+"/api/ready/")
		started[i] = time.Now()
	}
	time.Sleep(time.Second)
	var proven time.Time
	for n := 1; n <= swaps; n++ {
		// ops/deploy's settle times: A up 3 s before B goes, B up 1 s and
		// proven 750 ms before A goes.
		wait(3*time.Second - time.Since(started[0]))
		replace(1)
		proven = time.Now()
		wait(time.Second - time.Since(started[1]))
		wait(750*time.Millisecond - time.Since(proven))
		replace(0)
		if n%10 == 0 || n == swaps {
			t.Logf("%d of %d swaps", n, swaps)
		}
	}
	time.Sleep(time.Second)
	close(stop)
	wg.Wait()
	for i, f := range failures {
		if i == 20 {
			t.Logf("... and %d more", len(failures)-20)
			break
		}
		t.Log(f)
	}
	for _, name := range []string{"nginx", "caddy"} {
		c := counts[name]
		t.Logf("%s: %d swaps: %d of %d writes failed, %d of %d reads failed", name, swaps, c.badWrites.Load(), c.writes.Load(), c.badReads.Load(), c.reads.Load())
		if c.badWrites.Load() > 0 || c.badReads.Load() > 0 {
			t.Errorf("%s: %d writes and %d reads did not get a 2xx", name, c.badWrites.Load(), c.badReads.Load())
		}
	}
}

func portFree(port int) bool {
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// waitUpVia waits until url answers 200 through client.
func waitUpVia(t *testing.T, client *http.Client, url string) {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if res, err := client.Get(url); err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return
			}
		}
	}
	t.Fatalf("%s never answered 200", url)
}
