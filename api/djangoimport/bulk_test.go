package djangoimport_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/isis-project/isis/api/djangoimport"
	"github.com/isis-project/isis/internal/djangotest"
	"github.com/isis-project/isis/internal/pgtest"
	"github.com/isis-project/isis/internal/testdb"
	"github.com/jmoiron/sqlx"
)

// schemaOf lists the indexes and constraints of the tables a bulk import
// drops and makes again, with whether each constraint is validated.
func schemaOf(t *testing.T, db *sqlx.DB) string {
	t.Helper()
	var defs []string
	if err := db.Select(&defs, `SELECT indexdef FROM pg_indexes WHERE schemaname = current_schema()
			AND tablename IN ('users', 'profiles', 'token_outstanding', 'token_blacklisted', 'django_import')
		UNION ALL
		SELECT conrelid::regclass::text || ' ' || conname || ' ' || pg_get_constraintdef(oid) || ' validated=' || convalidated
		FROM pg_constraint WHERE conrelid IN ('users'::regclass, 'profiles'::regclass, 'token_outstanding'::regclass,
			'token_blacklisted'::regclass, 'django_import'::regclass)
		ORDER BY 1`); err != nil {
		t.Fatal(err)
	}
	return strings.Join(defs, "\n")
}

// TestBulkImport: a first import into an isis without users writes them in
// bulk and leaves every index and constraint as it found them, validated,
// whether it commits or is interrupted after the rows are written; a
// later import (isis has users) compares, as before.
func TestBulkImport(t *testing.T) {
	src := sqlx.MustOpen("postgres", pgtest.NewDatabase(t, "", nil))
	defer src.Close()
	djangotest.Fill(t, src, 300)
	// A token of a user deleted on Django (whose foreign key was not kept).
	src.MustExec(`ALTER TABLE token_blacklist_outstandingtoken DROP CONSTRAINT token_blacklist_outstandingtoken_user_id_fkey;
		INSERT INTO token_blacklist_outstandingtoken (token, created_at, expires_at, user_id, jti)
		VALUES ('x', now(), now() + interval '1 day', 999999, 'jti-of-a-deleted-user')`)
	dst := testdb.Open(t).DB
	before := schemaOf(t, dst)
	if !strings.Contains(before, "FOREIGN KEY") || !strings.Contains(before, "users_email_key") {
		t.Fatalf("the schema has no foreign key or email index: %s", before)
	}

	// Interrupted once its rows are in, before the indexes are made again.
	ctx, cancel := context.WithCancel(context.Background())
	var lines []string
	_, err := djangoimport.Import(ctx, src, dst, djangoimport.Options{Progress: func(f string, a ...any) {
		if strings.HasPrefix(f, "users: ") {
			cancel()
		}
	}})
	cancel()
	if err == nil {
		t.Fatal("the interrupted import succeeded")
	}
	var users, ledger int
	dst.Get(&users, `SELECT count(*) FROM users`)
	dst.Get(&ledger, `SELECT count(*) FROM django_import`)
	if after := schemaOf(t, dst); after != before || users != 0 || ledger != 0 {
		t.Fatalf("after the interrupted import: %d users, %d ledger rows, schema\n%s\nwant\n%s", users, ledger, after, before)
	}

	s, err := djangoimport.Import(context.Background(), src, dst, djangoimport.Options{Progress: func(f string, a ...any) {
		lines = append(lines, f)
	}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(lines, "\n"), "written in bulk") {
		t.Errorf("the first import did not write in bulk: %q", lines)
	}
	if s.Users.Created != 300 || s.Profiles.Created != 300 || s.OutstandingTokens.Created != 301 || s.BlacklistedTokens.Created != 30 {
		t.Errorf("summary: %+v", s)
	}
	if after := schemaOf(t, dst); after != before {
		t.Errorf("after the bulk import, schema\n%s\nwant\n%s", after, before)
	}
	// isis's next token takes an id past the imported ones; blacklisted
	// tokens are the right ones.
	if _, err := dst.Exec(`INSERT INTO token_outstanding (jti, expires_at) VALUES ('isis-own', now())`); err != nil {
		t.Errorf("a token of isis's after the import: %v", err)
	}
	var wrong int
	dst.Get(&wrong, `SELECT count(*) FROM token_blacklisted b JOIN token_outstanding o ON o.id = b.token_id
		WHERE o.user_id % 10 <> 0`)
	if wrong != 0 {
		t.Errorf("%d blacklisted tokens are not the source's", wrong)
	}
	var owner *int64
	dst.Get(&owner, `SELECT user_id FROM token_outstanding WHERE jti = 'jti-of-a-deleted-user'`)
	if owner != nil {
		t.Errorf("the token of a user Django does not have is user %d's", *owner)
	}

	lines = nil
	s, err = djangoimport.Import(context.Background(), src, dst, djangoimport.Options{Progress: func(f string, a ...any) {
		lines = append(lines, f)
	}})
	if err != nil || s.Changes != 0 || strings.Contains(strings.Join(lines, "\n"), "written in bulk") {
		t.Errorf("the second import: %v, %d changes, %q", err, s.Changes, lines)
	}
}

// TestBulkImportWhileIsisReads: when isis's tables are in use (a
// transaction reading users), the first import does not wait for them: it
// writes with the indexes, as a later import does.
func TestBulkImportWhileIsisReads(t *testing.T) {
	src := sqlx.MustOpen("postgres", pgtest.NewDatabase(t, "", nil))
	defer src.Close()
	djangotest.Fill(t, src, 50)
	dst := testdb.Open(t).DB
	reader, err := dst.Beginx()
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Rollback()
	reader.MustExec(`SELECT count(*) FROM users`)
	start := time.Now()
	var lines []string
	s, err := djangoimport.Import(context.Background(), src, dst, djangoimport.Options{Progress: func(f string, a ...any) {
		lines = append(lines, f)
	}})
	if err != nil || s.Users.Created != 50 {
		t.Fatalf("import: %v, %+v", err, s)
	}
	if strings.Contains(strings.Join(lines, "\n"), "written in bulk") || time.Since(start) > time.Minute {
		t.Errorf("the import took the tables in use (%s): %q", time.Since(start), lines)
	}
}

// TestBulkImportEmailConflict: two Django users with one address in isis's
// normal form stop a bulk import as they stop any, both listed, with
// nothing written and every index and constraint as it was.
func TestBulkImportEmailConflict(t *testing.T) {
	src := sqlx.MustOpen("postgres", pgtest.NewDatabase(t, "", nil))
	defer src.Close()
	djangotest.Fill(t, src, 50)
	src.MustExec(`UPDATE accounts_user SET email = upper((SELECT email FROM accounts_user WHERE id = 3)) WHERE id = 7`)
	dst := testdb.Open(t).DB
	before := schemaOf(t, dst)
	var lines []string
	s, err := djangoimport.Import(context.Background(), src, dst, djangoimport.Options{Progress: func(f string, a ...any) {
		lines = append(lines, f)
	}})
	if !djangoimport.IsConflict(err) || len(s.Conflicts) != 1 || !strings.HasPrefix(s.Conflicts[0].String(), "accounts_user id=7: email ") ||
		!strings.Contains(s.Conflicts[0].String(), "is the same address as accounts_user id=3") {
		t.Fatalf("import: %v, %+v", err, s)
	}
	if !strings.Contains(strings.Join(lines, "\n"), "written in bulk") {
		t.Errorf("the import did not write in bulk: %q", lines)
	}
	var users int
	dst.Get(&users, `SELECT count(*) FROM users`)
	if after := schemaOf(t, dst); after != before || users != 0 {
		t.Errorf("after the conflict: %d users, schema\n%s\nwant\n%s", users, after, before)
	}
}

// TestBulkImportTimes: a bulk import writes Django's times as they were,
// whatever isis's database's time zone: a time without a time zone is
// UTC's (as a later import takes it), fractions of a second are kept, a
// profile's missing updated_at is the import's time.
func TestBulkImportTimes(t *testing.T) {
	src := sqlx.MustOpen("postgres", pgtest.NewDatabase(t, "", nil))
	defer src.Close()
	djangotest.Fill(t, src, 3)
	src.MustExec(`ALTER TABLE accounts_user ALTER date_joined TYPE timestamp USING date_joined AT TIME ZONE 'UTC';
		UPDATE accounts_user SET date_joined = '2001-02-03 04:05:06.789012', last_login = '2001-02-03 04:05:06.5+05' WHERE id = 1;
		UPDATE accounts_user SET last_login = NULL WHERE id = 2;
		ALTER TABLE accounts_profile ALTER updated_at DROP NOT NULL;
		UPDATE accounts_profile SET birth_date = '1990-12-31', updated_at = '2020-06-30 23:59:59.000001+00' WHERE user_id = 1;
		UPDATE accounts_profile SET birth_date = NULL, updated_at = NULL WHERE user_id = 2;
		UPDATE token_blacklist_outstandingtoken SET created_at = NULL, expires_at = '2999-01-01 00:00:00.25+00' WHERE user_id = 1;
		INSERT INTO token_blacklist_blacklistedtoken (blacklisted_at, token_id)
			SELECT '2002-03-04 05:06:07.000008+00', id FROM token_blacklist_outstandingtoken WHERE user_id = 1`)
	dsn := testdb.DSN(t)
	dst := sqlx.MustOpen("postgres", dsn)
	defer dst.Close()
	dst.MustExec(`DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET timezone = %L', current_database(), 'America/Bogota'); END $$`)
	dst.Close()
	dst = sqlx.MustOpen("postgres", dsn)
	now := time.Date(2026, 12, 7, 1, 2, 3, 456789000, time.UTC)
	var lines []string
	s, err := djangoimport.Import(context.Background(), src, dst, djangoimport.Options{Now: func() time.Time { return now },
		Progress: func(f string, a ...any) { lines = append(lines, f) }})
	if err != nil || s.Users.Created != 3 {
		t.Fatalf("import: %v, %+v", err, s)
	}
	if !strings.Contains(strings.Join(lines, "\n"), "written in bulk") {
		t.Errorf("the import did not write in bulk: %q", lines)
	}
	var got []string
	if err := dst.Select(&got, `SELECT 'user ' || id || ' ' || date_joined AT TIME ZONE 'UTC' || ' ' || COALESCE((last_login AT TIME ZONE 'UTC')::text, 'null')
			FROM users WHERE id <= 2
		UNION ALL SELECT 'profile ' || user_id || ' ' || COALESCE(birth_date::text, 'null') || ' ' || updated_at AT TIME ZONE 'UTC'
			FROM profiles WHERE user_id <= 2
		UNION ALL SELECT 'token ' || COALESCE(created_at::text, 'null') || ' ' || expires_at AT TIME ZONE 'UTC' FROM token_outstanding WHERE user_id = 1
		UNION ALL SELECT 'blacklisted ' || (blacklisted_at AT TIME ZONE 'UTC') FROM token_blacklisted
		ORDER BY 1`); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"blacklisted 2002-03-04 05:06:07.000008",
		"profile 1 1990-12-31 2020-06-30 23:59:59.000001",
		"profile 2 null 2026-12-07 01:02:03.456789",
		"token null 2999-01-01 00:00:00.25",
		"user 1 2001-02-03 04:05:06.789012 2001-02-02 23:05:06.5",
		"user 2 " + "", // date_joined of Fill's, below
	}
	if len(got) != len(want) {
		t.Fatalf("got %q", got)
	}
	for i, w := range want[:len(want)-1] {
		if got[i] != w {
			t.Errorf("got %q, want %q", got[i], w)
		}
	}
	if !strings.HasSuffix(got[len(got)-1], " null") {
		t.Errorf("user 2's last_login: %q", got[len(got)-1])
	}
}

// TestBulkImportKeepsKeysPointedAt: a primary key a foreign key of another
// table points at stays while the bulk import writes (it could not be
// dropped); the others are made again.
func TestBulkImportKeepsKeysPointedAt(t *testing.T) {
	src := sqlx.MustOpen("postgres", pgtest.NewDatabase(t, "", nil))
	defer src.Close()
	djangotest.Fill(t, src, 20)
	dst := testdb.Open(t).DB
	dst.MustExec(`CREATE TABLE user_notes (user_id bigint REFERENCES users (id), note text)`)
	before := schemaOf(t, dst)
	var lines []string
	s, err := djangoimport.Import(context.Background(), src, dst, djangoimport.Options{Progress: func(f string, a ...any) {
		lines = append(lines, f)
	}})
	if err != nil || s.Users.Created != 20 {
		t.Fatalf("import: %v, %+v", err, s)
	}
	if !strings.Contains(strings.Join(lines, "\n"), "written in bulk") {
		t.Errorf("the import did not write in bulk: %q", lines)
	}
	if after := schemaOf(t, dst); after != before {
		t.Errorf("schema\n%s\nwant\n%s", after, before)
	}
}
