package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
	"github.com/lib/pq/pqerror"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// migrationLockKey is the pg_advisory_lock key that serializes migrations
// ("isis" in ASCII).
const migrationLockKey = 0x69736973

// Migration is one versioned schema change, applied in its own transaction.
type Migration struct {
	Version string // file name without extension, e.g. "0001_init"
	SQL     string
	// Func, when set, runs after SQL in the same transaction (data loads).
	Func func(ctx context.Context, tx *sqlx.Tx) error
}

// goMigrations are migrations written in Go, merged with the SQL files by version.
var goMigrations = map[string]func(ctx context.Context, tx *sqlx.Tx) error{
	"0002_geography": loadGeography,
	emailKeyVersion:  fillEmailKeys,
}

// Migrations returns every migration embedded in the binary, in order.
func Migrations() []Migration {
	byVersion := map[string]*Migration{}
	names, err := fs.Glob(migrationFS, "migrations/*.sql")
	if err != nil {
		panic(err) // a bad pattern is a programming error
	}
	for _, name := range names {
		b, err := migrationFS.ReadFile(name)
		if err != nil {
			panic(err)
		}
		v := strings.TrimSuffix(path.Base(name), ".sql")
		byVersion[v] = &Migration{Version: v, SQL: string(b)}
	}
	for v, f := range goMigrations {
		m := byVersion[v]
		if m == nil {
			m = &Migration{Version: v}
			byVersion[v] = m
		}
		m.Func = f
	}
	out := make([]Migration, 0, len(byVersion))
	for _, m := range byVersion {
		out = append(out, *m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	return out
}

// MigrationStatus is one migration and when it was applied (zero when pending).
type MigrationStatus struct {
	Version   string    `json:"version"`
	AppliedAt time.Time `json:"applied_at,omitzero"`
}

// Applied reports whether the migration has been applied.
func (s MigrationStatus) Applied() bool { return !s.AppliedAt.IsZero() }

const createMigrationsTable = `CREATE TABLE IF NOT EXISTS schema_migrations (
	version    text PRIMARY KEY,
	applied_at timestamptz NOT NULL DEFAULT now()
)`

// Migrate applies the pending migrations, each in its own transaction, while
// holding an advisory lock so concurrent runs wait for each other; re-running
// is a no-op (but for filling in the email_key of users a server of the
// previous release wrote during an upgrade). It returns the versions it
// applied.
func (db *DB) Migrate(ctx context.Context) ([]string, error) {
	conn, err := db.Connx(ctx)
	if err != nil {
		return nil, fmt.Errorf("migrate: %w", FormatError(err))
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, migrationLockKey); err != nil {
		return nil, fmt.Errorf("migrate: take lock: %w", FormatError(err))
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, migrationLockKey)

	if _, err := conn.ExecContext(ctx, createMigrationsTable); err != nil {
		return nil, fmt.Errorf("migrate: %w", FormatError(err))
	}
	done := map[string]bool{}
	var versions []string
	if err := conn.SelectContext(ctx, &versions, `SELECT version FROM schema_migrations`); err != nil {
		return nil, fmt.Errorf("migrate: %w", FormatError(err))
	}
	for _, v := range versions {
		done[v] = true
	}
	var applied []string
	for _, m := range Migrations() {
		if done[m.Version] {
			continue
		}
		if err := applyMigration(ctx, conn, m); err != nil {
			return applied, fmt.Errorf("migrate %s: %w", m.Version, err)
		}
		applied = append(applied, m.Version)
	}
	if done[emailKeyVersion] { // users a previous release wrote since have no key yet
		if err := refillEmailKeys(ctx, conn); err != nil {
			return applied, err
		}
	}
	return applied, nil
}

func applyMigration(ctx context.Context, conn *sqlx.Conn, m Migration) error {
	tx, err := conn.BeginTxx(ctx, nil)
	if err != nil {
		return FormatError(err)
	}
	defer tx.Rollback()
	if strings.TrimSpace(m.SQL) != "" {
		if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
			return err
		}
	}
	if m.Func != nil {
		if err := m.Func(ctx, tx); err != nil {
			return err
		}
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version) VALUES ($1)`, m.Version); err != nil {
		return err
	}
	return tx.Commit()
}

// MigrationStatuses lists every embedded migration with its applied time, plus
// any applied version this binary does not know (a newer binary ran).
func (db *DB) MigrationStatuses(ctx context.Context) ([]MigrationStatus, error) {
	var rows []struct {
		Version   string    `db:"version"`
		AppliedAt time.Time `db:"applied_at"`
	}
	err := db.SelectContext(ctx, &rows, `SELECT version, applied_at FROM schema_migrations`)
	if err != nil && !isUndefinedTable(err) {
		return nil, FormatError(err)
	}
	applied := map[string]time.Time{}
	for _, r := range rows {
		applied[r.Version] = r.AppliedAt.UTC()
	}
	var out []MigrationStatus
	for _, m := range Migrations() {
		out = append(out, MigrationStatus{Version: m.Version, AppliedAt: applied[m.Version]})
		delete(applied, m.Version)
	}
	for v, at := range applied {
		out = append(out, MigrationStatus{Version: v, AppliedAt: at})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	return out, nil
}

// PendingMigrations returns how many embedded migrations are not applied.
func (db *DB) PendingMigrations(ctx context.Context) (int, error) {
	var n int
	err := db.GetContext(ctx, &n, `SELECT count(*) FROM schema_migrations WHERE version = ANY($1)`, pq.Array(migrationVersions()))
	if err != nil {
		if isUndefinedTable(err) {
			return len(migrationVersions()), nil
		}
		return 0, FormatError(err)
	}
	return len(migrationVersions()) - n, nil
}

// migrationVersions lists the embedded versions, computed once.
var migrationVersions = sync.OnceValue(func() []string {
	var vs []string
	for _, m := range Migrations() {
		vs = append(vs, m.Version)
	}
	return vs
})

func isUndefinedTable(err error) bool {
	var pqErr *pq.Error
	return errors.As(err, &pqErr) && pqErr.Code == pqerror.UndefinedTable
}
