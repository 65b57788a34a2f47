// Package postgres adapts PostgreSQL (sqlx + lib/pq) to the api domain: the
// connection pool, the embedded migrations and one service per aggregate.
package postgres

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"time"

	"github.com/isis-project/isis/api"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
	"github.com/lib/pq/pqerror"
)

// Defaults applied to every connection unless the DSN sets them.
const (
	DefaultConnectTimeout   = 3 * time.Second
	DefaultStatementTimeout = "10s"
)

// DB is the connection pool with the clock the services use.
type DB struct {
	*sqlx.DB
	dsn string // for LISTEN connections; holds the password: never log it
	// connector opens connections outside the pool (Listen's heartbeat).
	connector *pq.Connector
	// Now is the clock; tests replace it.
	Now func() time.Time

	users userCache // on while Listen runs
}

// Options tune the pool.
type Options struct {
	MaxOpenConns     int
	MaxIdleConns     int
	StatementTimeout string // a PostgreSQL interval, e.g. "10s"; "" keeps the default
}

// Open returns a pool for dsn (a URL or key=value string). It does not
// connect: an unreachable database shows up as EUNAVAILABLE on first use.
func Open(dsn string, opt Options) (*DB, error) {
	cfg, err := pq.NewConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("parse database settings: %w", scrubDSNError(err))
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = DefaultConnectTimeout
	}
	if cfg.Runtime == nil {
		cfg.Runtime = map[string]string{}
	}
	if _, ok := cfg.Runtime["statement_timeout"]; !ok {
		st := opt.StatementTimeout
		if st == "" {
			st = DefaultStatementTimeout
		}
		cfg.Runtime["statement_timeout"] = st
	}
	if _, ok := cfg.Runtime["application_name"]; !ok {
		cfg.Runtime["application_name"] = "isis"
	}
	conn, err := pq.NewConnectorConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("database settings: %w", scrubDSNError(err))
	}
	conn.Dialer(newDialer()) // a lookup lost while containers come and go is tried again
	sdb := sql.OpenDB(conn)
	if opt.MaxOpenConns <= 0 {
		opt.MaxOpenConns = 32
	}
	if opt.MaxIdleConns <= 0 {
		opt.MaxIdleConns = opt.MaxOpenConns
	}
	sdb.SetMaxOpenConns(opt.MaxOpenConns)
	sdb.SetMaxIdleConns(opt.MaxIdleConns)
	sdb.SetConnMaxIdleTime(5 * time.Minute)
	sdb.SetConnMaxLifetime(time.Hour)
	return &DB{DB: sqlx.NewDb(sdb, "postgres"), Now: time.Now, dsn: dsn, connector: conn}, nil
}

// scrubDSNError drops anything after the first line of a DSN parse error:
// lib/pq may quote the offending value, which can be a password.
func scrubDSNError(err error) error {
	return errors.New("invalid connection string (check DATABASE_URL or DATABASE_* settings)")
}

// FormatError turns a driver error into a domain error. Unique and
// foreign-key violations become ECONFLICT/EINVALID, no rows ENOTFOUND,
// anything that means "the database is not there" EUNAVAILABLE; the rest is
// EINTERNAL with the cause kept for the log.
func FormatError(err error) error {
	if err == nil {
		return nil
	}
	var ae *api.Error
	if errors.As(err, &ae) {
		return err
	}
	if errors.Is(err, sql.ErrNoRows) {
		return api.WrapError(api.ENOTFOUND, "Not found.", err)
	}
	if unavailable(err) {
		return api.WrapError(api.EUNAVAILABLE, "The database is unavailable; try again shortly.", err)
	}
	var pqErr *pq.Error
	if errors.As(err, &pqErr) {
		switch pqErr.Code {
		case pqerror.UniqueViolation:
			return api.WrapError(api.ECONFLICT, "A record with this key already exists.", err)
		case pqerror.ForeignKeyViolation:
			return api.WrapError(api.ECONFLICT, "The record is referenced by or refers to another record.", err)
		case pqerror.QueryCanceled:
			return api.WrapError(api.EUNAVAILABLE, "The database took too long to answer; try again shortly.", err)
		}
		if pqErr.Code.Class() == "22" { // data exception: a NUL byte, bad UTF-8, a value out of range
			return api.WrapError(api.EINVALID, "Invalid input.", err)
		}
	}
	return api.WrapError(api.EINTERNAL, "Internal error.", err)
}

// unavailable reports whether err means the database cannot be reached or is
// shutting down, as opposed to a bad query.
func unavailable(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, io.EOF) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, sql.ErrConnDone) || errors.Is(err, pq.ErrSSLNotSupported) {
		return true
	}
	var netErr net.Error
	if errors.As(err, &netErr) {
		return true
	}
	var pqErr *pq.Error
	if errors.As(err, &pqErr) {
		switch pqErr.Code.Class() {
		case "08", "53", "57": // connection exception, insufficient resources, operator intervention
			return pqErr.Code != pqerror.QueryCanceled
		}
		return pqErr.Code == pqerror.InvalidCatalogName || pqErr.Code.Class() == "28"
	}
	return errors.Is(err, driver.ErrBadConn)
}
