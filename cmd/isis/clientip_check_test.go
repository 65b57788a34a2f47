package main

import (
	"strings"
	"testing"
	"time"
)

// goodProduction is a production configuration check --deploy passes: every
// test below changes only what it names.
var goodProduction = map[string]string{"STATIC_ROOT": "/srv/static", "MEDIA_ROOT": "/srv/media",
	"SECRET_KEY": "Kq8vZ2mN4xR7tB1yW5cE9uJ3hL6pD0sA-fG_iO2kT8wQ4zX7nV1bM5", "DATABASE_HOST": "postgres18",
	"ALLOWED_HOSTS": "api.example.com", "CLIENT_IP_HEADER": "X-Forwarded-For"}

// TestCheckDeployClientIPHeader: believing more than one forwarding header
// (CLIENT_IP_HEADER unset: the contract's Forwarded, X-Forwarded-For,
// X-Real-IP) fails check --deploy unless the run is loopback-only (DEBUG=1
// and only loopback names in ALLOWED_HOSTS); one header, or none, passes.
func TestCheckDeployClientIPHeader(t *testing.T) {
	const line = "CLIENT_IP_HEADER: Forwarded, X-Forwarded-For, X-Real-IP (the default when unset): isis believes the first of these present from TRUSTED_PROXIES, but a proxy writes one and passes the others through"
	for _, tc := range []struct {
		name   string
		env    map[string]string
		flag   bool   // the CLIENT_IP_HEADER line is printed
		expect string // a part of that line, when flagged
	}{
		// The failing configurations.
		{"production behind a proxy, unset", map[string]string{"CLIENT_IP_HEADER": ""}, true, line},
		{"production named by nginx's default Host (the upstream's address), unset",
			map[string]string{"CLIENT_IP_HEADER": "", "ALLOWED_HOSTS": "127.0.0.1"}, true, line},
		{"production on loopback only, unset: a proxy on the host may serve the world",
			map[string]string{"CLIENT_IP_HEADER": "", "ALLOWED_HOSTS": "localhost,127.0.0.1,[::1]", "LISTEN_ADDRESS": "127.0.0.1",
				"TRUSTED_PROXIES": "127.0.0.1"}, true, line},
		{"production, two headers listed", map[string]string{"CLIENT_IP_HEADER": "X-Real-IP, X-Forwarded-For"}, true,
			"CLIENT_IP_HEADER: X-Real-IP, X-Forwarded-For: isis believes the first of these present"},
		{"DEBUG with a public name, unset", map[string]string{"CLIENT_IP_HEADER": "", "DEBUG": "1", "ALLOWED_HOSTS": "localhost,api.example.com"}, true, line},
		{"DEBUG with a private address, unset", map[string]string{"CLIENT_IP_HEADER": "", "DEBUG": "1", "ALLOWED_HOSTS": "localhost,10.0.0.5"}, true, line},
		{"DEBUG with every host, unset", map[string]string{"CLIENT_IP_HEADER": "", "DEBUG": "1", "ALLOWED_HOSTS": "*"}, true, line},
		// The passing ones.
		{"production, X-Forwarded-For (isisctl's units)", nil, false, ""},
		{"production, X-Real-IP", map[string]string{"CLIENT_IP_HEADER": "x-real-ip"}, false, ""},
		{"production, Forwarded", map[string]string{"CLIENT_IP_HEADER": "Forwarded"}, false, ""},
		{"production, none", map[string]string{"CLIENT_IP_HEADER": "none"}, false, ""},
		{"DEBUG, ALLOWED_HOSTS unset (localhost names), unset", map[string]string{"CLIENT_IP_HEADER": "", "DEBUG": "1", "ALLOWED_HOSTS": ""}, false, ""},
		{"DEBUG, loopback names, unset", map[string]string{"CLIENT_IP_HEADER": "", "DEBUG": "1",
			"ALLOWED_HOSTS": "localhost,.localhost,app.localhost,127.0.0.1,127.1.2.3,[::1]"}, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := map[string]string{}
			for k, v := range goodProduction {
				env[k] = v
			}
			for k, v := range tc.env {
				env[k] = v
			}
			out, _, code := isis(t, env, "check", "--deploy")
			got := strings.Contains(out, "CLIENT_IP_HEADER:")
			switch {
			case tc.flag && (!got || !strings.Contains(out, tc.expect) || code != 1):
				t.Errorf("exit %d, want 1 and the line %q:\n%s", code, tc.expect, out)
			case tc.flag && !strings.Contains(out, "CLIENT_IP_HEADER=X-Forwarded-For behind nginx, Caddy, Traefik or HAProxy's option forwardfor"):
				t.Errorf("the line does not say the fix:\n%s", out)
			case !tc.flag && got:
				t.Errorf("flagged:\n%s", out)
			case !tc.flag && tc.env["DEBUG"] == "" && (code != 0 || !strings.Contains(out, "no issues")):
				t.Errorf("exit %d, want a pass:\n%s", code, out)
			}
			if strings.Count(out, "CLIENT_IP_HEADER:") > 1 {
				t.Errorf("more than one line:\n%s", out)
			}
		})
	}
}

// TestServeWarnsClientIPHeader: the same risk is one warning at start-up
// (no secret in it); one header believed gives none.
func TestServeWarnsClientIPHeader(t *testing.T) {
	for _, tc := range []struct {
		header string
		warn   bool
	}{{"", true}, {"X-Forwarded-For", false}} {
		env := map[string]string{"CLIENT_IP_HEADER": tc.header, "ALLOWED_HOSTS": "api.example.com,localhost,127.0.0.1",
			"DATABASE_URL": "postgres://isis:db-secret-password@127.0.0.1:1/isis?sslmode=disable"}
		srv := startServer(t, env)
		for start := time.Now(); !strings.Contains(srv.log.String(), "isis serving") && time.Since(start) < 5*time.Second; {
			time.Sleep(50 * time.Millisecond) // the log is flushed in batches
		}
		var warned int
		for _, l := range strings.Split(srv.log.String(), "\n") {
			if strings.Contains(l, `"level":"WARN"`) && strings.Contains(l, "CLIENT_IP_HEADER: ") {
				warned++
			}
		}
		if tc.warn != (warned == 1) || warned > 1 {
			t.Errorf("CLIENT_IP_HEADER=%q: %d warnings at start-up, want %v:\n%s", tc.header, warned, tc.warn, srv.log.String())
		}
		if strings.Contains(srv.log.String(), "db-secret-password") || strings.Contains(srv.log.String(), testKey) {
			t.Error("a secret reached the log")
		}
	}
}
