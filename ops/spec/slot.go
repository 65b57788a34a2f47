package spec

import (
	"fmt"

	"github.com/isis-project/isis/ops/config"
	"github.com/isis-project/isis/ops/podman"
)

// ForSlot is the backend spec of one slot running image.
func ForSlot(c *config.Config, sl config.Slot, image string) *podman.ContainerSpec {
	s := Backend(c, image)
	s.Name = sl.Name
	s.Publish = []string{fmt.Sprintf("%s:%d:%d", sl.Addr.Addr(), sl.Addr.Port(), BackendPort)}
	s.Labels[LabelSlot] = sl.ID
	return s
}
