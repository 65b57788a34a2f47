package apihttp

import (
	"net/http/httptest"
	"net/netip"
	"regexp"
	"strings"
	"testing"

	"github.com/isis-project/isis/api/config"
)

func defaultTrusted(t testing.TB) trustedProxies {
	var tp trustedProxies
	for _, s := range config.DefaultTrustedProxies {
		tp = append(tp, netip.MustParsePrefix(s))
	}
	return tp
}

func TestParseForwarded(t *testing.T) {
	for _, tc := range []struct {
		in          string
		fors        []string
		proto, host string
	}{
		{`for=192.0.2.60;proto=http;by=203.0.113.43`, []string{"192.0.2.60"}, "http", ""},
		{`For="[2001:db8:cafe::17]:4711"`, []string{"[2001:db8:cafe::17]:4711"}, "", ""},
		{`for=192.0.2.43, for=198.51.100.17;proto=https;host=api.example.com`, []string{"192.0.2.43", "198.51.100.17"}, "https", "api.example.com"},
		{`for="_gazonk"`, []string{"_gazonk"}, "", ""},
		{`for="a,b";proto=https, for=1.2.3.4`, []string{"a,b", "1.2.3.4"}, "https", ""},
		{`garbage;;,,=`, nil, "", ""},
		{``, nil, "", ""},
		// A quote left open: split on every comma, so the element a proxy
		// appended to the same line stays its own (the attack of an
		// unclosed quote swallowing it).
		{`for=6.6.6.6;x=", for=198.51.100.9`, []string{"6.6.6.6", "198.51.100.9"}, "", ""},
		{`for="6.6.6.6, for=198.51.100.9`, []string{`"6.6.6.6`, "198.51.100.9"}, "", ""},
	} {
		fors, proto, host := parseForwarded([]string{tc.in})
		if len(fors) != len(tc.fors) || proto != tc.proto || host != tc.host {
			t.Errorf("parseForwarded(%q) = %q %q %q, want %q %q %q", tc.in, fors, proto, host, tc.fors, tc.proto, tc.host)
			continue
		}
		for i := range fors {
			if fors[i] != tc.fors[i] {
				t.Errorf("parseForwarded(%q) for[%d] = %q, want %q", tc.in, i, fors[i], tc.fors[i])
			}
		}
	}
}

// TestResolveHeaderLines: headers sent on several lines, as a proxy that
// adds a line of its own instead of replacing the client's sends them. What
// the proxy wrote wins; a client's line cannot reach into the proxy's.
func TestResolveHeaderLines(t *testing.T) {
	tp := defaultTrusted(t)
	for _, tc := range []struct {
		name    string
		headers []string
		lines   map[string][]string
		want    string
		scheme  string
	}{
		{"Forwarded: an open quote on the client's line", config.DefaultClientIPHeaders,
			map[string][]string{"Forwarded": {`for=6.6.6.6;proto=https;x="`, "for=198.51.100.9"}}, "198.51.100.9", "http"},
		{"Forwarded alone: the proxy's proto on its own line", []string{config.HeaderForwarded},
			map[string][]string{"Forwarded": {`for=6.6.6.6;proto=https;x="`, "for=198.51.100.9;proto=http"}}, "198.51.100.9", "http"},
		{"X-Real-IP: the last line", config.DefaultClientIPHeaders,
			map[string][]string{"X-Real-Ip": {"6.6.6.6", "198.51.100.2"}}, "198.51.100.2", "http"},
		{"X-Forwarded-For: every line, in order", config.DefaultClientIPHeaders,
			map[string][]string{"X-Forwarded-For": {"6.6.6.6", "198.51.100.3"}}, "198.51.100.3", "http"},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = "127.0.0.1:1"
		for k, v := range tc.lines {
			r.Header[k] = v
		}
		cr := &clientResolver{trusted: tp, headers: tc.headers}
		if ci := cr.resolve(r); ci.IP.String() != tc.want || ci.Scheme != tc.scheme {
			t.Errorf("%s: client %v %s, want %s %s", tc.name, ci.IP, ci.Scheme, tc.want, tc.scheme)
		}
	}
}

func TestHostAllowed(t *testing.T) {
	allowed := []string{"api.example.com", ".example.org", "[::1]", "127.0.0.1"}
	for _, tc := range []struct {
		host string
		want bool
	}{
		{"api.example.com", true},
		{"api.example.com:8443", true},
		{"API.Example.COM", true},
		{"api.example.com.", true},
		{"example.org", true},
		{"a.b.example.org", true},
		{"badexample.org", false},
		{"[::1]:3003", true},
		{"[::1]", true},
		{"127.0.0.1:3003", true},
		{"127.0.0.2", false},
		{"", false},
		{"api.example.com/x", false},
		{"user@api.example.com", false},
		{"api.example.com evil", false},
		// Django's host_validation_re: a port is digits, a name has no _ or %.
		{"api.example.com:abc", false},
		{"api.example.com:", false},
		{"api.example.com:80:80", false},
		{"api.example.com:+80", false},
		{"api_x.example.com", false},
		{"api%2eexample.com", false},
		{"[::1", false},
		{"[::1]x", false},
		{"[::1]:", false},
		{"[:]", false},
		{"[g::1]", false},
		{".", false},
	} {
		if got := hostAllowed(tc.host, allowed); got != tc.want {
			t.Errorf("hostAllowed(%q) = %v, want %v", tc.host, got, tc.want)
		}
	}
	if hostAllowed("api.example.com:abc", []string{"*"}) || !hostAllowed("any.where:1", []string{"*"}) {
		t.Error("* must still refuse an invalid host and allow a valid one")
	}
}

