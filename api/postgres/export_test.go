package postgres

// UserCached reports whether the user's row is in the authentication cache.
func (db *DB) UserCached(id int64) bool {
	_, ok := db.users.get(id)
	return ok
}

// UserCacheEnabled reports whether the authentication cache serves.
func (db *DB) UserCacheEnabled() bool { return db.users.enabled.Load() }
