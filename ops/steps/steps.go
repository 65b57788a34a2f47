// Package steps is the one step engine of isisctl's multi-step operations
// (deploy, cutover, backup, restore, import-django): an ordered table of
// steps, each with a summary (the command's help and the docs), a plan
// (what --dry-run prints), a run, an undo and a clean-up. Every operation
// prints, dry-runs and undoes the same way: a step that fails is recorded
// as failed, the steps before it are undone newest first, and what the
// steps made for the operation's time only is removed at its end.
package steps

import (
	"fmt"
	"strings"
	"time"
)

// Step is one step as it ran: what progress prints and --output json reports.
type Step struct {
	N        int           `json:"n"`
	Total    int           `json:"total"`
	Name     string        `json:"name"`
	Status   string        `json:"status"` // ok, changed, unchanged, skipped, failed, planned
	Detail   string        `json:"detail,omitempty"`
	Duration time.Duration `json:"duration_ns"`
}

// String is the step as progress prints it: counter, name, status, time
// and detail.
func (s Step) String() string {
	detail := ""
	if s.Detail != "" {
		detail = ": " + s.Detail
	}
	return fmt.Sprintf("[%d/%d] %-13s %-9s %7s%s", s.N, s.Total, s.Name, s.Status, s.Duration.Round(time.Millisecond), detail)
}

// Def is one step of an operation whose runs share the state S.
type Def[S any] struct {
	Name string
	// Summary is the step in the command's help.
	Summary string
	// Plan is what --dry-run prints for it (nil: Summary). It changes nothing.
	Plan func(s S) string
	// Run does it, reporting a status (ok, changed, unchanged) and a detail.
	Run func(s S) (status, detail string, err error)
	// Undo reverses it when a later step fails (nil: nothing to undo). A
	// step that fails half way puts back what it did itself.
	Undo func(s S) error
	// Cleanup removes what the step made for the operation's time only (a
	// helper container, a temporary role or secret): it runs when the run
	// ends, failed or not, for every step that started (the failed one
	// too), newest first, after the undos. It reports what it could not
	// remove itself.
	Cleanup func(s S)
}

// Error is a step that failed (exit code 1).
type Error struct {
	Step       string
	Err        error
	RolledBack string // the image rolled back to, if any
}

func (e *Error) Error() string {
	msg := fmt.Sprintf("%s failed: %v", e.Step, e.Err)
	if e.RolledBack != "" {
		msg += "; rolled back to " + e.RolledBack + ", which is serving"
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// UndoError is a failed step (Err) whose undo failed too: what is left
// half done is in UndoErr.
type UndoError struct {
	Err     error
	Step    string // the step whose undo failed
	UndoErr error
}

func (e *UndoError) Error() string {
	return fmt.Sprintf("%v; undoing %s failed too: %v", e.Err, e.Step, e.UndoErr)
}

func (e *UndoError) Unwrap() error { return e.Err }

// Names are the steps' names, in order.
func Names[S any](table []Def[S]) []string {
	names := make([]string, len(table))
	for i, s := range table {
		names[i] = s.Name
	}
	return names
}

// Help describes the steps, one line each, numbered with width digits.
func Help[S any](table []Def[S], width int) string {
	var b strings.Builder
	for i, s := range table {
		fmt.Fprintf(&b, "  %*d. %-13s %s\n", width, i+1, s.Name, s.Summary)
	}
	return b.String()
}

// Plans are the dry-run lines of table: "name: plan" (the summary when the
// step has no Plan).
func Plans[S any](table []Def[S], s S) []string {
	var lines []string
	for _, st := range table {
		line := st.Name + ": " + st.Summary
		if st.Plan != nil {
			line = st.Name + ": " + st.Plan(s)
		}
		lines = append(lines, line)
	}
	return lines
}

// Record runs f as step n of total, times it, appends its Step to rec
// (status "failed" and the error as detail when it fails) and reports it to
// progress.
func Record(rec *[]Step, progress func(Step), n, total int, name string, f func() (status, detail string, err error)) error {
	t := time.Now()
	status, detail, err := f()
	s := Step{N: n, Total: total, Name: name, Status: status, Detail: detail, Duration: time.Since(t)}
	if err != nil {
		s.Status, s.Detail = "failed", err.Error()
	}
	*rec = append(*rec, s)
	if progress != nil {
		progress(s)
	}
	return err
}

// Runner runs a table of steps on one state.
type Runner[S any] struct {
	Table    []Def[S]
	State    S
	Rec      *[]Step
	Progress func(Step)
	// Fail turns the error of step i into the operation's (nil: an *Error
	// naming the step), before an undo's failure is added to it.
	Fail func(i int, err error) error
}

// Run runs the steps from index first to last (inclusive), in order. When
// one fails, the steps before it, down to first, are undone newest first;
// an undo that fails too stops the undo and is named in the error. Then
// the started steps' clean-ups run, newest first.
func (r *Runner[S]) Run(first, last int) error {
	started := first - 1
	defer func() {
		for j := started; j >= first; j-- {
			if c := r.Table[j].Cleanup; c != nil {
				c(r.State)
			}
		}
	}()
	for i := first; i <= last; i++ {
		started = i
		st := r.Table[i]
		err := Record(r.Rec, r.Progress, i+1, len(r.Table), st.Name, func() (string, string, error) { return st.Run(r.State) })
		if err == nil {
			continue
		}
		if r.Fail != nil {
			err = r.Fail(i, err)
		} else {
			err = &Error{Step: st.Name, Err: err}
		}
		for j := i - 1; j >= first; j-- {
			if undo := r.Table[j].Undo; undo != nil {
				if uerr := undo(r.State); uerr != nil {
					return &UndoError{Err: err, Step: r.Table[j].Name, UndoErr: uerr}
				}
			}
		}
		return err
	}
	return nil
}

// Progress receives each step as it ends.
type Progress func(s Step)
