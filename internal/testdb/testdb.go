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
