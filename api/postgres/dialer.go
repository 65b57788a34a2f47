package postgres

import (
	"context"
	"errors"
	"net"
	"sync"
	"time"
)

// lookupAttempt bounds one lookup of the database's host name; the dial
// retries until its connect timeout.
const lookupAttempt = 750 * time.Millisecond

// dialer opens the pool's connections to a database given by host name
// without letting one lost or slow DNS answer fail a request. Under Podman
// the name is the PostgreSQL container's, answered by aardvark-dns, which
// drops or stalls queries for a moment while containers start and stop on
// its network: exactly when a deploy swaps the backend slots and the slot
// taking the traffic opens new connections (a lookup that timed out was a
// 503 to a write that no proxy resends). So each lookup gets lookupAttempt
// and is tried again until the connect timeout, and when none answers the
// addresses of the last lookup that did are used.
type dialer struct {
	d      net.Dialer
	lookup func(ctx context.Context, host string) ([]string, error)

	mu   sync.Mutex
	last map[string][]string // host name: the addresses it last resolved to
}

func newDialer() *dialer {
	return &dialer{lookup: net.DefaultResolver.LookupHost, last: map[string][]string{}}
}

func (d *dialer) Dial(network, address string) (net.Conn, error) {
	return d.DialContext(context.Background(), network, address)
}

func (d *dialer) DialTimeout(network, address string, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return d.DialContext(ctx, network, address)
}

// DialContext resolves address's host (unless it is an IP address or a
// socket path), then dials its addresses in turn.
func (d *dialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(address)
	if err != nil || network == "unix" || net.ParseIP(host) != nil {
		return d.d.DialContext(ctx, network, address)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultConnectTimeout)
		defer cancel()
	}
	addrs, err := d.resolve(ctx, host)
	if err != nil {
		return nil, err
	}
	var first error
	for _, a := range addrs {
		c, err := d.d.DialContext(ctx, network, net.JoinHostPort(a, port))
		if err == nil {
			return c, nil
		}
		if first == nil {
			first = err
		}
		if ctx.Err() != nil {
			break
		}
	}
	return nil, first
}

// resolve looks host up, a few times if need be, and falls back to its last
// answer when no lookup answers before ctx ends.
func (d *dialer) resolve(ctx context.Context, host string) ([]string, error) {
	var err error
	for {
		actx, cancel := context.WithTimeout(ctx, lookupAttempt)
		var addrs []string
		addrs, err = d.lookup(actx, host)
		cancel()
		if err == nil && len(addrs) > 0 {
			d.mu.Lock()
			d.last[host] = addrs
			d.mu.Unlock()
			return addrs, nil
		}
		d.mu.Lock()
		last := d.last[host]
		d.mu.Unlock()
		if last != nil {
			return last, nil
		}
		var dnsErr *net.DNSError
		if ctx.Err() != nil || (errors.As(err, &dnsErr) && dnsErr.IsNotFound && !dnsErr.IsTemporary) {
			// The time is up, or the name does not exist: the first
			// connection of a process to a wrong host name fails as before.
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(50 * time.Millisecond):
		}
	}
}