// FuzzResolveClient feeds arbitrary proxy headers: the result is the peer
// unless the peer is trusted and a header is configured, a scheme of http or
// https, and the Host header unless the peer is trusted.
func FuzzResolveClient(f *testing.F) {
	f.Add("for=192.0.2.60;proto=http", "1.2.3.4, 10.0.0.1", "5.6.7.8", "127.0.0.1:1", "api.example.com", uint8(0))
	f.Add(`for="[2001:db8::1]:80", for=unknown`, "", "", "[::1]:9", "x:1", uint8(2))
	f.Add(`for="\"\\`, ",,,", " ", "10.1.2.3:4", "", uint8(1))
	f.Add("", "", "", "203.0.113.1:80", "api.example.com", uint8(3))
	modes := [][]string{config.DefaultClientIPHeaders, {config.HeaderXForwardedFor}, {config.HeaderXRealIP}, {config.HeaderForwarded}, nil,
		{config.HeaderXRealIP, config.HeaderForwarded}}
	tp := defaultTrusted(f)
	f.Fuzz(func(t *testing.T, fwd, xff, xri, remote, fhost string, mode uint8) {
		cr := &clientResolver{trusted: tp, headers: modes[int(mode)%len(modes)]}
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = remote
		r.Header.Set("Forwarded", fwd)
		r.Header.Set("X-Forwarded-For", xff)
		r.Header.Set("X-Real-IP", xri)
		r.Header.Set("X-Forwarded-Host", fhost)
		ci := cr.resolve(r)
		peer, ok := parseHostPortAddr(remote)
		if !ok {
			if ci.IP.IsValid() {
				t.Fatalf("unparseable peer %q gave %v", remote, ci.IP)
			}
			return
		}
		if !ci.IP.IsValid() {
			t.Fatalf("no client IP for peer %q", remote)
		}
		if (!tp.contains(peer) || len(cr.headers) == 0) && ci.IP != peer {
			t.Fatalf("peer %v, headers %v: a header was believed (%v)", peer, cr.headers, ci.IP)
		}
		if ci.Scheme != "http" && ci.Scheme != "https" {
			t.Fatalf("scheme %q", ci.Scheme)
		}
		if ci.Host != r.Host && (!tp.contains(peer) || len(cr.headers) == 0) {
			t.Fatalf("peer %v, headers %v: forwarded host %q believed", peer, cr.headers, ci.Host)
		}
	})
}

// FuzzParsePage: any query gives a 1-based page and a size within bounds,
// or an error.
func FuzzParsePage(f *testing.F) {
	f.Add("page=2&page_size=50")
	f.Add("page=-1&page_size=0")
	f.Add("page=99999999999999999999&page_size=1e9")
	f.Fuzz(func(t *testing.T, q string) {
		r := httptest.NewRequest("GET", "/", nil)
		r.URL.RawQuery = q
		p, err := parsePage(r.URL.Query())
		if err != nil {
			return
		}
		if p.Page < 1 || p.Size < 1 || p.Size > maxPageSize || p.offset() < 0 {
			t.Fatalf("parsePage(%q) = %+v", q, p)
		}
	})
}

// djangoHostRE is Django 3.2's host_validation_re, the oracle for
// splitDomainPort.
var djangoHostRE = regexp.MustCompile(`^([a-z0-9.-]+|\[[a-f0-9]*:[a-f0-9.:]+\])(:[0-9]+)?$`)

// FuzzSplitDomainPort: a host is valid exactly when Django's regular
// expression matches it, and the domain is its first group minus a trailing dot.
func FuzzSplitDomainPort(f *testing.F) {
	for _, s := range []string{"api.example.com", "API.example.com:8443", "[::1]:80", "[::1]", "a:b", "[:]", "x.:1", "", ":", "[", "[::1]x", "a_b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, host string) {
		domain, port := splitDomainPort(host)
		m := djangoHostRE.FindStringSubmatch(strings.ToLower(host))
		if m == nil {
			if domain != "" || port != "" {
				t.Fatalf("%q: Django refuses it, got %q %q", host, domain, port)
			}
			return
		}
		want := m[1]
		if !strings.HasPrefix(want, "[") {
			want = strings.TrimSuffix(want, ".")
		}
		if domain != want || ":"+port != m[2] && !(port == "" && m[2] == "") {
			t.Fatalf("%q: got %q %q, Django %q %q", host, domain, port, want, m[2])
		}
	})
}
