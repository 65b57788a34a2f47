package apihttp

import (
	"fmt"
	"log/slog"
	"testing"
)

// TestClientIPTrust: the rules for believing forwarding headers, straight to
// the server's port. The headers CLIENT_IP_HEADER names speak for the client,
// the first present winning (unset: the contract's Forwarded, X-Forwarded-For,
// X-Real-IP; isisctl's units name X-Forwarded-For alone), and only from a peer
// in TRUSTED_PROXIES;
// scheme and host come from the same proxy's headers, and a forwarded host
// must pass ALLOWED_HOSTS as the Host header would (400 otherwise, as in
// Django). Each case checks the logged client_ip and the absolute links of
// the API root.
func TestClientIPTrust(t *testing.T) {
	const (
		plain = "http://api.example.com/api/"
		local = "127.0.0.1:40000"
	)
	xff := map[string]string{"CLIENT_IP_HEADER": "X-Forwarded-For"}
	for _, tc := range []struct {
		name   string
		env    map[string]string
		remote string
		hdr    map[string]string
		ip     string
		base   string // scheme://host/api/ of the links
	}{
		{"untrusted peer: every header ignored", nil, "203.0.113.9:5000",
			map[string]string{"X-Forwarded-For": "198.51.100.7", "Forwarded": "for=198.51.100.8;proto=https", "X-Real-IP": "198.51.100.9",
				"X-Forwarded-Proto": "https", "X-Forwarded-Host": "api.example.com:8443"},
			"203.0.113.9", plain},
		{"trusted peer: X-Forwarded-For", nil, local,
			map[string]string{"X-Forwarded-For": "198.51.100.7"}, "198.51.100.7", plain},
		{"default: Forwarded first", nil, local,
			map[string]string{"Forwarded": "for=198.51.100.8", "X-Forwarded-For": "198.51.100.7", "X-Real-IP": "198.51.100.9"}, "198.51.100.8", plain},
		{"default: X-Forwarded-For before X-Real-IP", nil, local,
			map[string]string{"X-Forwarded-For": "198.51.100.7", "X-Real-IP": "198.51.100.9"}, "198.51.100.7", plain},
		{"default: X-Real-IP last", nil, local,
			map[string]string{"X-Real-IP": "198.51.100.9"}, "198.51.100.9", plain},
		{"default: Forwarded without for= gives way to X-Forwarded-For", nil, local,
			map[string]string{"Forwarded": "proto=https", "X-Forwarded-For": "198.51.100.7"}, "198.51.100.7", plain},
		{"default: scheme and host from X-Forwarded-Proto/Host, never Forwarded's", nil, local,
			map[string]string{"Forwarded": "for=198.51.100.8;proto=https;host=api.example.com:8443", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "api.example.com:9"},
			"198.51.100.8", "https://api.example.com:9/api/"},
		{"default: Forwarded's proto/host alone change nothing", nil, local,
			map[string]string{"Forwarded": "for=198.51.100.8;proto=https;host=api.example.com:8443"}, "198.51.100.8", plain},
		{"Forwarded: a quote the client left open does not swallow the proxy's element", nil, local,
			map[string]string{"Forwarded": `for=6.6.6.6;x=", for=198.51.100.9`}, "198.51.100.9", plain},
		{"X-Forwarded-For alone: Forwarded is not believed", xff, local,
			map[string]string{"Forwarded": "for=198.51.100.8"}, "127.0.0.1", plain},
		{"X-Forwarded-For alone: X-Real-IP is not believed", xff, local,
			map[string]string{"X-Real-IP": "198.51.100.9"}, "127.0.0.1", plain},
		{"X-Forwarded-For alone: Forwarded and X-Real-IP beside it", xff, local,
			map[string]string{"Forwarded": "for=198.51.100.8", "X-Real-IP": "198.51.100.9", "X-Forwarded-For": "198.51.100.7"},
			"198.51.100.7", plain},
		{"X-Forwarded-For alone: Forwarded proto/host ignored", xff, local,
			map[string]string{"Forwarded": "proto=https;host=api.example.com:8443"}, "127.0.0.1", plain},
		{"a list in another order: X-Real-IP, then Forwarded", map[string]string{"CLIENT_IP_HEADER": "X-Real-IP, Forwarded"}, local,
			map[string]string{"Forwarded": "for=198.51.100.8", "X-Real-IP": "198.51.100.9", "X-Forwarded-For": "198.51.100.7"}, "198.51.100.9", plain},
		{"X-Forwarded-For: right-most untrusted", nil, local,
			map[string]string{"X-Forwarded-For": "1.2.3.4, 198.51.100.7, 10.0.0.2"}, "198.51.100.7", plain},
		{"X-Forwarded-For: garbage ends the walk at the peer", nil, local,
			map[string]string{"X-Forwarded-For": "garbage, 10.0.0.2"}, "127.0.0.1", plain},
		{"X-Forwarded-For: all trusted gives the left-most", nil, local,
			map[string]string{"X-Forwarded-For": "10.0.0.3, 10.0.0.2"}, "10.0.0.3", plain},
		{"X-Forwarded-For over IPv6", nil, "[::1]:40000",
			map[string]string{"X-Forwarded-For": "2001:db8::5"}, "2001:db8::5", plain},
		{"trusted peer: proto and an allowed host", nil, local,
			map[string]string{"X-Forwarded-Proto": "https", "X-Forwarded-Host": "api.example.com:8443"},
			"127.0.0.1", "https://api.example.com:8443/api/"},
		{"trusted peer: a host ALLOWED_HOSTS does not allow is a 400", nil, local,
			map[string]string{"X-Forwarded-Host": "evil.example.net"}, "127.0.0.1", "400"},
		{"trusted peer: a forwarded host with a bad port is a 400", nil, local,
			map[string]string{"X-Forwarded-Host": "api.example.com:x"}, "127.0.0.1", "400"},
		{"untrusted peer: a forwarded host is not even looked at", nil, "203.0.113.9:5000",
			map[string]string{"X-Forwarded-Host": "evil.example.net"}, "203.0.113.9", plain},
		{"CLIENT_IP_HEADER=X-Real-IP", map[string]string{"CLIENT_IP_HEADER": "x-real-ip"}, local,
			map[string]string{"X-Real-IP": "198.51.100.9", "X-Forwarded-For": "198.51.100.7", "X-Forwarded-Proto": "https"},
			"198.51.100.9", "https://api.example.com/api/"},
		{"CLIENT_IP_HEADER=X-Real-IP, untrusted peer", map[string]string{"CLIENT_IP_HEADER": "X-Real-IP"}, "203.0.113.9:1",
			map[string]string{"X-Real-IP": "198.51.100.9"}, "203.0.113.9", plain},
		{"CLIENT_IP_HEADER=Forwarded", map[string]string{"CLIENT_IP_HEADER": "Forwarded"}, local,
			map[string]string{"Forwarded": `for="198.51.100.8:4711";proto=https;host=api.example.com`, "X-Forwarded-For": "198.51.100.7",
				"X-Forwarded-Proto": "http", "X-Forwarded-Host": "api.example.com:9"},
			"198.51.100.8", "https://api.example.com/api/"},
		{"CLIENT_IP_HEADER=Forwarded, for=unknown", map[string]string{"CLIENT_IP_HEADER": "Forwarded"}, local,
			map[string]string{"Forwarded": "for=unknown"}, "127.0.0.1", plain},
		{"CLIENT_IP_HEADER=Forwarded, several hops", map[string]string{"CLIENT_IP_HEADER": "Forwarded"}, "10.88.0.1:1",
			map[string]string{"Forwarded": `for=6.6.6.6, for="198.51.100.9:4711";proto=https, for=172.16.0.5`}, "198.51.100.9", "https://api.example.com/api/"},
		{"CLIENT_IP_HEADER=Forwarded, IPv6", map[string]string{"CLIENT_IP_HEADER": "Forwarded"}, "[::1]:1",
			map[string]string{"Forwarded": `for="[2001:db8:cafe::17]:4711"`}, "2001:db8:cafe::17", plain},
		{"CLIENT_IP_HEADER=none", map[string]string{"CLIENT_IP_HEADER": "none"}, local,
			map[string]string{"X-Forwarded-For": "198.51.100.7", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "api.example.com:8443"},
			"127.0.0.1", plain},
		{"TRUSTED_PROXIES narrowed: loopback no longer trusted", map[string]string{"TRUSTED_PROXIES": "10.89.0.1"}, local,
			map[string]string{"X-Forwarded-For": "198.51.100.7", "X-Forwarded-Proto": "https"}, "127.0.0.1", plain},
		{"TRUSTED_PROXIES narrowed: the proxy itself", map[string]string{"TRUSTED_PROXIES": "10.89.0.1"}, "10.89.0.1:555",
			map[string]string{"X-Forwarded-For": "198.51.100.7", "X-Forwarded-Proto": "https"}, "198.51.100.7", "https://api.example.com/api/"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			logs := &syncBuffer{}
			ts := &testServer{Server: NewServer(testEnv(t, tc.env), slog.New(slog.NewJSONHandler(logs, nil)), Services{AccessLog: logs}), Log: logs}
			w := ts.do(t, req{URL: "/api/", Remote: tc.remote, Header: tc.hdr})
			if tc.base == "400" {
				wantError(t, w, 400, "bad_request")
			} else if w.Code != 200 {
				t.Fatalf("status %d: %s", w.Code, w.Body.String())
			}
			if got := decode(t, w)["health"]; tc.base != "400" && got != tc.base+"health/" {
				t.Errorf("links start %v, want %s", got, tc.base)
			}
			lines := logs.lines(t)
			if len(lines) != 1 || fmt.Sprint(lines[0]["client_ip"]) != tc.ip {
				t.Errorf("logged %v, want client_ip %s", lines, tc.ip)
			}
		})
	}
}
