package config

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/isis-project/isis/internal/doctest"
)

// TestDocsSettings: the settings table of docs/settings.md names every setting the
// server reads (those Load reads in config.go), and no setting that does not
// exist.
func TestDocsSettings(t *testing.T) {
	read := func(p string) string {
		b, err := os.ReadFile(filepath.FromSlash(p))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	settings := map[string]bool{}
	for _, m := range regexp.MustCompile(`e\.[a-z]+\("([A-Z][A-Z0-9_]+)"`).FindAllStringSubmatch(read("config.go"), -1) {
		settings[m[1]] = true
	}
	if len(settings) < 40 {
		t.Fatalf("only %d settings found in the source: did the way they are read change?", len(settings))
	}
	documented := map[string]bool{}
	for _, line := range doctest.Section(t, "../../docs/settings.md", "## Environment variables") {
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		first := strings.SplitN(line, "|", 3)[1]
		for _, m := range regexp.MustCompile("`([A-Z][A-Z0-9_]+)`").FindAllStringSubmatch(first, -1) {
			documented[m[1]] = true
		}
	}
	for s := range settings {
		if !documented[s] {
			t.Errorf("setting %s is not in docs/settings.md's table", s)
		}
	}
	for s := range documented {
		if !settings[s] {
			t.Errorf("docs/settings.md's table names %s, which the server does not read", s)
		}
	}
}
