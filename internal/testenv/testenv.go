// Package testenv holds the one rule for tests that need something from
// outside Go (a tool, a service, an image).
package testenv

import (
	"os"
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
