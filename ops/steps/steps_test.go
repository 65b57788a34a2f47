package steps

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestRunner: the steps run in order; the one that fails is recorded as
// failed and the ones before it, down to first, are undone newest first;
// an undo that fails stops the undo and is named after the step's error.
func TestRunner(t *testing.T) {
	for _, tc := range []struct {
		name        string
		failRun     string // the step whose Run fails
		failUndo    string // the step whose Undo fails
		first       int
		wantLog     []string
		wantErr     string
		wantStatus  []string
		wantUndoErr bool
	}{
		{name: "all ok", wantLog: []string{"run a", "run b", "run c", "run d"}, wantStatus: []string{"ok", "changed", "ok", "changed"}},
		{name: "third fails", failRun: "c", wantLog: []string{"run a", "run b", "run c", "undo b", "undo a"},
			wantErr: "c failed: c broke", wantStatus: []string{"ok", "changed", "failed"}},
		{name: "first fails, nothing to undo", failRun: "a", wantLog: []string{"run a"}, wantErr: "a failed: a broke", wantStatus: []string{"failed"}},
		{name: "undo fails too", failRun: "d", failUndo: "b", wantLog: []string{"run a", "run b", "run c", "run d", "undo b"},
			wantErr: "d failed: d broke; undoing b failed too: undo b broke", wantStatus: []string{"ok", "changed", "ok", "failed"}, wantUndoErr: true},
		{name: "from the second on", failRun: "c", first: 1, wantLog: []string{"run b", "run c", "undo b"},
			wantErr: "c failed: c broke", wantStatus: []string{"changed", "failed"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var log []string
			var table []Def[*[]string]
			for i, name := range []string{"a", "b", "c", "d"} {
				d := Def[*[]string]{Name: name, Summary: "does " + name, Run: func(l *[]string) (string, string, error) {
					*l = append(*l, "run "+name)
					if name == tc.failRun {
						return "", "", errors.New(name + " broke")
					}
					return []string{"ok", "changed"}[i%2], name + " done", nil
				}}
				if name != "c" { // c has nothing to undo
					d.Undo = func(l *[]string) error {
						*l = append(*l, "undo "+name)
						if name == tc.failUndo {
							return errors.New("undo " + name + " broke")
						}
						return nil
					}
				}
				table = append(table, d)
			}
			var rec []Step
			var progressed int
			r := &Runner[*[]string]{Table: table, State: &log, Rec: &rec, Progress: func(Step) { progressed++ }}
			err := r.Run(tc.first, len(table)-1)
			if !slices.Equal(log, tc.wantLog) {
				t.Errorf("log = %v, want %v", log, tc.wantLog)
			}
			if (err == nil) != (tc.wantErr == "") || (err != nil && err.Error() != tc.wantErr) {
				t.Errorf("err = %v, want %q", err, tc.wantErr)
			}
			var ue *UndoError
			if errors.As(err, &ue) != tc.wantUndoErr {
				t.Errorf("UndoError = %v, want %v", ue, tc.wantUndoErr)
			}
			var se *Error
			if err != nil && (!errors.As(err, &se) || se.Step != tc.failRun) {
				t.Errorf("err %v is not an *Error of step %s", err, tc.failRun)
			}
			var status []string
			for i, s := range rec {
				status = append(status, s.Status)
				if s.N != tc.first+i+1 || s.Total != 4 {
					t.Errorf("step %s numbered %d/%d", s.Name, s.N, s.Total)
				}
			}
			if !slices.Equal(status, tc.wantStatus) || progressed != len(rec) {
				t.Errorf("statuses = %v (%d progressed), want %v", status, progressed, tc.wantStatus)
			}
			if n := len(rec); err != nil && rec[n-1].Detail != tc.failRun+" broke" {
				t.Errorf("failed step's detail = %q", rec[n-1].Detail)
			}
		})
	}
}

// TestRunnerFail: Fail turns a step's error into the operation's.
func TestRunnerFail(t *testing.T) {
	table := []Def[int]{{Name: "x", Run: func(int) (string, string, error) { return "", "", errors.New("boom") }}}
	var rec []Step
	r := &Runner[int]{Table: table, Rec: &rec, Fail: func(i int, err error) error { return fmt.Errorf("step %d: %w (hint)", i, err) }}
	if err := r.Run(0, 0); err == nil || err.Error() != "step 0: boom (hint)" {
		t.Errorf("err = %v", err)
	}
}

func TestHelpAndPlans(t *testing.T) {
	table := []Def[int]{{Name: "one", Summary: "first"}, {Name: "two", Summary: "second", Plan: func(n int) string { return fmt.Sprint("plan ", n) }}}
	if got := Help(table, 2); got != "   1. one           first\n   2. two           second\n" {
		t.Errorf("help = %q", got)
	}
	if got := strings.Join(Plans(table, 7), "|"); got != "one: first|two: plan 7" {
		t.Errorf("plans = %q", got)
	}
	if got := Names(table); !slices.Equal(got, []string{"one", "two"}) {
		t.Errorf("names = %v", got)
	}
}

// TestRunnerCleanup: the clean-ups of every started step run when the run
// ends, the failed step's too, newest first, after the undos; steps that
// never started are not cleaned up.
func TestRunnerCleanup(t *testing.T) {
	for _, tc := range []struct {
		failRun string
		wantLog string
	}{
		{"", "run a, run b, run c, clean c, clean a"},
		{"b", "run a, run b, undo a, clean b, clean a"},
		{"a", "run a, clean a"},
	} {
		var log []string
		var table []Def[*[]string]
		for _, name := range []string{"a", "b", "c"} {
			d := Def[*[]string]{Name: name, Run: func(l *[]string) (string, string, error) {
				*l = append(*l, "run "+name)
				if name == tc.failRun {
					return "", "", errors.New(name + " broke")
				}
				return "ok", "", nil
			}, Undo: func(l *[]string) error { *l = append(*l, "undo "+name); return nil }}
			if name != "b" || tc.failRun == "b" {
				d.Cleanup = func(l *[]string) { *l = append(*l, "clean "+name) }
			}
			table = append(table, d)
		}
		var rec []Step
		r := &Runner[*[]string]{Table: table, State: &log, Rec: &rec}
		err := r.Run(0, len(table)-1)
		if got := strings.Join(log, ", "); got != tc.wantLog || (err != nil) != (tc.failRun != "") {
			t.Errorf("fail %q: log %q (err %v), want %q", tc.failRun, got, err, tc.wantLog)
		}
	}
}

func TestStepString(t *testing.T) {
	s := Step{N: 2, Total: 5, Name: "switch", Status: "ok", Detail: "done", Duration: 1234567 * time.Nanosecond}
	if got, want := s.String(), "[2/5] switch        ok            1ms: done"; got != want {
		t.Errorf("%q, want %q", got, want)
	}
}
