package main

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// deploysDefault is how many deploys TestDeployWrites runs unless
// ISIS_DEPLOYS says otherwise (100 for the goal run in docs/deploying.md).
const deploysDefault = 3

// TestDeployWrites: authenticated PATCHes and GETs through real nginx and
// real Caddy, each running the configuration isisctl renders, while isisctl
// deploys two images in turn, ISIS_DEPLOYS times (every deploy replaces
// both slots). A write is never resent by a proxy, so the drain must never
// hand one to a closing slot: the test reports, per proxy, how many writes
// and reads were sent and how many did not get a 2xx, and fails on any.
func TestDeployWrites(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	deploys := envCount(t, "ISIS_DEPLOYS", "deploys", deploysDefault, 1)
	t.Parallel()
	takeTurn(t)
	e := newE2E(t, 3037, "")
	needTool(t, "nginx")
	needTool(t, "caddy")
	e.cleanup()
	t.Cleanup(e.cleanup)
	tags := []string{"dw-a", "dw-b"}
	if out, code := e.isisctl("deploy", "--tag", tags[0]); code != 0 {
		t.Fatalf("first deploy: exit %d\n%s", code, out)
	}
	proxy := e.renderProxy()
	nginxPort := startNginx(t, proxy["nginx-isis.conf"])
	caddyPort := startCaddy(t, proxy["Caddyfile"])

	const user = `{"email":"writer@example.com","password":"write-through-every-deploy-1"}`
	if status, body := e.post("/api/auth/register/", user); status != 201 {
		t.Fatalf("register: %d %s", status, body)
	}
	// An access token lives 5 minutes: a new one every 2 (on the published
	// port, outside the counts) keeps a long run signed in.
	var token atomic.Pointer[string]
	login := func() {
		// On the published port of slot A, which may be between two
		// containers now: tried again for a while (signing in twice is
		// harmless).
		var status, i int
		var body string
		for start := time.Now(); ; time.Sleep(100 * time.Millisecond) {
			status, body = e.post("/api/token/", user)
			if i = strings.Index(body, `"access":"`); status == 200 && i >= 0 {
				break
			}
			if time.Since(start) > 30*time.Second {
				t.Errorf("token: %d %s", status, body)
				return
			}
		}
		tok := body[i+10:]
		tok = tok[:strings.Index(tok, `"`)]
		token.Store(&tok)
	}
	login()
	if t.Failed() {
		t.FailNow()
	}
	stopLogin := make(chan struct{})
	loginDone := make(chan struct{})
	go func() {
		defer close(loginDone)
		for {
			select {
			case <-stopLogin:
				return
			case <-time.After(2 * time.Minute):
				login()
			}
		}
	}()
	// Each worker sends a PATCH of the user's name, then a GET, in turn.
	writes := func(base string, w, i int) (*http.Request, bool) {
		if i%2 == 0 {
			req, _ := http.NewRequest("PATCH", base+"/api/users/me/", strings.NewReader(fmt.Sprintf(`{"first_name":"w%d-%d"}`, w, i)))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+*token.Load())
			return req, true
		}
		req, _ := http.NewRequest("GET", base+"/api/departments/", nil)
		return req, false
	}
	loads := map[string]*loadGen{
		"nginx": startMix(fmt.Sprintf("127.0.0.1:%d", nginxPort), 3, false, writes),
		"caddy": startMix(fmt.Sprintf("127.0.0.1:%d", caddyPort), 3, false, writes),
	}
	time.Sleep(time.Second)
	var took []time.Duration
	for i := 1; i <= deploys; i++ {
		start := time.Now()
		out, code := e.isisctl("deploy", "--tag", tags[i%2])
		took = append(took, time.Since(start))
		if code != 0 {
			t.Errorf("deploy %d of %d (%s): exit %d\n%s", i, deploys, tags[i%2], code, out)
			break
		}
		if i%10 == 0 || i == deploys {
			t.Logf("%d of %d deploys done", i, deploys)
		}
	}
	time.Sleep(time.Second)
	close(stopLogin)
	<-loginDone
	sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
	t.Logf("%d deploys: median %s, slowest %s", len(took), took[len(took)/2].Round(time.Millisecond), took[len(took)-1].Round(time.Millisecond))
	for _, name := range []string{"nginx", "caddy"} {
		var n, bad [2]int // [0] reads, [1] writes
		for _, s := range loads[name].stop() {
			k := 0
			if s.write {
				k = 1
			}
			n[k]++
			if s.status >= 200 && s.status <= 299 {
				continue
			}
			bad[k]++
			if bad[0]+bad[1] <= 10 {
				t.Logf("%s: %s: write %v: status %d %s", name, s.at.Format("15:04:05.000"), s.write, s.status, s.err)
			}
		}
		t.Logf("%s: %d deploys: %d of %d writes failed, %d of %d reads failed", name, len(took), bad[1], n[1], bad[0], n[0])
		if bad[1] > 0 || bad[0] > 0 {
			logServerErrors(t, filepath.Join(e.dir, "log", "isis.log"))
			t.Errorf("%s: %d of %d writes and %d of %d reads did not get a 2xx", name, bad[1], n[1], bad[0], n[0])
		}
		if n[1] < 20*len(took) {
			t.Errorf("%s: only %d writes in %d deploys: the load did not run", name, n[1], len(took))
		}
	}
}

// logServerErrors logs the backend's log lines (both slots write to one
// file) of the answers 500 and over, and its warnings and errors, probes
// aside: why a slot failed a request.
func logServerErrors(t *testing.T, path string) {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Logf("backend log: %v", err)
		return
	}
	n := 0
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, "/api/health/") || strings.Contains(l, "/api/ready/") {
			continue // the probes' 503s while a slot drains
		}
		if strings.Contains(l, `"status":5`) || strings.Contains(l, `"level":"WARN"`) || strings.Contains(l, `"level":"ERROR"`) {
			if n++; n <= 30 {
				t.Logf("backend: %s", l)
			}
		}
	}
}

// envCount is the count the environment variable name gives (what: of
// what), def without it; a count below least fails the test.
func envCount(t *testing.T, name, what string, def, least int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < least {
		t.Fatalf("%s=%q: want a count of %s, %d or more", name, v, what, least)
	}
	return n
}
