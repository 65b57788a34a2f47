package apihttp

import (
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/isis-project/isis/internal/doctest"
)

// docRoute is one row of the route table in docs/api.md: "| GET, HEAD | `/api/x/{id}/` | who |".
var docRoute = regexp.MustCompile("^\\| ([A-Z, ]+) \\| `(/[^`]*)` \\|")

// TestDocsRoutesMatchRouter: the route table of docs/api.md lists every
// route the server registers, and only those.
func TestDocsRoutesMatchRouter(t *testing.T) {
	documented := map[string]bool{}
	for _, line := range doctest.Section(t, "../../docs/api.md", "## Routes") {
		if m := docRoute.FindStringSubmatch(line); m != nil {
			for _, method := range strings.Split(m[1], ",") {
				documented[strings.TrimSpace(method)+" "+docPath(m[2])] = true
			}
		}
	}
	registered := map[string]bool{}
	for _, r := range NewServer(testEnv(t, nil), nil, Services{}).Routes() {
		if r.Method == http.MethodOptions || r.Name == "echo_route_not_found" || r.Method == "echo_route_not_found" {
			continue // any path answers a preflight; Echo's own not-found routes
		}
		registered[r.Method+" "+docPath(r.Path)] = true
	}
	missing, extra := doctest.Diff(registered, documented)
	if len(missing) > 0 || len(extra) > 0 {
		t.Errorf("docs/api.md's route table and the router differ\nrouted, not in the table: %v\nin the table, not routed: %v", missing, extra)
	}
	if len(documented) < 40 {
		t.Errorf("only %d routes read from docs/api.md: is the table still under \"## Routes\"?", len(documented))
	}
}

// docPath writes a path one way for both sides: no trailing slash,
// parameters as {name}, a wildcard as {path}.
func docPath(p string) string {
	parts := strings.Split(strings.TrimSuffix(p, "/"), "/")
	for i, s := range parts {
		switch {
		case s == "*":
			parts[i] = "{path}"
		case strings.HasPrefix(s, ":"):
			parts[i] = "{" + s[1:] + "}"
		}
	}
	if out := strings.Join(parts, "/"); out != "" {
		return out
	}
	return "/"
}

// docError is one row of the error table in docs/api.md: "| 409 | `conflict` | when |".
var docError = regexp.MustCompile("^\\| (\\d{3}) \\| `([a-z_]+)` \\|")

// TestDocsErrorCodes: the error table of docs/api.md lists every code the
// server maps to a status (codeStatus), with that status, plus the codes
// serveContent writes itself, and nothing else.
func TestDocsErrorCodes(t *testing.T) {
	b, err := os.ReadFile("../../docs/api.md")
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]int{}
	inSection := false
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "## ") {
			inSection = line == "## Errors"
			continue
		}
		if m := docError.FindStringSubmatch(line); inSection && m != nil {
			status, _ := strconv.Atoi(m[1])
			documented[m[2]] = status
		}
	}
	want := map[string]int{
		"range_not_satisfiable": http.StatusRequestedRangeNotSatisfiable, // serveContent
		"precondition_failed":   http.StatusPreconditionFailed,           // serveContent
	}
	for code, status := range codeStatus {
		want[code] = status
	}
	for code, status := range want {
		if got, ok := documented[code]; !ok {
			t.Errorf("docs/api.md's error table lacks %s (%d)", code, status)
		} else if got != status {
			t.Errorf("docs/api.md says %s is %d; the server answers %d", code, got, status)
		}
	}
	for code := range documented {
		if _, ok := want[code]; !ok {
			t.Errorf("docs/api.md's error table lists %s, which the server never answers", code)
		}
	}
}
