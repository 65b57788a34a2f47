package ops

import (
	"fmt"

	"github.com/isis-project/isis/ops/podman"
)

// TargetImageName picks the image for up, migrate and collectstatic: a
// pushed digest reference (backend.image or --image), else --tag, else
// backend.tag, else what the backend runs, else :latest.
func (c *Config) TargetImageName(tag, running string) string {
	switch {
	case c.PullsImage():
		return c.Backend.Image
	case tag != "":
		return c.BackendImage(tag)
	case c.Backend.Tag != "":
		return c.BackendImage(c.Backend.Tag)
	case running != "":
		return running
	}
	return c.BackendImage("latest")
}

// TargetImage is TargetImageName for this host; the image must exist, or
// be a pushed image, pulled from its registry.
func TargetImage(conn podman.Engine, c *Config, tag string) (string, error) {
	running, _ := CurrentImage(conn, c)
	image := c.TargetImageName(tag, running)
	if c.PullsImage() {
		if _, err := EnsureImage(conn, c, image, nil); err != nil {
			return "", err
		}
		return image, nil
	}
	ok, err := ImageExists(conn, image)
	if err != nil {
		return "", err
	}
	if !ok {
		return "", fmt.Errorf("image %s is missing on the host: run isisctl build", image)
	}
	return image, nil
}
