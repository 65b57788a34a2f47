package host

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/isis-project/isis/ops/podman"
)

// LogsOptions select what Logs prints.
type LogsOptions struct {
	Follow bool
	Tail   string // lines from the end, or "all"
}

// Logs writes a container's log lines to w until they end, or ctx does
// with Follow.
func Logs(ctx context.Context, conn podman.Engine, name string, o LogsOptions, w io.Writer) error {
	lines := make(chan string, 100)
	done := make(chan error, 1)
	go func() {
		done <- conn.Logs(name, podman.LogOptions{Follow: o.Follow, Tail: o.Tail}, lines, lines)
		close(lines)
	}()
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				err := <-done
				if err != nil && !errors.Is(err, context.Canceled) {
					return fmt.Errorf("logs of %s: %w", name, err)
				}
				return nil
			}
			fmt.Fprint(w, l)
			if !strings.HasSuffix(l, "\n") {
				fmt.Fprintln(w)
			}
		case <-ctx.Done():
			return nil
		}
	}
}
