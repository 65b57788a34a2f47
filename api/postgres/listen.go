package postgres

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/lib/pq"
)

// GeoChannel is notified on every change to departments or municipalities.
const GeoChannel = "isis_geo"

// UsersChannel is notified with the id of every user row updated or deleted.
const UsersChannel = "isis_users"

// ListenerApplicationName is the application_name of the LISTEN connection
// (pg_stat_activity shows which backend it is).
const ListenerApplicationName = "isis-listen"

// The notification channel is shown alive by a round trip: every
// heartbeatEvery a NOTIFY on a channel private to this process goes out on a
// connection of its own and must come back through the listener within
// heartbeatTimeout. Until it does, the caches are off. A listener whose
// backend hangs (stopped, overloaded, a network path that drops packets
// without a reset: the connection stays "up") thus turns them off within
// heartbeatEvery + heartbeatTimeout, 1.5 s. A ping on the listener's own
// connection would not do: it has no deadline and holds the listener's lock.
var (
	heartbeatEvery   = 500 * time.Millisecond
	heartbeatTimeout = time.Second
)

// Invalidator is told when cached geography may be stale, and whether
// change notifications are flowing (a cache is only safe while they are).
type Invalidator interface {
	InvalidateGeo()
	SetGeoCacheEnabled(on bool)
}

// Listen keeps a LISTEN on GeoChannel and UsersChannel until ctx ends and
// keeps both caches true to the database: the geography answers (inv) and
// the user rows authentication reads (this DB's). Each notification drops
// what changed; every reconnect (notifications may have been missed) drops
// everything; the caches serve only while both LISTENs are in place and the
// last heartbeat came back in time. It returns at once: an unreachable
// database must not keep the server from serving (health answers, ready
// says unavailable).
func (db *DB) Listen(ctx context.Context, inv Invalidator) {
	var (
		mu        sync.Mutex
		connected bool // the listener's connection is up
		listening bool // and both LISTENs were issued on it
		alive     bool // and the last heartbeat came back in time
		on        bool // what the caches were last told
	)
	set := func() { // with mu held; acts on changes only
		now := connected && listening && alive
		if now == on {
			return
		}
		on = now
		if on {
			inv.InvalidateGeo()
		}
		inv.SetGeoCacheEnabled(on)
		db.users.setEnabled(on)
	}
	update := func(f func()) {
		mu.Lock()
		defer mu.Unlock()
		f()
		set()
	}
	l := pq.NewListener(listenerDSN(db.dsn), 100*time.Millisecond, 5*time.Second, func(ev pq.ListenerEventType, err error) {
		update(func() {
			switch ev {
			case pq.ListenerEventConnected, pq.ListenerEventReconnected:
				connected = true // a reconnect re-issues every LISTEN before it reports
			case pq.ListenerEventDisconnected, pq.ListenerEventConnectionAttemptFailed:
				connected = false
			}
		})
	})
	go func() { // Listen blocks until the first connection: Close unblocks it
		<-ctx.Done()
		l.Close()
	}()
	aliveChannel := "isis_alive_" + randomHex(8)
	echoes := make(chan string, 16)
	go func() {
		defer update(func() { connected = false })
		for _, ch := range []string{GeoChannel, UsersChannel, aliveChannel} {
			if err := l.Listen(ch); err != nil {
				return // closed
			}
		}
		update(func() { listening = true })
		go db.heartbeat(ctx, aliveChannel, echoes, func(ok bool) { update(func() { alive = ok }) })
		for {
			select {
			case <-ctx.Done():
				return
			case n := <-l.Notify:
				switch {
				case n == nil: // reconnected: anything may have changed
					inv.InvalidateGeo()
					db.users.drop(0)
				case n.Channel == aliveChannel:
					select {
					case echoes <- n.Extra:
					default: // the heartbeat is not waiting for this one
					}
				case n.Channel == GeoChannel:
					inv.InvalidateGeo()
				case n.Channel == UsersChannel:
					id, _ := strconv.ParseInt(n.Extra, 10, 64) // "" (TRUNCATE) drops everyone
					db.users.drop(id)
				}
			}
		}
	}()
}

// heartbeat sends a numbered NOTIFY on channel every heartbeatEvery, on a
// connection of its own (a busy pool must not make the caches flap), and
// reports whether it came back through the listener (echoes) in time.
func (db *DB) heartbeat(ctx context.Context, channel string, echoes <-chan string, report func(ok bool)) {
	hb := sql.OpenDB(db.connector)
	hb.SetMaxOpenConns(1)
	defer hb.Close()
	next := time.NewTimer(0)
	defer next.Stop()
	for seq := uint64(1); ; seq++ {
		select {
		case <-ctx.Done():
			return
		case <-next.C:
		}
		token := strconv.FormatUint(seq, 10)
		tctx, cancel := context.WithTimeout(ctx, heartbeatTimeout)
		_, err := hb.ExecContext(tctx, `SELECT pg_notify($1, $2)`, channel, token)
		ok := false
		for err == nil && !ok {
			select {
			case got := <-echoes:
				ok = got == token // an older one, late: keep waiting
			case <-tctx.Done():
				err = tctx.Err()
			}
		}
		cancel()
		if ctx.Err() != nil {
			return
		}
		report(ok)
		next.Reset(heartbeatEvery)
	}
}

// listenerDSN is dsn with the listener's application_name.
func listenerDSN(dsn string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return dsn
		}
		q := u.Query()
		q.Set("application_name", ListenerApplicationName)
		u.RawQuery = q.Encode()
		return u.String()
	}
	return dsn + " application_name=" + ListenerApplicationName
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
