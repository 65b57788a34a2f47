package main

import (
	"context"

	"github.com/isis-project/isis/ops/config"
	"github.com/isis-project/isis/ops/image"
)

// pinned is want when it is pinned (a tag other than latest, or a digest);
// else, when the Podman host answers and has it, want pinned to the digest
// Podman knows (pinned true); else the one-line refusal, which says what
// pins it. render and install never write a moving :latest.
func (f *factory) pinned(ctx context.Context, want string, kube bool) (ref string, pinned bool, err error) {
	if config.IsPinnedRef(want) {
		return want, false, nil
	}
	why := "no Podman host answered to pin it by digest (" + f.URL() + ")"
	if conn, cerr := f.Podman(ctx); cerr == nil {
		ref, perr := image.Pin(conn, want)
		if perr == nil {
			return ref, true, nil
		}
		why = perr.Error()
	}
	return "", false, &config.UnpinnedImageError{Image: want, Kube: kube, Why: why}
}
