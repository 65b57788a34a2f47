package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestDrillUsage: bad flags are exit 2 with one line naming the flag,
// before the configuration is read or Podman tried.
func TestDrillUsage(t *testing.T) {
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
		{[]string{"--bound", "soon"}, `--bound "soon" is not a positive duration like 30s`},
		{[]string{"--bound", "0s"}, `--bound "0s" is not a positive duration`},
		{[]string{"--bound", "-5s"}, `--bound "-5s" is not a positive duration`},
		{[]string{"--bound", "2h"}, "--bound: 2h0m0s is not between 0 and 10m0s"},
		{[]string{"--public-url", "http://api.example.com"}, `--public-url: "http://api.example.com" is plain HTTP to another machine`},
		{[]string{"--public-url", "https://api.example.com/api/"}, "is not a base URL"},
		{[]string{"extra"}, "unknown command"},
	} {
		var out, errb bytes.Buffer
		code := run(append([]string{"drill", "--config", "/nonexistent.yaml"}, tc.args...), strings.NewReader(""), &out, &errb, getenv)
		if code != exitUsage || !strings.Contains(errb.String(), tc.want) || strings.Count(errb.String(), "\n") != 1 {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 and %q", tc.args, code, errb.String(), tc.want)
		}
	}
}
