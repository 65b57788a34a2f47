package clientip

import (
	"net/http/httptest"
	"net/netip"
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
		cr := &Resolver{Trusted: tp, Headers: tc.headers}
		if ci := cr.Resolve(r); ci.IP.String() != tc.want || ci.Scheme != tc.scheme {
			t.Errorf("%s: client %v %s, want %s %s", tc.name, ci.IP, ci.Scheme, tc.want, tc.scheme)
		}
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
		cr := &Resolver{Trusted: tp, Headers: modes[int(mode)%len(modes)]}
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = remote
		r.Header.Set("Forwarded", fwd)
		r.Header.Set("X-Forwarded-For", xff)
		r.Header.Set("X-Real-IP", xri)
		r.Header.Set("X-Forwarded-Host", fhost)
		ci := cr.Resolve(r)
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
		if (!tp.contains(peer) || len(cr.Headers) == 0) && ci.IP != peer {
			t.Fatalf("peer %v, headers %v: a header was believed (%v)", peer, cr.Headers, ci.IP)
		}
		if ci.Scheme != "http" && ci.Scheme != "https" {
			t.Fatalf("scheme %q", ci.Scheme)
		}
		if ci.Host != r.Host && (!tp.contains(peer) || len(cr.Headers) == 0) {
			t.Fatalf("peer %v, headers %v: forwarded host %q believed", peer, cr.Headers, ci.Host)
		}
	})
}
