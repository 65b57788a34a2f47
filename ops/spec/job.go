package spec

import (
	"github.com/isis-project/isis/ops/config"
	"github.com/isis-project/isis/ops/podman"
)

// Job makes a backend spec the one-off job running args, connected as the
// owner role (jobs migrate, import, check the migrations: they own the
// schema).
func Job(c *config.Config, spec *podman.ContainerSpec, name string, args ...string) {
	OneOff(c, spec, name, args...)
	WithDatabaseRole(spec, c.OwnerRole(), config.OwnerPasswordName)
}

// OneOff makes a backend spec a one-off container running args: on the
// private network only, nothing published, run once; still connected as
// the application role.
func OneOff(c *config.Config, spec *podman.ContainerSpec, name string, args ...string) {
	spec.Name = name
	spec.Publish = nil
	spec.Networks = []string{c.Network}
	spec.Health = nil
	spec.Restart = "" // runs once
	spec.Command = args
	spec.Labels = map[string]string{LabelManaged: "true", LabelRole: "job"}
}
