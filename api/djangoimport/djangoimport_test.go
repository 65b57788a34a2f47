package djangoimport_test

import (
	"context"
	"strings"
	"testing"

	"github.com/isis-project/isis/api/djangoimport"
	"github.com/isis-project/isis/internal/pgtest"
	"github.com/isis-project/isis/internal/testdb"
	"github.com/jmoiron/sqlx"
)

// stockAuth is a Django project on the stock auth_user (username login,
// email may be blank), without SimpleJWT's blacklist or profiles.
const stockAuth = `
CREATE TABLE django_content_type (id serial PRIMARY KEY, app_label varchar(100) NOT NULL, model varchar(100) NOT NULL);
INSERT INTO django_content_type (app_label, model) VALUES ('auth', 'user'), ('auth', 'group'), ('auth', 'permission'), ('contenttypes', 'contenttype');
CREATE TABLE auth_user (id serial PRIMARY KEY, password varchar(128) NOT NULL, last_login timestamptz, is_superuser boolean NOT NULL,
	username varchar(150) NOT NULL UNIQUE, first_name varchar(150) NOT NULL, last_name varchar(150) NOT NULL, email varchar(254) NOT NULL,
	is_staff boolean NOT NULL, is_active boolean NOT NULL, date_joined timestamptz NOT NULL);
CREATE TABLE auth_group (id serial PRIMARY KEY, name varchar(150) NOT NULL);
INSERT INTO auth_user (password, is_superuser, username, first_name, last_name, email, is_staff, is_active, date_joined) VALUES
	('pbkdf2_sha256$260000$seasalt$YlZ2Vggtqdc61YjArZuoApoBh9JNGYoDRBUGu6tcJQo=', true, 'admin', 'Ad', 'Min', 'admin@Example.COM', true, true, now()),
	('!unusable', false, 'nomail', '', '', '', false, true, now());
`

// TestStockAuthUser: the user table is found from django_content_type when
// there are no tokens to follow; a blank email is a conflict naming the row;
// two candidate tables need --user-table.
func TestStockAuthUser(t *testing.T) {
	src := sqlx.MustOpen("postgres", pgtest.NewDatabase(t, "", nil))
	defer src.Close()
	src.MustExec(stockAuth)
	dst := sqlx.MustOpen("postgres", testdb.DSN(t))
	defer dst.Close()
	ctx := context.Background()

	s, err := djangoimport.Import(ctx, src, dst, djangoimport.Options{})
	if !djangoimport.IsConflict(err) || len(s.Conflicts) != 1 || s.Conflicts[0].String() != "auth_user id=2: no email (isis logs users in by email)" {
		t.Fatalf("blank email: %v, %+v", err, s)
	}
	var n int
	dst.Get(&n, `SELECT count(*) FROM users`)
	if n != 0 {
		t.Fatalf("a stopped import wrote %d users", n)
	}

	src.MustExec(`UPDATE auth_user SET email = 'nomail@example.com' WHERE id = 2`)
	s, err = djangoimport.Import(ctx, src, dst, djangoimport.Options{})
	if err != nil || s.Source.UserTable != "auth_user" || s.Source.ProfileTable != "" || s.Users.Created != 2 {
		t.Fatalf("import: %v, %+v", err, s)
	}
	var email string
	dst.Get(&email, `SELECT email FROM users WHERE id = 1`)
	if email != "admin@example.com" {
		t.Errorf("email stored as %q, want isis's normal form (the domain lower-cased)", email)
	}

	src.MustExec(`CREATE TABLE legacy_member (id serial PRIMARY KEY, email text, password text, last_login timestamptz);
		INSERT INTO django_content_type (app_label, model) VALUES ('legacy', 'member')`)
	if _, err := djangoimport.Import(ctx, src, dst, djangoimport.Options{}); err == nil ||
		!strings.Contains(err.Error(), "several tables look like the user table (auth_user, legacy_member): name one with --user-table") {
		t.Errorf("two candidates: %v", err)
	}
	s, err = djangoimport.Import(ctx, src, dst, djangoimport.Options{UserTable: "auth_user"})
	if err != nil || s.Changes != 0 {
		t.Errorf("--user-table auth_user again: %v, %+v", err, s)
	}
	if _, err := djangoimport.Import(ctx, src, dst, djangoimport.Options{UserTable: "nope"}); err == nil || !strings.Contains(err.Error(), `user table "nope" does not exist`) {
		t.Errorf("--user-table nope: %v", err)
	}
}

// TestEmailKeyColumn: where isis compares addresses in a column of their own
// (users.email_key), the import fills it.
func TestEmailKeyColumn(t *testing.T) {
	src := sqlx.MustOpen("postgres", pgtest.NewDatabase(t, "", nil))
	defer src.Close()
	src.MustExec(stockAuth)
	src.MustExec(`UPDATE auth_user SET email = 'No.Mail@Example.com' WHERE id = 2`)
	dst := sqlx.MustOpen("postgres", testdb.DSN(t))
	defer dst.Close()
	dst.MustExec(`ALTER TABLE users ADD COLUMN IF NOT EXISTS email_key text; ALTER TABLE users ALTER COLUMN email_key SET NOT NULL`)
	if _, err := djangoimport.Import(context.Background(), src, dst, djangoimport.Options{}); err != nil {
		t.Fatal(err)
	}
	var keys []string
	dst.Select(&keys, `SELECT email || ' ' || email_key FROM users ORDER BY id`)
	if strings.Join(keys, "; ") != "admin@example.com admin@example.com; No.Mail@example.com no.mail@example.com" {
		t.Errorf("email, email_key: %q", keys)
	}
}
