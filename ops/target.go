package ops

import (
	"context"
	"fmt"
)

// TargetImageName picks the image for up, migrate and collectstatic: --tag,
// else backend.tag, else what the backend runs, else :latest.
func (c *Config) TargetImageName(tag, running string) string {
	switch {
	case tag != "":
		return c.BackendImage(tag)
	case c.Backend.Tag != "":
		return c.BackendImage(c.Backend.Tag)
	case running != "":
		return running
	}
	return c.BackendImage("latest")
}

// TargetImage is TargetImageName for this host; the image must exist.
func TargetImage(conn context.Context, c *Config, tag string) (string, error) {
	running, _ := CurrentImage(conn, c)
	image := c.TargetImageName(tag, running)
	ok, err := ImageExists(conn, image)
	if err != nil {
		return "", err
	}
	if !ok {
		return "", fmt.Errorf("image %s is missing on the host: run isisctl build", image)
	}
	return image, nil
}
