// Package doctest helps the tests that keep the documentation true: they read
// a table under a heading of a Markdown file and compare what it names with
// what the code has.
package doctest

import (
	"os"
	"sort"
	"strings"
	"testing"
)

// Section returns the lines of the Markdown file at path under heading (the
// whole heading line, e.g. "## Routes") up to the next heading of any level.
// A missing file or heading fails the test.
func Section(t testing.TB, path, heading string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	in := false
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "#") {
			in = line == heading
			continue
		}
		if in {
			out = append(out, line)
		}
	}
	if len(out) == 0 {
		t.Fatalf("%s has no section %q", path, heading)
	}
	return out
}

// Diff returns, sorted, the keys only in a and the keys only in b.
func Diff(a, b map[string]bool) (onlyA, onlyB []string) {
	for k := range a {
		if !b[k] {
			onlyA = append(onlyA, k)
		}
	}
	for k := range b {
		if !a[k] {
			onlyB = append(onlyB, k)
		}
	}
	sort.Strings(onlyA)
	sort.Strings(onlyB)
	return onlyA, onlyB
}
