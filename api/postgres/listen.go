package postgres

import (
	"context"
	"strconv"
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
// everything; while disconnected, both caches are off.
func (db *DB) Listen(ctx context.Context, inv Invalidator) {
	setEnabled := func(on bool) {
		inv.SetGeoCacheEnabled(on)
		db.users.setEnabled(on)
	}
	l := pq.NewListener(db.dsn, 100*time.Millisecond, 5*time.Second, func(ev pq.ListenerEventType, err error) {
		switch ev {
		case pq.ListenerEventConnected, pq.ListenerEventReconnected:
			inv.InvalidateGeo()
			setEnabled(true)
		case pq.ListenerEventDisconnected, pq.ListenerEventConnectionAttemptFailed:
			setEnabled(false)
		}
	})
	if err := l.Listen(GeoChannel); err != nil {
		setEnabled(false)
	}
	if err := l.Listen(UsersChannel); err != nil {
		setEnabled(false)
	}
	go func() {
		defer l.Close()
		ping := time.NewTicker(30 * time.Second)
		defer ping.Stop()
		for {
			select {
			case <-ctx.Done():
				setEnabled(false)
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
					setEnabled(false)
				}
			}
		}
	}()
}
