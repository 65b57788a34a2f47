package deploy

import (
	"github.com/isis-project/isis/ops/config"
	"github.com/isis-project/isis/ops/podman"
)

// runsContent reports whether slot A runs the image content id (the same
// binary under another tag: a retag, a rollback to the image before). Its
// migrations are then the ones slot A's /api/ready/ counts, so when that
// says none is pending the migrate job would change nothing.
func runsContent(conn podman.Engine, c *config.Config, id string) bool {
	if id == "" {
		return false
	}
	st, err := conn.Inspect(c.Slots()[0].Name)
	return err == nil && st.Exists && st.Running && st.ImageID == id
}
