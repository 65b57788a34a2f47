package ops_test

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestArrowsPointDown keeps the map in doc.go true: each package under ops/
// imports only packages listed below it there, so no package imports one
// that imports it, and every package is on the map.
func TestArrowsPointDown(t *testing.T) {
	doc, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, m := range regexp.MustCompile(`(?m)^//\t([a-z]+) {2,}`).FindAllStringSubmatch(string(doc), -1) {
		order = append(order, m[1])
	}
	rank := map[string]int{}
	for i, p := range order {
		rank[p] = i
	}
	dirs, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	const prefix = "github.com/isis-project/isis/ops/"
	checked := 0
	for _, d := range dirs {
		if !d.IsDir() || d.Name() == "testdata" {
			continue
		}
		pkg := d.Name()
		r, ok := rank[pkg]
		if !ok {
			t.Errorf("ops/%s is not on the map in doc.go", pkg)
			continue
		}
		files, _ := filepath.Glob(filepath.Join(pkg, "*.go"))
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			af, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ImportsOnly)
			if err != nil {
				t.Fatal(err)
			}
			for _, imp := range af.Imports {
				path, _ := strconv.Unquote(imp.Path.Value)
				dep, ok := strings.CutPrefix(path, prefix)
				if !ok {
					continue
				}
				dep, _, _ = strings.Cut(dep, "/")
				checked++
				if rank[dep] <= r {
					t.Errorf("%s imports ops/%s, which the map puts on its level or above it", f, dep)
				}
			}
		}
	}
	if len(order) < 10 || checked < 20 {
		t.Fatalf("read %d packages and %d imports: doc.go's map is not where the test looks", len(order), checked)
	}
}
