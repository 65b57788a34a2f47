package cutover

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/isis-project/isis/internal/opstest"

	"github.com/isis-project/isis/ops/config"
	"github.com/isis-project/isis/ops/podman"
	"github.com/isis-project/isis/ops/podman/podmantest"
)

// TestRunSwitch: the operator's switch command, run with sh -c: its lines
// reach the output, a failure names its exit and last line, and one that
// hangs is stopped at the timeout, children included.
func TestRunSwitch(t *testing.T) {
	for _, tc := range []struct {
		cmd, wantErr string
		lines        []string
	}{
		{"echo one; echo two >&2", "", []string{"one", "two"}},
		{"echo reloading; echo 'nginx: [emerg] unknown directive' >&2; exit 3", "exit status 3: nginx: [emerg] unknown directive", []string{"reloading"}},
		{"sleep 30", "still running after 200ms", nil},
	} {
		var got []string
		began := time.Now()
		err := runSwitch(context.Background(), tc.cmd, 200*time.Millisecond, func(l string) { got = append(got, l) })
		// A command past its timeout is killed with its children, not
		// waited for (sleep 30 would hold the output pipe open).
		if took := time.Since(began); took > 10*time.Second {
			t.Errorf("%q: returned after %s, past its 200ms timeout", tc.cmd, took)
		}
		if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("%q: error %v, want %q", tc.cmd, err, tc.wantErr)
		}
		for _, l := range tc.lines {
			if !strings.Contains(strings.Join(got, "\n"), l) {
				t.Errorf("%q: output %q lacks %q", tc.cmd, got, l)
			}
		}
	}
	if _, err := Run(context.Background(), nil, config.Default(), "img", Options{}); err == nil || !strings.Contains(err.Error(), "--switch is required") {
		t.Errorf("a cutover without a switch command: %v", err)
	}
}

// TestCutoverStopPoints: a cutover stops at the step that fails and says
// where that leaves users: before the switch Django still serves (the switch
// command never ran), after it the proxy points at isis and the way back is
// named. The imports run in podmantest's fake.
func TestCutoverStopPoints(t *testing.T) {
	for _, tc := range []struct {
		name     string
		failRun  int    // the import run (1 = the check's dry run) that exits 1
		switchSh string // the switch command's failure, "" for success
		want     string
		switched bool
		steps    int // steps recorded
	}{
		{name: "check", failRun: 1, want: "(nothing was switched: Django still serves)", steps: 1},
		{name: "import", failRun: 2, want: "(nothing was switched: Django still serves)", steps: 2},
		{name: "switch", switchSh: "exit 3", want: "the switch command failed: exit status 3 (check that the proxy still points at Django", steps: 3},
		{name: "final import", failRun: 3, want: "(the proxy points at isis; to go back, point it at Django again", switched: true, steps: 4},
		// The fake has no backend to verify.
		{name: "verify", want: "(the proxy points at isis; to go back, point it at Django again", switched: true, steps: 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := opstest.ExampleConfig()
			f := podmantest.New()
			f.Images["img:1"] = &podman.Image{ID: "1"}
			runs := 0
			f.RunOut = func(name string) (int, []string, []string) {
				runs++
				if runs == tc.failRun {
					return 1, nil, []string{"import broke"}
				}
				changes := 0
				if runs < 3 {
					changes = 5
				}
				return 0, []string{fmt.Sprintf(`{"changes": %d}`, changes)}, []string{"importing"}
			}
			marker := filepath.Join(t.TempDir(), "switched")
			sh := "touch " + marker
			if tc.switchSh != "" {
				sh = tc.switchSh
			}
			r, err := Run(context.Background(), f, c, "img:1", Options{Switch: sh,
				Import: ImportDjangoOptions{FromDSN: "postgres://django@db/django"}, Settle: time.Millisecond})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v\nwant %q", err, tc.want)
			}
			_, statErr := os.Stat(marker)
			if r.Switched != tc.switched || (statErr == nil) != tc.switched {
				t.Errorf("switched = %v (switch ran: %v), want %v", r.Switched, statErr == nil, tc.switched)
			}
			if len(r.Steps) != tc.steps || r.Steps[len(r.Steps)-1].Status != "failed" || r.Steps[len(r.Steps)-1].Name != tc.name {
				t.Errorf("steps = %+v, want %d, the last %s failed", r.Steps, tc.steps, tc.name)
			}
			if len(f.Containers) != 0 || len(f.Secrets) != 0 {
				t.Errorf("left behind: containers %v, secrets %v", f.Names(), f.Secrets)
			}
		})
	}
}
