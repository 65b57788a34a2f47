package podman

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/containers/podman/v5/pkg/bindings"
	"github.com/containers/podman/v5/pkg/bindings/system"
)

// UnreachableError means the Podman API did not answer (exit code 4).
type UnreachableError struct {
	URL string
	Err error
}

func (e *UnreachableError) Error() string {
	hint := "start it with: systemctl --user enable --now podman.socket (or, as root, systemctl enable --now podman.socket; without systemd: podman system service --time=0 " + e.URL + " &)"
	if strings.HasPrefix(e.URL, "ssh://") {
		hint = "check the SSH access and that podman.socket is enabled on the remote host"
	}
	return fmt.Sprintf("Podman API at %s is unreachable: %v; %s", e.URL, cleanErr(e.Err), hint)
}

func (e *UnreachableError) Unwrap() error { return e.Err }

// cleanErr shortens the bindings' wrapped errors to their last cause.
func cleanErr(err error) string {
	s := err.Error()
	if i := strings.LastIndex(s, ": dial "); i >= 0 {
		s = s[i+2:]
	}
	return s
}

// DefaultURL is where Podman's socket usually is for this user.
func DefaultURL() string {
	if os.Geteuid() == 0 {
		return "unix:///run/podman/podman.sock"
	}
	if dir := os.Getenv("XDG_RUNTIME_DIR"); dir != "" {
		return "unix://" + dir + "/podman/podman.sock"
	}
	return fmt.Sprintf("unix:///run/user/%d/podman/podman.sock", os.Geteuid())
}

// Conn is a connection to the Podman API: the bindings carry it in a
// context, which only this package sees. *Conn is the Engine the bindings
// implement.
type Conn struct{ ctx context.Context }

// ValidURL reports whether url has a scheme Connect can use.
func ValidURL(url string) bool {
	return strings.HasPrefix(url, "unix://") || strings.HasPrefix(url, "ssh://") || strings.HasPrefix(url, "tcp://")
}

// Connect opens a bindings connection and checks the service answers;
// failures are *UnreachableError. The caller checks the URL (ValidURL) and
// fills in DefaultURL.
func Connect(ctx context.Context, url string) (*Conn, error) {
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	type result struct {
		conn context.Context
		err  error
	}
	done := make(chan result, 1)
	go func() {
		conn, err := bindings.NewConnection(ctx, url)
		done <- result{conn, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			return nil, &UnreachableError{URL: url, Err: r.err}
		}
		c := &Conn{ctx: r.conn}
		if os.Getenv(TraceEnv) != "" {
			trace(c, os.Stderr)
		}
		return c, nil
	case <-cctx.Done():
		return nil, &UnreachableError{URL: url, Err: errors.New("no answer within 15s")}
	}
}

// Version returns the server's version: the Libpod-API-Version the
// service sent when the connection was made (its _ping), which is the
// Podman version; only a service that sent none is asked /version, which
// takes a quarter of a second on Podman 4.3 (it runs conmon and the OCI
// runtime to report theirs).
func (c *Conn) Version() (string, error) {
	if v := bindings.ServiceVersion(c.ctx); v.Major > 0 {
		return v.String(), nil
	}
	v, err := system.Version(c.ctx, nil)
	if err != nil {
		return "", err
	}
	if v.Server != nil {
		return v.Server.Version, nil
	}
	return v.Client.Version, nil
}

// WithoutCancel is the connection without its context's cancellation: for
// the clean-ups that must run after a signal too.
func (c *Conn) WithoutCancel() Engine { return &Conn{ctx: context.WithoutCancel(c.ctx)} }
