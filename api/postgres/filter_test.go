package postgres

import (
	"strings"
	"testing"
)

func TestOrderBy(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", "m.code"},
		{"name", "m.search_name, m.code"},
		{"-name", "m.search_name DESC, m.code"},
		{"department,-code", "m.department_code, m.code DESC, m.code"},
		{"name,name", "m.search_name, m.code"},
		{"password", "m.code"},
		{"name; DROP TABLE x", "m.code"},
	} {
		if got := orderBy(tc.in, municipalityOrdering, "m.code"); got != tc.want {
			t.Errorf("orderBy(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestSearchTerms(t *testing.T) {
	got := searchTerms(" Medellín,  100%_sure \\ ")
	want := []string{"%medellin%", `%100\%\_sure%`, `%\\%`}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("searchTerms = %q, want %q", got, want)
	}
}

// FuzzOrderBy: whatever the client sends, ORDER BY holds only allowed columns.
func FuzzOrderBy(f *testing.F) {
	f.Add("name,-code")
	f.Add("-;--,(select 1)")
	allowed := map[string]bool{"m.code": true, "m.search_name": true, "m.department_code": true}
	f.Fuzz(func(t *testing.T, s string) {
		for _, part := range strings.Split(orderBy(s, municipalityOrdering, "m.code"), ", ") {
			if !allowed[strings.TrimSuffix(part, " DESC")] {
				t.Fatalf("orderBy(%q) let %q through", s, part)
			}
		}
	})
}

// FuzzSearchTerms: every term is %…% with its own % and _ escaped, and no NUL.
func FuzzSearchTerms(f *testing.F) {
	f.Add("medellín bogotá")
	f.Add("%_\\\x00,,")
	f.Fuzz(func(t *testing.T, s string) {
		terms := searchTerms(s)
		if len(terms) > 8 {
			t.Fatalf("%d terms", len(terms))
		}
		for _, term := range terms {
			inner := term[1 : len(term)-1]
			if !strings.HasPrefix(term, "%") || !strings.HasSuffix(term, "%") || strings.Contains(term, "\x00") {
				t.Fatalf("term %q", term)
			}
			for i := 0; i < len(inner); i++ {
				switch inner[i] {
				case '\\':
					i++ // escaped character follows
				case '%', '_':
					t.Fatalf("unescaped wildcard in %q", term)
				}
			}
		}
	})
}
