package deploy

import (
	"context"

	"github.com/isis-project/isis/ops/config"
	"github.com/isis-project/isis/ops/host"
	"github.com/isis-project/isis/ops/podman"
)

// UpResult reports what up changed.
type UpResult struct {
	Postgres string `json:"postgres"` // created, recreated, started, unchanged
	Backend  string `json:"backend"`
	Image    string `json:"image"`
	Previous string `json:"previous_image,omitempty"`
}

// Up applies the whole deployment through the API.
func Up(ctx context.Context, conn podman.Engine, c *config.Config, image string, local bool) (*UpResult, error) {
	if err := c.NeedDomain(); err != nil {
		return nil, err
	}
	if err := host.PrepareHostDirs(c, local); err != nil {
		return nil, err
	}
	if _, err := host.EnsureNetworks(conn, c); err != nil {
		return nil, err
	}
	if _, err := host.EnsureSecrets(conn, c, false); err != nil {
		return nil, err
	}
	r := &UpResult{Image: image}
	var err error
	if r.Postgres, err = host.EnsurePostgres(ctx, conn, c); err != nil {
		return r, err
	}
	if _, err := host.EnsureRoles(conn, c); err != nil {
		return r, err
	}
	r.Backend, r.Previous, err = EnsureBackend(ctx, conn, c, image, !local)
	return r, err
}
