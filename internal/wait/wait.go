// Package wait polls for a condition in tests that watch something settle
// (a notification landing, a cache turning on, a server coming up).
package wait

import (
	"testing"
	"time"
)

// For polls ok every 5 ms until it holds, failing tb after 5 seconds.
func For(tb testing.TB, what string, ok func() bool) {
	tb.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
