package doctest

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestAnchors(t *testing.T) {
	md := "# Security\n## Client address, scheme and host\n### `isisctl` and *you*\n## Notes\n## Notes\n" +
		"```sh\n# not a heading\n```\n"
	got := Anchors(md)
	for _, want := range []string{"security", "client-address-scheme-and-host", "isisctl-and-you", "notes", "notes-1"} {
		if !got[want] {
			t.Errorf("no anchor %q in %v", want, got)
		}
	}
	if got["not-a-heading"] {
		t.Error("a comment in a code block became a heading")
	}
}

// TestBrokenLinks: each kind of broken link is named, with its line; the
// good ones and the links of code blocks are not.
func TestBrokenLinks(t *testing.T) {
	dir := t.TempDir()
	os.Mkdir(filepath.Join(dir, "docs"), 0o755)
	write := func(name, text string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("docs/a.md", "# A\n## Way back\n")
	write("README.md", "# R\n## Here\n"+
		"[ok](docs/a.md) [ok](docs/a.md#way-back) [ok](#here) [ok](docs) [web](https://example.com/x.md)\n"+
		"[gone](docs/gone.md)\n"+
		"[moved](docs/a.md#the-way-back)\n"+
		"[self](#there)\n"+
		"[old](README.md#cutover-from-django)\n"+
		"```\n[code](nowhere.md)\n```\n")
	broken, err := BrokenLinks(filepath.Join(dir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{":4: docs/gone.md: no such file", ":5: docs/a.md#the-way-back:", ":6: #there:", ":7: README.md#cutover-from-django:"}
	if len(broken) != len(want) {
		t.Fatalf("broken links %q, want %d", broken, len(want))
	}
	for i, w := range want {
		if !strings.Contains(broken[i], w) {
			t.Errorf("broken link %d is %q, want %q in it", i, broken[i], w)
		}
	}
}

// TestRepositoryDocs: the README is the door, not the manual: at most 250
// lines, linking every page of docs/; no relative link of the README or of
// docs/ is broken (a moved section leaves no dangling link behind).
func TestRepositoryDocs(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(readme), "\n"); n > 250 {
		t.Errorf("README.md has %d lines; keep it under 250 and move the manual to docs/", n)
	}
	pages, err := filepath.Glob("../../docs/*.md")
	if err != nil || len(pages) < 3 {
		t.Fatalf("docs pages %v (%v)", pages, err)
	}
	doc := strings.Join(Section(t, "../../README.md", "## Documentation"), "\n")
	for _, p := range pages {
		if !strings.Contains(doc, "](docs/"+filepath.Base(p)+")") {
			t.Errorf("README.md's Documentation list does not link docs/%s", filepath.Base(p))
		}
	}
	for _, p := range append(pages, "../../README.md") {
		broken, err := BrokenLinks(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range broken {
			t.Error(b)
		}
	}
}

// TestRaceSkipsListed: scripts/test.sh runs the server's packages only under
// the race detector, and the Makefile's RACE_SKIPS (with RACE_SKIP_PKGS) runs
// the tests that skip there without it: every test of api/ that skips under
// the race detector is on those lists, or it would never run.
func TestRaceSkipsListed(t *testing.T) {
	mk, err := os.ReadFile("../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	list := func(name string) map[string]bool {
		m := regexp.MustCompile(`(?m)^` + name + `\s*:=\s*(.*)$`).FindSubmatch(mk)
		if m == nil {
			t.Fatalf("the Makefile sets no %s", name)
		}
		out := map[string]bool{}
		for _, f := range strings.FieldsFunc(string(m[1]), func(r rune) bool { return r == '|' || r == ' ' }) {
			out[f] = true
		}
		return out
	}
	tests, pkgs := list("RACE_SKIPS"), list("RACE_SKIP_PKGS")
	files, err := filepath.Glob("../../api/*/*_test.go")
	if err != nil {
		t.Fatal(err)
	}
	skip := regexp.MustCompile(`(?m)^func (Test\w+)\(t \*testing\.T\) \{\n\tif testenv\.Race \{`)
	found := map[string]bool{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), "testenv.Race") && !skip.Match(b) {
			t.Errorf("%s uses testenv.Race other than as a test's first statement: list its tests by hand here", f)
		}
		for _, m := range skip.FindAllSubmatch(b, -1) {
			name, pkg := string(m[1]), "./"+filepath.ToSlash(strings.TrimPrefix(filepath.Dir(f), "../../"))
			found[name] = true
			if !tests[name] || !pkgs[pkg] {
				t.Errorf("%s (%s) skips under the race detector: add it to the Makefile's RACE_SKIPS and %s to RACE_SKIP_PKGS", name, pkg, pkg)
			}
		}
	}
	for name := range tests {
		if !found[name] {
			t.Errorf("the Makefile's RACE_SKIPS names %s, which no api/ test skipping under the race detector is", name)
		}
	}
}
