package deploy

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/isis-project/isis/ops/steps"
)

// deployUpStep is Steps' up step.
func deployUpStep(t *testing.T) Step {
	for _, s := range Steps {
		if s.Name == "up" {
			return s
		}
	}
	t.Fatal("no up step")
	return Step{}
}

// TestDeployUndo: a step after up that fails puts the backend back on the
// image it ran before the deploy, in both slots, and the deploy says so; an
// undo that fails too is named.
func TestDeployUndo(t *testing.T) {
	for _, tc := range []struct {
		name     string
		undoFail bool
		want     string
	}{
		{"undone", false, "verify failed: boom"},
		{"undo fails too", true, "verify failed: boom; undoing up failed too: rollback to img:old: new backend img:old in isis-backend-b: create container \"isis-backend-b\": injected create failure"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newBackendFake(t)
			d := &deployRun{ctx: context.Background(), conn: b.f, c: b.c, r: &Result{Image: "img:new"}, local: true, current: "img:old"}
			table := []Step{deployUpStep(t), {Name: "verify", Run: func(d *deployRun) (string, string, error) {
				if !BackendUpToDate(d.conn, d.c, "img:new") {
					t.Error("up did not switch to img:new before the failing step")
				}
				if tc.undoFail {
					b.f.Fail = failOnce("create", b.c.StandbyName())
				}
				return "", "", errors.New("boom")
			}}}
			run := &steps.Runner[*deployRun]{Table: table, State: d, Rec: &d.r.Steps}
			err := run.Run(0, 1)
			if err == nil || err.Error() != tc.want {
				t.Fatalf("err = %v\nwant %s", err, tc.want)
			}
			if tc.undoFail {
				return
			}
			if !d.r.RolledBack || d.r.Previous != "img:old" {
				t.Errorf("result: rolled back %v to %q", d.r.RolledBack, d.r.Previous)
			}
			if !BackendUpToDate(b.f, b.c, "img:old") {
				t.Errorf("after the undo the slots are not on img:old: %v", b.f.Names())
			}
			if err := rolledBack(err, d.r); !strings.HasSuffix(err.Error(), "rolled back to img:old, which is serving") {
				t.Errorf("deploy error = %v", err)
			}
		})
	}
}
