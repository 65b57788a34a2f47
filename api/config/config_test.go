package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const goodKey = "k3y-for-tests-0123456789-abcdefghijklmnopqrstuvwxyz"

func load(env map[string]string) (*Config, error) {
	return Load(func(k string) string { return env[k] })
}

func base(over map[string]string) map[string]string {
	env := map[string]string{"SECRET_KEY": goodKey, "ALLOWED_HOSTS": "api.example.com"}
	for k, v := range over {
		env[k] = v
	}
	return env
}

func TestLoadDefaults(t *testing.T) {
	c, err := load(base(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.Debug || c.Port != 3003 || c.MaxBodyBytes != 1<<20 || c.MaxUploadBytes != 5<<20 ||
		c.AccessTokenLifetime != 5*time.Minute || c.RefreshTokenLifetime != 24*time.Hour ||
		c.ThrottleToken.String() != "20/1m0s" || c.ThrottleRegister.N != 10 || c.ThrottleRegister.Period != time.Hour ||
		c.ThrottleStore != "postgres" {
		t.Errorf("defaults = %+v", c)
	}
	if !strings.Contains(c.DatabaseDSN, "host='localhost'") || !strings.Contains(c.DatabaseDSN, "dbname='isis'") {
		t.Errorf("DSN = %s", c.DatabaseDSN)
	}
	if c.MemoryTargetMiB != 30 {
		t.Errorf("MEMORY_TARGET_MIB unset = %d, want 30 (40 MiB at 1,000 connections)", c.MemoryTargetMiB)
	}
	if c, err := load(base(map[string]string{"MEMORY_TARGET_MIB": "0"})); err != nil || c.MemoryTargetMiB != 0 {
		t.Errorf("MEMORY_TARGET_MIB=0 must turn the target off: %v %v", c, err)
	}
	if len(c.TrustedProxies) != len(DefaultTrustedProxies) {
		t.Errorf("trusted = %v", c.TrustedProxies)
	}
	if got := c.ClientIPHeaderSetting(); got != "Forwarded, X-Forwarded-For, X-Real-IP" {
		t.Errorf("CLIENT_IP_HEADER unset = %q, want the contract's order", got)
	}
	for in, want := range map[string]string{"x-real-ip": HeaderXRealIP, " FORWARDED ": HeaderForwarded, "None": HeaderNone,
		"x-forwarded-for,forwarded": "X-Forwarded-For, Forwarded", " ": "Forwarded, X-Forwarded-For, X-Real-IP"} {
		if c, err := load(base(map[string]string{"CLIENT_IP_HEADER": in})); err != nil || c.ClientIPHeaderSetting() != want {
			t.Errorf("CLIENT_IP_HEADER=%q: %v %v", in, c, err)
		}
	}
}

// TestLoadErrors: every bad or missing value stops start-up with one line
// naming the setting, and never shows a secret.
func TestLoadErrors(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		name string // the setting the error must name
	}{
		{map[string]string{"SECRET_KEY": ""}, "SECRET_KEY"},
		{map[string]string{"SECRET_KEY": "short"}, "SECRET_KEY"},
		{map[string]string{"SECRET_KEY": "changeme-please-0123456789-abcdefghijklmnopqrstuvwxyz"}, "SECRET_KEY"},
		{map[string]string{"SECRET_KEY": "django-insecure-0123456789-abcdefghijklmnopqrstuvwxyz"}, "SECRET_KEY"},
		{map[string]string{"SECRET_KEY": strings.Repeat("ab", 40)}, "SECRET_KEY"},
		{map[string]string{"ALLOWED_HOSTS": ""}, "ALLOWED_HOSTS"},
		{map[string]string{"ALLOWED_HOSTS": " , "}, "ALLOWED_HOSTS"},
		{map[string]string{"ALLOWED_HOSTS": "http://x.com/"}, "ALLOWED_HOSTS"},
		{map[string]string{"DEBUG": "maybe"}, "DEBUG"},
		{map[string]string{"PORT": "abc"}, "PORT"},
		{map[string]string{"PORT": "70000"}, "PORT"},
		{map[string]string{"PORT": "0"}, "PORT"},
		{map[string]string{"MAX_BODY_BYTES": "-1"}, "MAX_BODY_BYTES"},
		{map[string]string{"MAX_UPLOAD_BYTES": "5MB"}, "MAX_UPLOAD_BYTES"},
		{map[string]string{"MAX_IMAGE_PIXELS": "0"}, "MAX_IMAGE_PIXELS"},
		{map[string]string{"UPLOAD_MIN_RATE": "50KiB"}, "UPLOAD_MIN_RATE"},
		{map[string]string{"THROTTLE_PASSWORD": "5/fortnight"}, "THROTTLE_PASSWORD"},
		{map[string]string{"THROTTLE_MAX_KEYS": "3"}, "THROTTLE_MAX_KEYS"},
		{map[string]string{"THROTTLE_STORE": "redis"}, "THROTTLE_STORE"},
		{map[string]string{"CORS_ALLOWED_ORIGINS": "app.example.com"}, "CORS_ALLOWED_ORIGINS"},
		{map[string]string{"CORS_ALLOWED_ORIGINS": "https://app.example.com/path"}, "CORS_ALLOWED_ORIGINS"},
		{map[string]string{"TRUSTED_PROXIES": "10.0.0.0/33"}, "TRUSTED_PROXIES"},
		{map[string]string{"TRUSTED_PROXIES": "not-an-ip"}, "TRUSTED_PROXIES"},
		{map[string]string{"CLIENT_IP_HEADER": "X-Client-IP"}, "CLIENT_IP_HEADER"},
		{map[string]string{"CLIENT_IP_HEADER": "X-Forwarded-For, X-Forwarded-For"}, "CLIENT_IP_HEADER"},
		{map[string]string{"CLIENT_IP_HEADER": "X-Forwarded-For, none"}, "CLIENT_IP_HEADER"},
		{map[string]string{"CLIENT_IP_HEADER": "X-Forwarded-For,,X-Real-IP"}, "CLIENT_IP_HEADER"},
		{map[string]string{"DATABASE_PORT": "x"}, "DATABASE_PORT"},
		{map[string]string{"DATABASE_URL": "mysql://u:hunter2@h/db"}, "DATABASE_URL"},
		{map[string]string{"DATABASE_URL": "postgres://u:hunter2@h/db", "DATABASE_HOST": "h"}, "DATABASE_URL"},
		{map[string]string{"DATABASE_URL": "postgres://u:hunter2@h/db", "DATABASE_PASSWORD": "hunter2"}, "DATABASE_URL"},
		{map[string]string{"DATABASE_URL": "host=h user=u password=hunter2", "DATABASE_PASSWORD": "hunter2"}, "DATABASE_URL"},
		{map[string]string{"DATABASE_SSLMODE": "sometimes"}, "DATABASE_SSLMODE"},
		{map[string]string{"SECRET_KEY": "", "SECRET_KEY_FILE": "/nonexistent/secret"}, "SECRET_KEY_FILE"},
		{map[string]string{"ACCESS_TOKEN_LIFETIME": "soon"}, "ACCESS_TOKEN_LIFETIME"},
		{map[string]string{"THROTTLE_TOKEN": "20/fortnight"}, "THROTTLE_TOKEN"},
		{map[string]string{"LOG_LEVEL": "loud"}, "LOG_LEVEL"},
		{map[string]string{"LISTEN_ADDRESS": "example.com"}, "LISTEN_ADDRESS"},
		{map[string]string{"PPROF_ADDRESS": "0.0.0.0:6060"}, "PPROF_ADDRESS"},
		{map[string]string{"PPROF_ADDRESS": "10.0.0.1:6060"}, "PPROF_ADDRESS"},
		{map[string]string{"PPROF_ADDRESS": "127.0.0.1"}, "PPROF_ADDRESS"},
		{map[string]string{"METRICS_ADDRESS": "127.0.0.1"}, "METRICS_ADDRESS"},
		{map[string]string{"METRICS_ADDRESS": "9100"}, "METRICS_ADDRESS"},
		{map[string]string{"METRICS_ADDRESS": "127.0.0.1:0"}, "METRICS_ADDRESS"},
		{map[string]string{"METRICS_ADDRESS": "127.0.0.1:70000"}, "METRICS_ADDRESS"},
		{map[string]string{"METRICS_ADDRESS": "127.0.0.1:metrics"}, "METRICS_ADDRESS"},
		{map[string]string{"MEMORY_TARGET_MIB": "26MiB"}, "MEMORY_TARGET_MIB"},
		{map[string]string{"MEMORY_TARGET_MIB": "-1"}, "MEMORY_TARGET_MIB"},
		{map[string]string{"METRICS_ADDRESS": "metrics.example.com:9100"}, "METRICS_ADDRESS"},
		{map[string]string{"METRICS_ADDRESS": "http://127.0.0.1:9100/metrics"}, "METRICS_ADDRESS"},
		{map[string]string{"METRICS_ADDRESS": "127.0.0.1:6060", "PPROF_ADDRESS": "127.0.0.1:6060"}, "METRICS_ADDRESS"},
		{map[string]string{"AWS_S3_ENDPOINT_URL": "ftp://x"}, "AWS_S3_ENDPOINT_URL"},
		{map[string]string{"AWS_S3_ADDRESSING_STYLE": "sideways"}, "AWS_S3_ADDRESSING_STYLE"},
		{map[string]string{"AWS_STORAGE_BUCKET_NAME": "b", "AWS_SECRET_ACCESS_KEY": "hunter2"}, "AWS_SECRET_ACCESS_KEY"},
	} {
		_, err := load(base(tc.env))
		if err == nil {
			t.Errorf("%v: no error", tc.env)
			continue
		}
		msg := err.Error()
		if !strings.HasPrefix(msg, "setting "+tc.name+":") || strings.Contains(msg, "\n") {
			t.Errorf("%v: error %q does not name %s on one line", tc.env, msg, tc.name)
		}
		if strings.Contains(msg, "hunter2") || strings.Contains(msg, goodKey) {
			t.Errorf("%v: error leaks a secret: %q", tc.env, msg)
		}
	}
}

func TestDebugRelaxes(t *testing.T) {
	c, err := load(map[string]string{"DEBUG": "1"})
	if err != nil {
		t.Fatal(err)
	}
	if !c.SecretKeyGenerated || len(c.SecretKey) < 32 || len(c.AllowedHosts) == 0 {
		t.Errorf("DEBUG=1 defaults: %+v", c)
	}
	if _, err := load(map[string]string{"DEBUG": "1", "SECRET_KEY": "short"}); err != nil {
		t.Errorf("DEBUG=1 with a short key: %v", err)
	}
}

func TestFileSecrets(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "key")
	pw := filepath.Join(dir, "pw")
	os.WriteFile(key, []byte(goodKey+"\n"), 0o600)
	os.WriteFile(pw, []byte("p'a ss\\word\n"), 0o600)
	c, err := load(map[string]string{"SECRET_KEY_FILE": key, "ALLOWED_HOSTS": "x", "DATABASE_PASSWORD_FILE": pw})
	if err != nil {
		t.Fatal(err)
	}
	if c.SecretKey != goodKey {
		t.Errorf("SECRET_KEY_FILE not read (or newline kept): %q", c.SecretKey)
	}
	if !strings.Contains(c.DatabaseDSN, `password='p\'a ss\\word'`) {
		t.Errorf("DSN password not quoted: %s", c.DatabaseDSN)
	}
	if r := c.Redacted(); strings.Contains(strings.Join([]string{r["SECRET_KEY"].(string), r["DATABASE"].(string)}, " "), "word") {
		t.Errorf("Redacted leaks: %v", r)
	}
	_, err = load(map[string]string{"SECRET_KEY_FILE": key, "SECRET_KEY": goodKey, "ALLOWED_HOSTS": "x"})
	if err == nil || !strings.HasPrefix(err.Error(), "setting SECRET_KEY:") {
		t.Errorf("both SECRET_KEY and _FILE: %v", err)
	}
}

