package postgres

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/lib/pq"
)

// GeoChannel is notified on every change to departments or municipalities.
const GeoChannel = "isis_geo"

// UsersChannel is notified with the id of every user row updated or deleted.
const UsersChannel = "isis_users"

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
// everything; the caches serve only while both LISTENs are in place. It
// returns at once: an unreachable database must not keep the server from
// serving (health answers, ready says unavailable).
func (db *DB) Listen(ctx context.Context, inv Invalidator) {
	var (
		mu        sync.Mutex
		connected bool // the listener's connection is up
		listening bool // and both LISTENs were issued on it
	)
	set := func() { // with mu held
		on := connected && listening
		if on {
			inv.InvalidateGeo()
		}
		inv.SetGeoCacheEnabled(on)
		db.users.setEnabled(on)
	}
	l := pq.NewListener(db.dsn, 100*time.Millisecond, 5*time.Second, func(ev pq.ListenerEventType, err error) {
		mu.Lock()
		defer mu.Unlock()
		switch ev {
		case pq.ListenerEventConnected, pq.ListenerEventReconnected:
			connected = true // a reconnect re-issues every LISTEN before it reports
		case pq.ListenerEventDisconnected, pq.ListenerEventConnectionAttemptFailed:
			connected = false
		}
		set()
	})
	go func() { // Listen blocks until the first connection: Close unblocks it
		<-ctx.Done()
		l.Close()
	}()
	go func() {
		defer func() {
			mu.Lock()
			connected = false
			set()
			mu.Unlock()
		}()
		for _, ch := range []string{GeoChannel, UsersChannel} {
			if err := l.Listen(ch); err != nil {
				return // closed
			}
		}
		mu.Lock()
		listening = true
		set()
		mu.Unlock()
		ping := time.NewTicker(30 * time.Second)
		defer ping.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case n := <-l.Notify:
				switch {
				case n == nil: // reconnected: anything may have changed
					inv.InvalidateGeo()
					db.users.drop(0)
				case n.Channel == GeoChannel:
					inv.InvalidateGeo()
				case n.Channel == UsersChannel:
					id, _ := strconv.ParseInt(n.Extra, 10, 64) // "" (TRUNCATE) drops everyone
					db.users.drop(id)
				}
			case <-ping.C:
				if err := l.Ping(); err != nil {
					mu.Lock()
					connected = false
					set()
					mu.Unlock()
				}
			}
		}
	}()
}
