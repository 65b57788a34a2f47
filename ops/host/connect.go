package host

import (
	"context"
	"fmt"

	"github.com/isis-project/isis/ops/config"
	"github.com/isis-project/isis/ops/podman"
)

// Connect opens a connection to the Podman API at url (DefaultURL when
// empty); a URL of another scheme is a *config.Error, an API that does not
// answer a *podman.UnreachableError.
func Connect(ctx context.Context, url string) (*podman.Conn, error) {
	if url == "" {
		url = podman.DefaultURL()
	}
	if !podman.ValidURL(url) {
		return nil, &config.Error{Key: "podman_url", Msg: fmt.Sprintf("%q is not a unix://, ssh:// or tcp:// URL", url)}
	}
	return podman.Connect(ctx, url)
}
