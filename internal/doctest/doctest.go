// Package doctest helps the tests that keep the documentation true: they read
// a table under a heading of a Markdown file and compare what it names with
// what the code has.
package doctest

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"unicode"
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

// Anchors returns the anchors GitHub gives the headings of a Markdown text
// (lower case, punctuation dropped, spaces as hyphens; a repeated heading gets
// -1, -2, …). Lines inside fenced code blocks are not headings.
func Anchors(md string) map[string]bool {
	anchors := map[string]bool{}
	seen := map[string]int{}
	fenced := false
	for _, line := range strings.Split(md, "\n") {
		if strings.HasPrefix(line, "```") {
			fenced = !fenced
			continue
		}
		if fenced || !strings.HasPrefix(line, "#") {
			continue
		}
		title := strings.TrimSpace(strings.TrimLeft(line, "#"))
		var b strings.Builder
		for _, r := range strings.ToLower(title) {
			switch {
			case r == ' ':
				b.WriteRune('-')
			case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
				b.WriteRune(r)
			}
		}
		a := b.String()
		if n := seen[a]; n > 0 {
			seen[a]++
			a = a + "-" + strconv.Itoa(n)
		} else {
			seen[a] = 1
		}
		anchors[a] = true
	}
	return anchors
}

var linkRE = regexp.MustCompile(`\]\(([^)\s]+)\)`)

// BrokenLinks returns one line for each relative link of the Markdown file at
// path (outside fenced code) that names a file that does not exist or a
// heading its file does not have. Links with a scheme (https:, mailto:) are
// not followed.
func BrokenLinks(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var broken []string
	fenced := false
	for n, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "```") {
			fenced = !fenced
			continue
		}
		if fenced {
			continue
		}
		for _, m := range linkRE.FindAllStringSubmatch(line, -1) {
			target := m[1]
			if strings.Contains(target, ":") {
				continue
			}
			file, anchor, _ := strings.Cut(target, "#")
			where := path
			if file != "" {
				where = filepath.Join(filepath.Dir(path), filepath.FromSlash(file))
			}
			text, err := os.ReadFile(where)
			if err != nil {
				if st, serr := os.Stat(where); serr == nil && st.IsDir() && anchor == "" {
					continue
				}
				broken = append(broken, fmt.Sprintf("%s:%d: %s: no such file", path, n+1, target))
				continue
			}
			if anchor != "" && !Anchors(string(text))[anchor] {
				broken = append(broken, fmt.Sprintf("%s:%d: %s: %s has no heading #%s", path, n+1, target, where, anchor))
			}
		}
	}
	return broken, nil
}
