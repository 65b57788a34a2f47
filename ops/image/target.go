package image

import (
	"fmt"

	"github.com/isis-project/isis/ops/config"
	"github.com/isis-project/isis/ops/podman"
)

// Target is TargetImageName for this host; the image must exist, or
// be a pushed image, pulled from its registry.
func Target(conn podman.Engine, c *config.Config, tag string) (string, error) {
	running, _ := Current(conn, c)
	image := c.TargetImageName(tag, running)
	if c.PullsImage() {
		if _, err := Ensure(conn, c, image, nil); err != nil {
			return "", err
		}
		return image, nil
	}
	ok, err := Exists(conn, image)
	if err != nil {
		return "", err
	}
	if !ok {
		return "", fmt.Errorf("image %s is missing on the host: run isisctl build", image)
	}
	return image, nil
}
