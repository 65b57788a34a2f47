package djangoimport

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"strconv"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// copyText is rows in COPY's text format, written field by field: a bulk
// import encodes its rows itself, in the goroutine that reads them, and
// hands the bytes to the COPY whole (copyRaw), sparing database/sql's and
// lib/pq's work per value (a []any a row, a conversion and a lock a value).
type copyText struct {
	b []byte
	n int // fields in the row being written
}

func (c *copyText) field() {
	if c.n > 0 {
		c.b = append(c.b, '\t')
	}
	c.n++
}

// str writes s, escaped as COPY reads it back (PostgreSQL's text holds no
// NUL byte, so s comes back as it is).
func (c *copyText) str(s string) *copyText {
	c.field()
	c.b = appendEscaped(c.b, s)
	return c
}

// text writes b as str writes a string; nil is NULL.
func (c *copyText) text(b []byte) *copyText {
	if b == nil {
		return c.null()
	}
	c.field()
	c.b = appendEscaped(c.b, b)
	return c
}

func appendEscaped[T string | []byte](b []byte, s T) []byte {
	start := 0
	for i := 0; i < len(s); i++ {
		var e byte
		switch s[i] {
		case '\\':
			e = '\\'
		case '\n':
			e = 'n'
		case '\r':
			e = 'r'
		case '\t':
			e = 't'
		default:
			continue
		}
		b = append(append(b, s[start:i]...), '\\', e)
		start = i + 1
	}
	return append(b, s[start:]...)
}

// raw writes s as it is: a field already in COPY's text form.
func (c *copyText) raw(s string) *copyText {
	c.field()
	c.b = append(c.b, s...)
	return c
}

func (c *copyText) null() *copyText { return c.raw(`\N`) }

func (c *copyText) int(v int64) *copyText {
	c.field()
	c.b = strconv.AppendInt(c.b, v, 10)
	return c
}

func (c *copyText) bool(v bool) *copyText {
	if v {
		return c.raw("t")
	}
	return c.raw("f")
}

func (c *copyText) nullString(s sql.NullString) *copyText {
	if !s.Valid {
		return c.null()
	}
	return c.str(s.String)
}

// time writes t as a timestamptz in UTC ("2006-01-02 15:04:05.999999Z");
// a year COPY would read otherwise (before 1, after 9999) as lib/pq
// writes it.
func (c *copyText) time(t time.Time) *copyText {
	c.field()
	c.b = appendTime(c.b, t)
	return c
}

func (c *copyText) nullTime(t sql.NullTime) *copyText {
	if !t.Valid {
		return c.null()
	}
	return c.time(t.Time)
}

// end ends the row.
func (c *copyText) end() {
	c.b = append(c.b, '\n')
	c.n = 0
}

func (c *copyText) reset() { c.b, c.n = c.b[:0], 0 }

// appendTime appends t in UTC as timestamptz's text form.
func appendTime(b []byte, t time.Time) []byte {
	t = t.UTC()
	year, month, day := t.Date()
	if year < 1 || year > 9999 {
		return append(b, pq.FormatTimestamp(t)...)
	}
	hour, minute, sec := t.Clock()
	b = append4(b, year)
	b = append(b, '-')
	b = append2(b, int(month))
	b = append(b, '-')
	b = append2(b, day)
	b = append(b, ' ')
	b = append2(b, hour)
	b = append(b, ':')
	b = append2(b, minute)
	b = append(b, ':')
	b = append2(b, sec)
	if us := t.Nanosecond() / 1000; us > 0 {
		b = append(b, '.')
		for d := 100000; d > 0; d /= 10 {
			b = append(b, byte('0'+us/d%10))
		}
	}
	return append(b, 'Z')
}

func append2(b []byte, v int) []byte { return append(b, byte('0'+v/10), byte('0'+v%10)) }

func append4(b []byte, v int) []byte { return append2(append2(b, v/100), v%100) }

// rawCopier is the part of lib/pq's COPY statement copyRaw uses (CopyData
// sends rows already in COPY's text format).
type rawCopier interface {
	CopyData(ctx context.Context, line string) (driver.Result, error)
}

// copyRaw COPYs rows (COPY's text format, each ending in a newline) into
// table (cols) on conn, in its transaction.
func copyRaw(ctx context.Context, conn *sqlx.Conn, table string, cols []string, rows []byte) error {
	if len(rows) == 0 {
		return nil
	}
	return conn.Raw(func(dc any) error {
		pc, ok := dc.(driver.ConnPrepareContext)
		if !ok {
			return errors.New("the database driver cannot prepare a COPY")
		}
		stmt, err := pc.PrepareContext(ctx, pq.CopyIn(table, cols...))
		if err != nil {
			return err
		}
		cp, ok := stmt.(rawCopier)
		if !ok {
			stmt.Close()
			return errors.New("the database driver cannot COPY raw rows (lib/pq's CopyData)")
		}
		// CopyData adds the last newline.
		if _, err := cp.CopyData(ctx, string(rows[:len(rows)-1])); err != nil {
			stmt.Close()
			return err
		}
		// An Exec without values ends the COPY and reports its errors.
		if _, err := stmt.Exec(nil); err != nil { //nolint:staticcheck // lib/pq's way to end a COPY
			stmt.Close()
			return err
		}
		return stmt.Close()
	})
}
