// Package testdb gives each test a fresh, migrated isis database on a real
// PostgreSQL (see internal/pgtest).
package testdb

import (
	"context"
	"testing"
	"time"

	"github.com/isis-project/isis/api/postgres"
	"github.com/isis-project/isis/internal/pgtest"
)

// DSN returns the connection string of a fresh database migrated to the
// latest schema, dropped when tb ends.
func DSN(tb testing.TB) string {
	tb.Helper()
	return pgtest.NewDatabase(tb, "isis_tpl", func(dsn string) error {
		db, err := postgres.Open(dsn, postgres.Options{MaxOpenConns: 2})
		if err != nil {
			return err
		}
		defer db.Close()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_, err = db.Migrate(ctx)
		return err
	})
}

// Open returns a pool on a fresh migrated database, closed when tb ends.
func Open(tb testing.TB) *postgres.DB {
	tb.Helper()
	db, err := postgres.Open(DSN(tb), postgres.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

// OwnServer starts a PostgreSQL of the test's own (to stop and start under
// it) and returns it with a pool on its migrated postgres database; both end
// with tb.
func OwnServer(tb testing.TB) (*pgtest.Server, *postgres.DB) {
	tb.Helper()
	pg, err := pgtest.NewServer()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(pg.Close)
	db, err := postgres.Open(pg.DSN("postgres"), postgres.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := db.Migrate(ctx); err != nil {
		tb.Fatal(err)
	}
	return pg, db
}
