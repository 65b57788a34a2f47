// Package testenv holds the one rule for tests that need something from
// outside Go (a tool, a service, an image), and what tests read of the
// process they run in (the race detector, the peak RSS).
package testenv

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

// Missing stops a test whose prerequisite what is absent: a failure under
// CI (CI set: scripts/test.sh installs and starts everything, so a missing
// piece is a broken set-up), a skip that says so elsewhere. how says what
// provides it.
func Missing(t testing.TB, what, how string) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf("%s is missing: %s", what, how)
	}
	t.Skipf("%s is missing, so this test is skipped (%s; with CI set it fails instead)", what, how)
}

// PeakRSS resets the process's peak resident set (clear_refs 5) and returns
// a function reading it (VmHWM) in MiB, 0 where /proc says nothing.
func PeakRSS() func() float64 {
	os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
	return func() float64 {
		b, _ := os.ReadFile("/proc/self/status")
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "VmHWM:") {
				kb, _ := strconv.Atoi(strings.Fields(l)[1])
				return float64(kb) / 1024
			}
		}
		return 0
	}
}
