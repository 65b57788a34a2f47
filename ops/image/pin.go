package image

import (
	"fmt"
	"strings"

	"github.com/isis-project/isis/ops/config"
	"github.com/isis-project/isis/ops/podman"
	"go.podman.io/image/v5/docker/reference"
)

// Pin is ref pinned to the digest the Podman host knows for it
// (name@sha256:…, the name as ref spells it).
func Pin(conn podman.Engine, ref string) (string, error) {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return "", fmt.Errorf("%q is not an image reference: %v", ref, err)
	}
	img, err := conn.Image(ref)
	if err != nil {
		if podman.IsNotFound(err) {
			return "", fmt.Errorf("the Podman host has no image %s (isisctl build)", ref)
		}
		return "", fmt.Errorf("inspect %s: %v", ref, lastPart(err))
	}
	for _, rd := range img.RepoDigests {
		if n, err := reference.ParseNormalizedNamed(rd); err == nil && n.Name() == named.Name() && config.IsDigestRef(rd) {
			return reference.FamiliarName(n) + "@" + n.(reference.Digested).Digest().String(), nil
		}
	}
	if img.Digest == "" {
		return "", fmt.Errorf("the Podman host knows no digest of %s", ref)
	}
	return reference.FamiliarName(named) + "@" + img.Digest, nil
}

// lastPart is the end of a long error from the API.
func lastPart(err error) string {
	s := err.Error()
	if i := strings.LastIndex(s, ": "); i >= 0 && len(s) > 120 {
		return s[i+2:]
	}
	return s
}
