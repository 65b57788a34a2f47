package verify

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// runbookEntries are the level-2 headings of docs/runbook.md, in order,
// and the text under each.
func runbookEntries(t *testing.T) (ids []string, body map[string]string) {
	t.Helper()
	b, err := os.ReadFile("../../" + RunbookPage)
	if err != nil {
		t.Fatal(err)
	}
	body = map[string]string{}
	cur := ""
	for _, line := range strings.Split(string(b), "\n") {
		if id, ok := strings.CutPrefix(line, "## "); ok {
			cur = strings.TrimSpace(id)
			ids = append(ids, cur)
			continue
		}
		if cur != "" {
			body[cur] += line + "\n"
		}
	}
	return ids, body
}

// TestRunbookMatchesAlarms: every alarm isisctl can raise has its entry in
// docs/runbook.md, under a heading that is its id (the anchor verify and
// status print), and every entry is an alarm: both lists are equal, in
// the same order. Each entry says what it means, what shows more and what
// fixes it.
func TestRunbookMatchesAlarms(t *testing.T) {
	ids, body := runbookEntries(t)
	if !slices.Equal(ids, Alarms) {
		t.Errorf("docs/runbook.md's headings differ from ops.Alarms:\n page   %v\n alarms %v", ids, Alarms)
	}
	for _, id := range Alarms {
		if !slices.Contains(ids, id) {
			t.Errorf("alarm %s has no entry in docs/runbook.md", id)
		}
	}
	for _, id := range ids {
		if !slices.Contains(Alarms, id) {
			t.Errorf("docs/runbook.md's entry %s is no alarm isisctl raises", id)
		}
		for _, part := range []string{"**Means:**", "**Shows more:**", "**Fixes:**"} {
			if !strings.Contains(body[id], part) {
				t.Errorf("entry %s lacks %s", id, part)
			}
		}
	}
}

// TestAlarmsListsEveryAlarm: every Alarm* constant of the package is in
// Alarms, once, so a new condition cannot skip the runbook.
func TestAlarmsListsEveryAlarm(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "alarms.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var consts []string
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, s := range g.Specs {
			vs := s.(*ast.ValueSpec)
			for i, n := range vs.Names {
				if strings.HasPrefix(n.Name, "Alarm") && i < len(vs.Values) {
					if lit, ok := vs.Values[i].(*ast.BasicLit); ok {
						v, _ := strconv.Unquote(lit.Value)
						consts = append(consts, v)
					}
				}
			}
		}
	}
	if len(consts) != len(Alarms) {
		t.Errorf("%d Alarm constants, %d in Alarms", len(consts), len(Alarms))
	}
	for _, v := range consts {
		n := 0
		for _, a := range Alarms {
			if a == v {
				n++
			}
		}
		if n != 1 {
			t.Errorf("alarm %s is in Alarms %d time(s)", v, n)
		}
	}
}
