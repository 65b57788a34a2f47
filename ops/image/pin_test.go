package image

import (
	"strings"
	"testing"

	"github.com/isis-project/isis/ops/config"
	"github.com/isis-project/isis/ops/podman"
	"github.com/isis-project/isis/ops/podman/podmantest"
)

// TestPin: a moving name becomes the digest reference Podman knows,
// spelt as the configuration spells the name; what cannot be pinned says why.
func TestPin(t *testing.T) {
	f := podmantest.New()
	f.Images["localhost/isis-backend:latest"] = &podman.Image{ID: "abc", Digest: testDigest,
		RepoDigests: []string{"localhost/other@sha256:1111111111111111111111111111111111111111111111111111111111111111", "localhost/isis-backend@" + testDigest}}
	f.Images["isis-backend"] = &podman.Image{ID: "def", Digest: testDigest}
	f.Images["localhost/nodigest:latest"] = &podman.Image{ID: "ghi"}
	for _, tc := range []struct{ ref, want, err string }{
		{"localhost/isis-backend:latest", "localhost/isis-backend@" + testDigest, ""},
		{"isis-backend", "isis-backend@" + testDigest, ""},
		{"localhost/missing:latest", "", "has no image localhost/missing:latest"},
		{"localhost/nodigest:latest", "", "knows no digest"},
		{"Not A Reference", "", "not an image reference"},
	} {
		got, err := Pin(f, tc.ref)
		if got != tc.want || (err == nil) != (tc.err == "") || err != nil && !strings.Contains(err.Error(), tc.err) {
			t.Errorf("Pin(%q) = %q, %v; want %q, %q", tc.ref, got, err, tc.want, tc.err)
		}
		if got != "" && !config.IsPinnedRef(got) {
			t.Errorf("Pin(%q) = %q: not pinned", tc.ref, got)
		}
	}
}
