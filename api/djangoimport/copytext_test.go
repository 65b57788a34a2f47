package djangoimport

import (
	"context"
	"database/sql"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/isis-project/isis/internal/pgtest"
	"github.com/jmoiron/sqlx"
)

// FuzzCopyText: what copyText writes, COPY reads back as it was: any text
// (but NUL or invalid UTF-8, which PostgreSQL's text cannot hold), any time of years 1 to
// 9999 and beyond (to the microsecond), null or not, integers, booleans.
func FuzzCopyText(f *testing.F) {
	for _, s := range []string{"", "plain", `back\slash`, "tab\there", "new\nline", "cr\rlf\r\n", `\N`, `\.`, "\\\\t", "ñandú 🦤", "a\tb\\n\nc"} {
		f.Add(s, int64(1_700_000_000), int64(123456789), true)
	}
	f.Add("year one", int64(-62135596800), int64(0), false)         // 0001-01-01
	f.Add("year 9999", int64(253402300799), int64(999999000), true) // 9999-12-31 23:59:59.999999
	f.Add("year 10000", int64(253402300800), int64(1000), false)
	f.Add("before year one", int64(-62135596801), int64(0), true)
	db := sqlx.MustOpen("postgres", pgtest.NewDatabase(f, "", nil))
	defer db.Close()
	db.MustExec(`CREATE TABLE t (r int, s text, ts timestamptz, b bool, i bigint, n text, nt timestamptz)`)
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, s string, sec, nsec int64, b bool) {
		if strings.IndexByte(s, 0) >= 0 || !utf8.ValidString(s) {
			t.Skip("PostgreSQL's text (UTF8) holds no NUL nor invalid UTF-8")
		}
		when := time.Unix(sec, nsec%1e9).In(time.FixedZone("x", 5*3600)).Truncate(time.Microsecond)
		if y := when.UTC().Year(); y < -4000 || y > 200000 {
			t.Skip("beyond timestamptz")
		}
		var c copyText
		c.int(0).str(s).time(when).bool(b).int(sec).nullString(sql.NullString{}).nullTime(sql.NullTime{}).end()
		c.int(1).str(s).time(when).bool(!b).int(-sec).nullString(sql.NullString{String: s, Valid: true}).nullTime(sql.NullTime{Time: when, Valid: true}).end()
		conn, err := db.Connx(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		tx, err := conn.BeginTxx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback()
		if err := copyRaw(ctx, conn, "t", []string{"r", "s", "ts", "b", "i", "n", "nt"}, c.b); err != nil {
			t.Fatalf("%q: %v", c.b, err)
		}
		var rows []struct {
			R  int            `db:"r"`
			S  string         `db:"s"`
			TS time.Time      `db:"ts"`
			B  bool           `db:"b"`
			I  int64          `db:"i"`
			N  sql.NullString `db:"n"`
			NT sql.NullTime   `db:"nt"`
		}
		if err := tx.Select(&rows, `SELECT * FROM t ORDER BY r`); err != nil {
			t.Fatal(err)
		}
		if len(rows) != 2 {
			t.Fatalf("%d rows", len(rows))
		}
		for i, r := range rows {
			if r.S != s || !r.TS.Equal(when) || r.B != (b == (i == 0)) || r.I != map[bool]int64{true: sec, false: -sec}[i == 0] {
				t.Errorf("row %d: %+v, want %q %v %v %d (encoded %q)", i, r, s, when, b, sec, c.b)
			}
			if r.N.Valid != (i == 1) || r.N.String != map[bool]string{true: "", false: s}[i == 0] ||
				r.NT.Valid != (i == 1) || (i == 1 && !r.NT.Time.Equal(when)) {
				t.Errorf("row %d: nulls %+v %+v", i, r.N, r.NT)
			}
		}
	})
}
