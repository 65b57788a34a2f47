package config

import (
	"fmt"

	"go.podman.io/image/v5/docker/reference"
)

// The image a rendered file names (a quadlet unit, a Kubernetes manifest)
// is pinned: a digest, or a tag other than latest. A bare name is :latest
// to every puller, and latest moves under the units and the cluster: the
// next build or pull runs other code, and no cluster can pull a localhost/
// image at all. Podman-run containers (deploy, up) are not files: Podman
// resolves the name to an image id when it creates them, and that id is
// part of the specification's hash.

// IsPinnedRef reports whether ref names one image for good: a digest
// reference (name@sha256:…) or a tag other than latest.
func IsPinnedRef(ref string) bool {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return false
	}
	if _, ok := named.(reference.Digested); ok {
		return true
	}
	t, ok := named.(reference.Tagged)
	return ok && t.Tag() != "latest"
}

// UnpinnedImageError refuses to render an image that is not pinned, in
// one line that says what pins it.
type UnpinnedImageError struct {
	Image string
	Kube  bool   // render --kube (else quadlet units)
	Why   string // why it could not be pinned by digest ("" when not tried)
}

func (e *UnpinnedImageError) Error() string {
	why := ""
	if e.Why != "" {
		why = "; " + e.Why
	}
	if e.Kube {
		return fmt.Sprintf("render --kube: image %s is not pinned (a tag other than latest, or a digest: :latest moves under the cluster%s): "+
			"set kube.image, pass --tag TAG, or run isisctl build --push", e.Image, why)
	}
	return fmt.Sprintf("image %s is not pinned (a tag other than latest, or a digest: quadlet units never run a moving :latest%s): "+
		"pass --tag TAG (isisctl build prints it), set backend.tag, or run isisctl build --push and use its digest as backend.image", e.Image, why)
}