func TestParseRate(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		per  time.Duration
		fail bool
	}{
		{"20/min", 20, time.Minute, false},
		{"10/hour", 10, time.Hour, false},
		{"5/s", 5, time.Second, false},
		{"100/day", 100, 24 * time.Hour, false},
		{"off", 0, 0, false},
		{"", 0, 0, false},
		{"0/min", 0, 0, true},
		{"x/min", 0, 0, true},
		{"20", 0, 0, true},
		{"20/", 0, 0, true},
		{"20/year", 0, 0, true},
	} {
		r, err := ParseRate(tc.in)
		if (err != nil) != tc.fail || r.N != tc.n || r.Period != tc.per {
			t.Errorf("ParseRate(%q) = %+v, %v", tc.in, r, err)
		}
	}
}

func FuzzParseRate(f *testing.F) {
	for _, s := range []string{"20/min", "1/s", "off", "9999999999999999999/d", "/", "-1/m"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRate(s)
		if err == nil && (r.N < 0 || (r.N > 0 && r.Period <= 0)) {
			t.Fatalf("ParseRate(%q) = %+v", s, r)
		}
	})
}

// FuzzLoad: any environment gives a config or one setting error, never a
// panic or a multi-line message.
func FuzzLoad(f *testing.F) {
	f.Add("0", "abc", "api.example.com", "3003", "https://a.b", "10.0.0.0/8", "1048576")
	f.Add("1", "", "", "", "", "", "")
	f.Fuzz(func(t *testing.T, debug, key, hosts, port, cors, proxies, maxBody string) {
		env := map[string]string{"DEBUG": debug, "SECRET_KEY": key, "ALLOWED_HOSTS": hosts, "PORT": port,
			"CORS_ALLOWED_ORIGINS": cors, "TRUSTED_PROXIES": proxies, "MAX_BODY_BYTES": maxBody}
		c, err := load(env)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "setting ") {
				t.Fatalf("error %q does not name a setting", err)
			}
			return
		}
		if c.Port < 1 || c.Port > 65535 || c.MaxBodyBytes < 1 || len(c.AllowedHosts) == 0 {
			t.Fatalf("accepted bad config %+v", c)
		}
	})
}

// TestDatabaseURLWithPasswordFile: the URL without its password (in a
// Kubernetes ConfigMap) and the password from a mounted secret file.
func TestDatabaseURLWithPasswordFile(t *testing.T) {
	pw := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pw, []byte("p@ss w/rd\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for url, want := range map[string]string{
		"postgres://isis@db.example.com:5432/isis?sslmode=verify-full": "postgres://isis:p%40ss%20w%2Frd@db.example.com:5432/isis?sslmode=verify-full",
		"host=db.example.com user=isis sslmode=verify-full":            "host=db.example.com user=isis sslmode=verify-full password='p@ss w/rd'",
	} {
		c, err := load(map[string]string{"SECRET_KEY": goodKey, "ALLOWED_HOSTS": "x", "DATABASE_URL": url, "DATABASE_PASSWORD_FILE": pw})
		if err != nil {
			t.Fatalf("%s: %v", url, err)
		}
		if c.DatabaseDSN != want {
			t.Errorf("DSN = %q, want %q", c.DatabaseDSN, want)
		}
	}
}
