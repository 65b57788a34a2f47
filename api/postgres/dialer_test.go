package postgres

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// TestDialerLookups: the pool's dialer against a real listener, with the
// name lookups a container's DNS gives while containers come and go on its
// network (a lookup that hangs, one that fails, one that answers late).
func TestDialerLookups(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	hang := func(ctx context.Context) ([]string, error) { <-ctx.Done(); return nil, ctx.Err() }
	answer := func(context.Context) ([]string, error) { return []string{"127.0.0.1"}, nil }
	notFound := func(context.Context) ([]string, error) {
		return nil, &net.DNSError{Err: "no such host", Name: "pg", IsNotFound: true}
	}
	for _, tc := range []struct {
		name    string
		earlier func(context.Context) ([]string, error) // a lookup before (nil: none)
		now     []func(context.Context) ([]string, error)
		host    string
		ok      bool
		lookups int32
	}{
		{name: "answers", now: []func(context.Context) ([]string, error){answer}, host: "pg", ok: true, lookups: 1},
		{name: "hangs, then answers", now: []func(context.Context) ([]string, error){hang, answer}, host: "pg", ok: true, lookups: 2},
		{name: "hangs, an earlier answer", earlier: answer, now: []func(context.Context) ([]string, error){hang}, host: "pg", ok: true, lookups: 1},
		{name: "fails, an earlier answer", earlier: answer, now: []func(context.Context) ([]string, error){notFound}, host: "pg", ok: true, lookups: 1},
		{name: "not found, nothing earlier", now: []func(context.Context) ([]string, error){notFound}, host: "pg", lookups: 1},
		{name: "hangs, nothing earlier", now: []func(context.Context) ([]string, error){hang}, host: "pg"},
		{name: "an address: no lookup", now: []func(context.Context) ([]string, error){hang}, host: "127.0.0.1", ok: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newDialer()
			var n atomic.Int32
			if tc.earlier != nil {
				d.lookup = func(ctx context.Context, _ string) ([]string, error) { return tc.earlier(ctx) }
				c, err := d.DialTimeout("tcp", net.JoinHostPort(tc.host, port), 2*time.Second)
				if err != nil {
					t.Fatal(err)
				}
				c.Close()
			}
			d.lookup = func(ctx context.Context, _ string) ([]string, error) {
				i := int(n.Add(1)) - 1
				return tc.now[min(i, len(tc.now)-1)](ctx)
			}
			start := time.Now()
			c, err := d.DialTimeout("tcp", net.JoinHostPort(tc.host, port), 2*time.Second)
			took := time.Since(start)
			if c != nil {
				c.Close()
			}
			if (err == nil) != tc.ok {
				t.Fatalf("dial: %v, want ok %v", err, tc.ok)
			}
			if !tc.ok && !errors.Is(err, context.DeadlineExceeded) && !isNotFound(err) {
				t.Errorf("error %v: want the lookup's", err)
			}
			if tc.lookups > 0 && n.Load() != tc.lookups {
				t.Errorf("%d lookups, want %d", n.Load(), tc.lookups)
			}
			if tc.host == "127.0.0.1" && n.Load() != 0 {
				t.Errorf("an address was looked up")
			}
			if took > 2500*time.Millisecond {
				t.Errorf("took %s: longer than the connect timeout", took)
			}
		})
	}
}

func isNotFound(err error) bool {
	var e *net.DNSError
	return errors.As(err, &e) && e.IsNotFound
}
