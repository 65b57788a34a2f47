package podman

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/containers/podman/v5/pkg/bindings"
)

// TraceEnv, set to anything, makes isisctl write every Podman API request
// to standard error: when it was sent (since the connection), how long its
// answer's first bytes took, the status, method and path. It is how a
// deploy's time is taken apart (docs/deploying.md).
const TraceEnv = "ISISCTL_TRACE"

// tracer writes the trace's lines for one connection.
type tracer struct {
	start time.Time
	mu    sync.Mutex
	w     io.Writer
}

// trace makes the connection's HTTP client dial through traced
// connections. The bindings need their own *http.Transport (an exec's
// attach upgrades its connection), so the trace sits under it, in the
// bytes each connection carries: one request at a time, HTTP/1.1.
func trace(conn *Conn, w io.Writer) {
	bc, err := bindings.GetClient(conn.ctx)
	if err != nil || bc.Client == nil {
		return
	}
	tr, ok := bc.Client.Transport.(*http.Transport)
	if !ok || tr.DialContext == nil {
		return
	}
	t := &tracer{start: time.Now(), w: w}
	dial := tr.DialContext
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &tracedConn{Conn: c, t: t}, nil
	}
	tr.CloseIdleConnections() // the _ping's, dialed before
}

// tracedConn times each request it carries: from its first write to the
// first bytes of the answer.
type tracedConn struct {
	net.Conn
	t       *tracer
	mu      sync.Mutex // Write and Read run in the transport's two loops
	request string     // "METHOD /path", while its answer has not begun
	sent    time.Time
}

func (c *tracedConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.request == "" {
		if line, _, ok := bytes.Cut(b, []byte("\r\n")); ok {
			if f := bytes.Fields(line); len(f) == 3 && bytes.HasPrefix(f[2], []byte("HTTP/")) {
				c.request, c.sent = string(f[0])+" "+string(f[1]), time.Now()
			}
		}
	}
	return c.Conn.Write(b)
}

func (c *tracedConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.request != "" && n > 0 {
		status := "???"
		if f := bytes.Fields(b[:n]); len(f) > 1 && bytes.HasPrefix(f[0], []byte("HTTP/")) {
			status = string(f[1])
		}
		path, _, _ := bytes.Cut([]byte(c.request), []byte("?"))
		c.t.mu.Lock()
		fmt.Fprintf(c.t.w, "podman %8.1fms %7.1fms %s %s\n", ms(c.sent.Sub(c.t.start)), ms(time.Since(c.sent)), status, path)
		c.t.mu.Unlock()
		c.request = ""
	}
	return n, err
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
