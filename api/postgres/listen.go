package postgres

import (
	"context"
	"time"

	"github.com/lib/pq"
)

// GeoChannel is notified on every change to departments or municipalities.
const GeoChannel = "isis_geo"

// Invalidator is told when cached geography may be stale, and whether
// change notifications are flowing (a cache is only safe while they are).
type Invalidator interface {
	InvalidateGeo()
	SetGeoCacheEnabled(on bool)
}

// ListenGeo keeps a LISTEN on GeoChannel until ctx ends: each notification,
// and every reconnect (notifications may have been missed), invalidates;
// while disconnected, caching is off.
func (db *DB) ListenGeo(ctx context.Context, inv Invalidator) {
	l := pq.NewListener(db.dsn, 100*time.Millisecond, 5*time.Second, func(ev pq.ListenerEventType, err error) {
		switch ev {
		case pq.ListenerEventConnected, pq.ListenerEventReconnected:
			inv.InvalidateGeo()
			inv.SetGeoCacheEnabled(true)
		case pq.ListenerEventDisconnected, pq.ListenerEventConnectionAttemptFailed:
			inv.SetGeoCacheEnabled(false)
			inv.InvalidateGeo()
		}
	})
	if err := l.Listen(GeoChannel); err != nil {
		inv.SetGeoCacheEnabled(false)
	}
	go func() {
		defer l.Close()
		ping := time.NewTicker(30 * time.Second)
		defer ping.Stop()
		for {
			select {
			case <-ctx.Done():
				inv.SetGeoCacheEnabled(false)
				return
			case <-l.Notify: // a change, or nil after a reconnect
				inv.InvalidateGeo()
			case <-ping.C:
				if err := l.Ping(); err != nil {
					inv.SetGeoCacheEnabled(false)
					inv.InvalidateGeo()
				}
			}
		}
	}()
}
