-- throttles: the recent request times of each throttle key, DRF's history
-- list, shared by every server on the database (THROTTLE_STORE=postgres) so
-- that N replicas allow a client the limit once, not N times. times are
-- Unix microseconds, at most the rate's N of them once trimmed; a request is
-- recorded by one INSERT ... ON CONFLICT DO UPDATE (postgres.Throttles).
-- Rows whose last request left the window, and beyond THROTTLE_MAX_KEYS the
-- least recently seen, are purged by the servers every minute.
-- UNLOGGED: no WAL for what is only a counter; a database crash empties it
-- (every client starts afresh), as a restart empties an in-memory throttle.
-- fillfactor: room on each page for the updates to stay HOT.
CREATE UNLOGGED TABLE throttles (
	scope text NOT NULL,
	key   text NOT NULL,
	times bigint[] NOT NULL,
	PRIMARY KEY (scope, key)
) WITH (fillfactor = 70);
