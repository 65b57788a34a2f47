package postgres

import (
	"sync"
	"sync/atomic"

	"github.com/isis-project/isis/api"
)

// userCache keeps user rows by id for authentication, which reads one on
// every request with a token (as SimpleJWT does). It serves only while
// change notifications flow (see Listen): the users trigger notifies every
// update and delete, this process's own writes drop the row before they
// return, and a row read under an older generation is never stored, so no
// write is followed by a stale answer (a deactivated user is refused on the
// next request).
type userCache struct {
	enabled atomic.Bool
	gen     atomic.Uint64
	// hits and misses count lookups (a miss while the cache is off too).
	hits, misses atomic.Uint64

	mu   sync.RWMutex
	rows map[int64]api.User
}

const userCacheMaxEntries = 10000

// get returns a copy of the cached row (callers may change theirs).
func (c *userCache) get(id int64) (*api.User, bool) {
	if !c.enabled.Load() {
		c.misses.Add(1)
		return nil, false
	}
	c.mu.RLock()
	u, ok := c.rows[id]
	c.mu.RUnlock()
	if !ok {
		c.misses.Add(1)
		return nil, false
	}
	c.hits.Add(1)
	return &u, true
}

// put stores u, read under generation gen, unless a write came since.
func (c *userCache) put(gen uint64, u *api.User) {
	if !c.enabled.Load() {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen.Load() != gen {
		return
	}
	if c.rows == nil || len(c.rows) >= userCacheMaxEntries {
		c.rows = map[int64]api.User{}
	}
	c.rows[u.ID] = *u
}

// drop forgets one user (id > 0) or everyone (id 0).
func (c *userCache) drop(id int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen.Add(1)
	if id == 0 {
		c.rows = nil
	} else {
		delete(c.rows, id)
	}
}

func (c *userCache) setEnabled(on bool) {
	if !on {
		c.enabled.Store(false)
	}
	c.drop(0)
	if on {
		c.enabled.Store(true)
	}
}

// UserCacheStats are the user cache's numbers since start: lookups that
// found the row, lookups that went to the database, rows held, and whether
// it serves (change notifications flow).
func (db *DB) UserCacheStats() (hits, misses uint64, entries int, enabled bool) {
	c := &db.users
	c.mu.RLock()
	entries = len(c.rows)
	c.mu.RUnlock()
	return c.hits.Load(), c.misses.Load(), entries, c.enabled.Load()
}
