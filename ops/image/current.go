package image

import (
	"github.com/isis-project/isis/ops/config"
	"github.com/isis-project/isis/ops/podman"
)

// Current is the image the backend runs ("" when none): slot A's,
// else slot B's.
func Current(conn podman.Engine, c *config.Config) (string, error) {
	for _, sl := range c.Slots() {
		st, err := conn.Inspect(sl.Name)
		if err != nil {
			return "", err
		}
		if st.Exists {
			return st.Image, nil
		}
	}
	return "", nil
}
