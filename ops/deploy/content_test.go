package deploy

import "testing"

// TestRunsContent: the migrate job is skipped for an image whose content
// slot A runs already (under another tag), only then.
func TestRunsContent(t *testing.T) {
	b := newBackendFake(t) // both slots run img:old, content "old"
	for _, tc := range []struct {
		id   string
		stop bool // slot A stopped
		want bool
	}{
		{"old", false, true},
		{"new", false, false},
		{"", false, false},
		{"old", true, false},
	} {
		if tc.stop {
			if err := b.f.Stop(b.c.Backend.Name, 0); err != nil {
				t.Fatal(err)
			}
		}
		if got := runsContent(b.f, b.c, tc.id); got != tc.want {
			t.Errorf("content %q, slot A stopped %v: %v, want %v", tc.id, tc.stop, got, tc.want)
		}
	}
}
