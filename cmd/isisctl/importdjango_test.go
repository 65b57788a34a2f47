package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestImportDjangoUsage: bad flags are exit 2 with one clear line, before
// Podman is tried (the URL here answers nothing), and never echo a DSN.
func TestImportDjangoUsage(t *testing.T) {
	empty := filepath.Join(t.TempDir(), "empty")
	os.WriteFile(empty, nil, 0o600)
	getenv := func(k string) string {
		if k == "CONTAINER_HOST" {
			return "unix:///nonexistent/podman.sock"
		}
		return ""
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "exactly one of --from-database NAME and --from DSN"},
		{[]string{"--from-database", "django", "--from", "postgres://u:hunter2@db/x"}, "exactly one of"},
		{[]string{"--from", "postgres://u:hunter2@db/x", "--from-file", empty}, "one of --from and --from-file"},
		{[]string{"--from-file", empty}, "is empty"},
		{[]string{"--from-file", "/nonexistent/dsn"}, "--from-file"},
		{[]string{"--from-database", "x'y"}, "not a PostgreSQL database name"},
	} {
		var out, errb bytes.Buffer
		code := run(append([]string{"import-django", "--config", "/nonexistent.yaml"}, tc.args...), strings.NewReader(""), &out, &errb, getenv)
		if code != exitUsage || !strings.Contains(errb.String(), tc.want) || strings.Count(errb.String(), "\n") != 1 {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 and %q", tc.args, code, errb.String(), tc.want)
		}
		if strings.Contains(out.String()+errb.String(), "hunter2") {
			t.Errorf("%v: the DSN's password is printed", tc.args)
		}
	}
	var out, errb bytes.Buffer
	if code := run([]string{"import-django", "-o", "json"}, strings.NewReader(""), &out, &errb, getenv); code != exitUsage {
		t.Fatalf("json: exit %d", code)
	}
	var m map[string]any
	if err := json.Unmarshal(out.Bytes(), &m); err != nil || m["exit_code"] != float64(exitUsage) {
		t.Errorf("json error: %v %q", err, out.String())
	}
}
