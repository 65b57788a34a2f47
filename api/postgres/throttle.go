package postgres

import (
	"context"
	"database/sql"
	"sync/atomic"
	"time"
)

// Throttles keeps the throttles' recent request times in PostgreSQL (table
// throttles), so that every server on the database counts the same
// requests. Each key's row holds DRF's history list; the times come from
// the caller's clock.
type Throttles struct {
	db    *DB
	allow atomic.Pointer[sql.Stmt] // allowSQL, prepared: planned once per connection
}

// NewThrottles returns the throttle store on db.
func NewThrottles(db *DB) *Throttles { return &Throttles{db: db} }

// allowSQL records a request at $3 for (scope $1, key $2) unless the key
// already made $5 requests after $4 (now minus the period): one statement,
// so concurrent servers agree. The times at or before $4 are dropped as the
// request is recorded (DRF's history trimming); a refused request writes
// nothing. It answers 0, or how long in microseconds until the oldest time
// in the window leaves it (the period if another transaction inserted the
// row after this statement's snapshot).
const allowSQL = `WITH hit AS (
	INSERT INTO throttles AS t (scope, key, times) VALUES ($1, $2, ARRAY[$3::bigint])
	ON CONFLICT (scope, key) DO UPDATE
	SET times = ARRAY(SELECT x FROM unnest(t.times) x WHERE x > $4) || $3::bigint
	WHERE (SELECT count(*) FROM unnest(t.times) x WHERE x > $4) < $5
	RETURNING 1
)
SELECT 0::bigint FROM hit
UNION ALL
SELECT COALESCE((SELECT min(x) FROM throttles t, unnest(t.times) x
	WHERE t.scope = $1 AND t.key = $2 AND x > $4) - $4, $6::bigint)
WHERE NOT EXISTS (SELECT FROM hit)`

// Allow records a request by key in scope at now unless the key already
// made n requests in the period before now. It returns 0 when the request
// was recorded, else how long until one would be.
func (t *Throttles) Allow(ctx context.Context, scope, key string, n int, period time.Duration, now time.Time) (time.Duration, error) {
	at := now.UnixMicro()
	st := t.allow.Load()
	if st == nil {
		var err error
		if st, err = t.db.PrepareContext(ctx, allowSQL); err != nil {
			return 0, FormatError(err)
		}
		if !t.allow.CompareAndSwap(nil, st) {
			st.Close()
			st = t.allow.Load()
		}
	}
	var wait int64
	if err := st.QueryRowContext(ctx, scope, key, at, at-period.Microseconds(), n, period.Microseconds()).Scan(&wait); err != nil {
		return 0, FormatError(err)
	}
	return time.Duration(wait) * time.Microsecond, nil
}

// Purge deletes the keys of scope whose last request is at or before now
// minus period (period 0: every key of the scope), then all but the
// maxKeys most recently seen. It returns how many it deleted.
func (t *Throttles) Purge(ctx context.Context, scope string, period time.Duration, maxKeys int, now time.Time) (int64, error) {
	res, err := t.db.ExecContext(ctx, `DELETE FROM throttles WHERE scope = $1 AND (times[cardinality(times)] <= $2
	OR key IN (SELECT key FROM throttles WHERE scope = $1 ORDER BY times[cardinality(times)] DESC OFFSET $3))`,
		scope, now.Add(-period).UnixMicro(), maxKeys)
	if err != nil {
		return 0, FormatError(err)
	}
	return res.RowsAffected()
}

// Keys counts the keys each scope holds in the table (its size, which
// Purge bounds), for the metrics.
func (t *Throttles) Keys(ctx context.Context) (map[string]int64, error) {
	rows, err := t.db.QueryContext(ctx, `SELECT scope, count(*) FROM throttles GROUP BY scope`)
	if err != nil {
		return nil, FormatError(err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var scope string
		var n int64
		if err := rows.Scan(&scope, &n); err != nil {
			return nil, FormatError(err)
		}
		out[scope] = n
	}
	return out, FormatError(rows.Err())
}
