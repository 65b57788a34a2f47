package apihttp

import (
	"regexp"
	"strings"
	"testing"
)

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
