package config

import (
	"strings"
	"testing"
)

// TestClientIPHeaderRisk: the rule of check --deploy and of serve's
// start-up warning, per setting. Believing several forwarding headers is a
// risk unless the run is loopback-only: DEBUG=1 and only loopback names.
func TestClientIPHeaderRisk(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		risk bool
	}{
		{map[string]string{"ALLOWED_HOSTS": "api.example.com"}, true},
		{map[string]string{"ALLOWED_HOSTS": "127.0.0.1"}, true}, // DEBUG=0: never loopback-only
		{map[string]string{"ALLOWED_HOSTS": "localhost", "LISTEN_ADDRESS": "127.0.0.1", "TRUSTED_PROXIES": "127.0.0.1"}, true},
		{map[string]string{"ALLOWED_HOSTS": "api.example.com", "CLIENT_IP_HEADER": "Forwarded,X-Forwarded-For"}, true},
		{map[string]string{"DEBUG": "1", "ALLOWED_HOSTS": "localhost,api.example.com"}, true},
		{map[string]string{"DEBUG": "1", "ALLOWED_HOSTS": "localhost.example.com"}, true},
		{map[string]string{"DEBUG": "1", "ALLOWED_HOSTS": "evil-localhost"}, true},
		{map[string]string{"DEBUG": "1", "ALLOWED_HOSTS": "128.0.0.1"}, true},
		{map[string]string{"DEBUG": "1", "ALLOWED_HOSTS": "[::2]"}, true},
		{map[string]string{"DEBUG": "1", "ALLOWED_HOSTS": "*"}, true},
		{map[string]string{"DEBUG": "1", "ALLOWED_HOSTS": "192.168.1.10"}, true},
		{map[string]string{"DEBUG": "1"}, false}, // DEBUG's default hosts: .localhost, 127.0.0.1, [::1]
		{map[string]string{"DEBUG": "1", "ALLOWED_HOSTS": "LocalHost.,app.localhost,127.9.9.9,[::1],::1,[::ffff:127.0.0.1]"}, false},
		{map[string]string{"ALLOWED_HOSTS": "api.example.com", "CLIENT_IP_HEADER": "X-Forwarded-For"}, false},
		{map[string]string{"ALLOWED_HOSTS": "api.example.com", "CLIENT_IP_HEADER": "x-real-ip"}, false},
		{map[string]string{"ALLOWED_HOSTS": "api.example.com", "CLIENT_IP_HEADER": "Forwarded"}, false},
		{map[string]string{"ALLOWED_HOSTS": "api.example.com", "CLIENT_IP_HEADER": "none"}, false},
	} {
		env := map[string]string{"SECRET_KEY": "Kq8vZ2mN4xR7tB1yW5cE9uJ3hL6pD0sA-fG_iO2kT8wQ4zX7nV1bM5"}
		for k, v := range tc.env {
			env[k] = v
		}
		c, err := Load(func(k string) string { return env[k] })
		if err != nil {
			t.Fatalf("%v: %v", tc.env, err)
		}
		risk := c.ClientIPHeaderRisk()
		if (risk != "") != tc.risk {
			t.Errorf("%v: risk %q, want %v", tc.env, risk, tc.risk)
		}
		if risk != "" && (!strings.HasPrefix(risk, "CLIENT_IP_HEADER: ") || strings.Contains(risk, "\n") ||
			!strings.Contains(risk, "CLIENT_IP_HEADER=X-Forwarded-For") || strings.Contains(risk, env["SECRET_KEY"])) {
			t.Errorf("%v: not one line naming the setting and the fix: %q", tc.env, risk)
		}
	}
}
