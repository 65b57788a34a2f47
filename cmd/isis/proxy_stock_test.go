package main

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/isis-project/isis/internal/pgtest"
)

// stockNginx is the reverse proxy of a tutorial, not the one isisctl
// renders: it appends the peer to X-Forwarded-For
// ($proxy_add_x_forwarded_for) and passes every other header, Forwarded
// and X-Real-IP included, through as the client sent it.
const stockNginx = `server {
		listen %[1]s;
		server_name %[3]s;
		location / {
			proxy_pass http://%[2]s;
			proxy_set_header Host $host;
			proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
			proxy_set_header X-Forwarded-Proto $scheme;
		}
	}`

// TestForgedForwardedThroughStockNginx is issue 19's finding through a real
// stock nginx: with CLIENT_IP_HEADER unset, 25 logins that each forge
// Forwarded: for= are 25 × 401 and the forged address is logged, and
// isis check --deploy now says so; with the setting isisctl writes in its
// units, the same 25 logins end in 429 (throttled on the address nginx saw)
// and check --deploy passes it.
func TestForgedForwardedThroughStockNginx(t *testing.T) {
	needTool(t, "/usr/sbin/nginx", "nginx-light")
	// The setting isisctl writes, from its unit's golden (the ops tests keep
	// it equal to what isisctl renders).
	isisctlSetting := unitEnv(t, "../../quadlets/isis-backend.container", "CLIENT_IP_HEADER")
	if isisctlSetting != "X-Forwarded-For" {
		t.Fatalf("isisctl's unit sets CLIENT_IP_HEADER=%q", isisctlSetting)
	}

	for _, tc := range []struct {
		header      string // CLIENT_IP_HEADER
		throttledAt int    // the first login answered 429, 0 for none
		logged      string // the client_ip of a forged request: "forged" or the address nginx saw
		flagged     bool   // check --deploy names CLIENT_IP_HEADER
	}{
		{"", 0, "forged", true},
		{isisctlSetting, 21, "127.0.0.1", false},
	} {
		t.Run("CLIENT_IP_HEADER="+tc.header, func(t *testing.T) {
			dsn := pgtest.NewDatabase(t, "", nil)
			if _, e, code := isis(t, map[string]string{"DATABASE_URL": dsn}, "migrate"); code != 0 {
				t.Fatal(e)
			}
			// A production configuration: DEBUG=0, the proxy's name, the
			// default login throttle (20/min) and trusted proxies.
			env := map[string]string{"DATABASE_URL": dsn, "ALLOWED_HOSTS": proxyDomain, "THROTTLE_TOKEN": "20/min",
				"CLIENT_IP_HEADER": tc.header, "STATIC_ROOT": "/srv/static", "MEDIA_ROOT": "/srv/media"}
			srv := startServer(t, env)
			dir := t.TempDir()
			listen := fmt.Sprintf("127.0.0.1:%d", freePort(t))
			startNginx(t, dir, fmt.Sprintf(stockNginx, listen, strings.TrimPrefix(srv.base, "http://"), proxyDomain))
			client := &http.Client{Timeout: 5 * time.Second}
			post := func(i int) (int, string) {
				req, _ := http.NewRequest("POST", "http://"+listen+"/api/token/",
					strings.NewReader(`{"email":"nobody@example.com","password":"wrong-password"}`))
				req.Host = proxyDomain
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Forwarded", fmt.Sprintf("for=198.51.100.%d", i))
				res, err := client.Do(req)
				if err != nil {
					t.Fatalf("login %d through nginx: %v", i, err)
				}
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
				return res.StatusCode, res.Header.Get("X-Request-ID")
			}
			waitThrough(t, "http://"+listen+"/api/health/")
			var codes []int
			var firstID string
			for i := 1; i <= 25; i++ {
				code, id := post(i)
				codes = append(codes, code)
				if i == 1 {
					firstID = id
				}
			}
			for i, code := range codes {
				want := 401
				if tc.throttledAt > 0 && i+1 >= tc.throttledAt {
					want = 429
				}
				if code != want {
					t.Fatalf("25 logins forging Forwarded: %v; login %d is %d, want %d", codes, i+1, code, want)
				}
			}
			logged := loggedClientIP(t, srv, firstID)
			if want := map[string]string{"forged": "198.51.100.1"}[tc.logged]; want != "" && logged != want ||
				want == "" && logged != tc.logged {
				t.Errorf("the first forged login logged client_ip %s, want %s", logged, tc.logged)
			}

			out, _, code := isis(t, env, "check", "--deploy")
			flagged := strings.Contains(out, "CLIENT_IP_HEADER: Forwarded, X-Forwarded-For, X-Real-IP (the default when unset)")
			if flagged != tc.flagged || (tc.flagged && code != 1) {
				t.Errorf("check --deploy: exit %d, CLIENT_IP_HEADER named %v, want %v:\n%s", code, flagged, tc.flagged, out)
			}
			if !tc.flagged && code != 0 {
				t.Errorf("check --deploy with isisctl's setting: exit %d:\n%s", code, out)
			}
		})
	}
}

// unitEnv returns the value of Environment=NAME=… in a rendered unit.
func unitEnv(t *testing.T, path, name string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "Environment="+name+"="); ok {
			return v
		}
	}
	t.Fatalf("%s sets no %s", path, name)
	return ""
}

// startNginx runs nginx on dir/nginx.conf in the foreground until the test ends.
func waitThrough(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		req, _ := http.NewRequest("GET", url, nil)
		req.Host = proxyDomain
		res, err := http.DefaultClient.Do(req)
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginx never proxied %s: %v", url, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
