package ops

import (
	"context"
	"strings"
	"testing"
	"time"
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
	if _, err := Cutover(context.Background(), nil, DefaultConfig(), "img", CutoverOptions{}); err == nil || !strings.Contains(err.Error(), "--switch is required") {
		t.Errorf("a cutover without a switch command: %v", err)
	}
}
