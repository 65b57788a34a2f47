package djangoimport_test

import (
	"context"
	"strings"
	"testing"

	"github.com/isis-project/isis/api"
	"github.com/isis-project/isis/api/djangoimport"
	"github.com/isis-project/isis/api/postgres"
	"github.com/isis-project/isis/internal/djangotest"
	"github.com/isis-project/isis/internal/pgtest"
	"github.com/isis-project/isis/internal/testdb"
	"github.com/jmoiron/sqlx"
)

// TestSourceTablesMustBePlain: every table the import reads must be a plain
// table without row-level security, policies or rules, whose columns are of
// PostgreSQL's own types; anything else is one error naming the table and
// why, before any table is read.
func TestSourceTablesMustBePlain(t *testing.T) {
	const spy = `CREATE TABLE marker (at timestamptz);
		CREATE FUNCTION spy() RETURNS boolean LANGUAGE plpgsql AS $$ BEGIN RAISE NOTICE 'spy ran'; RETURN true; END $$;`
	for _, tc := range []struct {
		name, sql, want string
	}{
		{"plain", ``, ""},
		{"matview", `ALTER TABLE accounts_profile RENAME TO p0; CREATE MATERIALIZED VIEW accounts_profile AS SELECT * FROM p0;
			DROP TABLE p0 CASCADE`, ""}, // no foreign key leads to a view: no profile table found
		{"geography view", `ALTER TABLE geo_department RENAME TO d0; CREATE VIEW geo_department_v AS SELECT * FROM d0 WHERE spy()`, ""},
		{"user view", `ALTER TABLE accounts_user RENAME TO u0; CREATE VIEW accounts_user AS SELECT * FROM u0 WHERE spy()`,
			"accounts_user is a view, not a table: isis reads only plain tables (a view can run code)"},
		{"user matview", `CREATE MATERIALIZED VIEW accounts_user2 AS SELECT * FROM accounts_user`,
			"accounts_user2 is a materialized view, not a table"},
		{"partitioned", `CREATE TABLE accounts_user2 (LIKE accounts_user) PARTITION BY RANGE (id)`,
			"accounts_user2 is a partitioned table: isis reads only plain tables"},
		{"row-level security", `ALTER TABLE accounts_profile ENABLE ROW LEVEL SECURITY; CREATE POLICY p ON accounts_profile USING (spy())`,
			"accounts_profile has row-level security: isis reads only tables without it (a policy can run code on SELECT)"},
		{"a policy, security off", `CREATE POLICY p ON token_blacklist_blacklistedtoken USING (spy())`,
			"token_blacklist_blacklistedtoken has row-level security"},
		{"rule", `CREATE RULE r AS ON INSERT TO geo_municipality DO ALSO SELECT spy()`,
			"geo_municipality has rules (pg_rewrite): isis reads only tables without them (a rule can run code)"},
		{"domain", `CREATE DOMAIN mail AS text CHECK (spy()); ALTER TABLE accounts_user ALTER email TYPE mail`,
			"accounts_user.email is of type mail, not a built-in type: isis reads only columns of PostgreSQL's own types (a domain or custom type can run code)"},
		{"enum", `CREATE TYPE colour AS ENUM ('red'); ALTER TABLE geo_department ADD COLUMN colour colour`,
			"geo_department.colour is of type colour, not a built-in type"},
		{"django_content_type view", `DROP TABLE token_blacklist_blacklistedtoken, token_blacklist_outstandingtoken;
			ALTER TABLE django_content_type RENAME TO c0; CREATE VIEW django_content_type AS SELECT * FROM c0 WHERE spy()`,
			"django_content_type is a view, not a table"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := sqlx.MustOpen("postgres", pgtest.NewDatabase(t, "", nil))
			defer src.Close()
			src.MustExec(djangotest.Schema + spy + tc.sql)
			userTable := ""
			if strings.Contains(tc.name, "user ") || tc.name == "partitioned" {
				userTable = strings.Fields(tc.want)[0]
			}
			dst := sqlx.MustOpen("postgres", testdb.DSN(t))
			defer dst.Close()
			for _, dry := range []bool{true, false} {
				_, err := djangoimport.Import(context.Background(), src, dst, djangoimport.Options{UserTable: userTable, DryRun: dry})
				if tc.want == "" {
					if err != nil {
						t.Errorf("dry run %v: %v", dry, err)
					}
					continue
				}
				if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Count(err.Error(), "\n") > 0 {
					t.Errorf("dry run %v: %v, want %q", dry, err, tc.want)
				}
			}
		})
	}
}

// TestImportRefusesBadRows: what the profile would answer 500 for, or a
// later upload would break, or a login would spend minutes on, is a
// conflict naming the row; conflicts print control characters escaped.
func TestImportRefusesBadRows(t *testing.T) {
	src := sqlx.MustOpen("postgres", pgtest.NewDatabase(t, "", nil))
	defer src.Close()
	src.MustExec(djangotest.Schema)
	src.MustExec(`INSERT INTO geo_department VALUES (E'\x1b[', 'Terminal');
	INSERT INTO accounts_user (id, password, is_superuser, email, first_name, last_name, is_staff, is_active, date_joined) VALUES
		(1, '!x', false, 'ana@example.com', '', '', false, true, now()),
		(2, '!x', false, 'not an address@example.com', '', '', false, true, now()),
		(3, '!x', false, 'two@@example.com', '', '', false, true, now()),
		(4, '!x', false, 'eva@example.com', '', '', false, true, now()),
		(5, '!x', false, 'five@example.com', '', '', false, true, now()),
		(6, '!x', false, 'six@example.com', '', '', false, true, now()),
		(7, 'argon2$argon2id$v=19$m=1048576,t=16,p=255$c29tZXNhbHRzb21lc2FsdA$AAAAAAAAAAAAAAAAAAAAAA', false, 'heavy@example.com', '', '', false, true, now()),
		(8, '!x', false, 'ok@example.com', '', '', false, true, now());
	INSERT INTO accounts_profile (id, phone, bio, avatar, updated_at, user_id) VALUES
		(1, '', '', '../../etc/passwd', now(), 1),
		(4, '', '', 'https://evil.example/x.jpg', now(), 4),
		(5, '', '', 'avatars/shared.jpg', now(), 5),
		(6, '', '', 'avatars/shared.jpg', now(), 6),
		(8, '', '', 'avatars/8/0123456789abcdef01234567.png', now(), 8)`)
	dst := sqlx.MustOpen("postgres", testdb.DSN(t))
	defer dst.Close()
	s, err := djangoimport.Import(context.Background(), src, dst, djangoimport.Options{})
	if !djangoimport.IsConflict(err) {
		t.Fatalf("import: %v", err)
	}
	var got []string
	for _, c := range s.Conflicts {
		got = append(got, c.String())
	}
	all := strings.Join(got, "\n")
	for _, want := range []string{
		`geo_department id="\x1b[": department code "\x1b[" is not two digits`,
		`accounts_user id=2: email "not an address@example.com" is not a valid address (isis's sign-up would refuse it)`,
		`accounts_user id=3: email "two@@example.com" is not a valid address`,
		`accounts_user id=7: password: argon2 hash: memory_cost m=1048576 out of bounds (at most 204800 KiB)`,
		`accounts_profile id=1: avatar "../../etc/passwd" is not a key isis would store`,
		`accounts_profile id=4: avatar "https://evil.example/x.jpg" is not a key isis would store`,
		`accounts_profile id=5: avatar "avatars/shared.jpg" is also user 6's`,
		`accounts_profile id=6: avatar "avatars/shared.jpg" is also user 5's`,
	} {
		if !strings.Contains(all, want) {
			t.Errorf("no conflict %q", want)
		}
	}
	if len(got) != 8 || strings.ContainsRune(all, 0x1b) {
		t.Errorf("conflicts:\n%s", all)
	}
}

// TestImportIntoAnIsisWithUsers: a first import into an isis that has users
// of its own is refused unless Merge; with it, a Django refresh token naming a user id
// Django no longer has is never given to the isis user with that id.
func TestImportIntoAnIsisWithUsers(t *testing.T) {
	src := sqlx.MustOpen("postgres", pgtest.NewDatabase(t, "", nil))
	defer src.Close()
	src.MustExec(djangotest.Schema)
	src.MustExec(`ALTER TABLE token_blacklist_outstandingtoken DROP CONSTRAINT token_blacklist_outstandingtoken_user_id_fkey;
	INSERT INTO accounts_user (id, password, is_superuser, email, first_name, last_name, is_staff, is_active, date_joined) VALUES
		(100, '!x', false, 'ana@example.com', '', '', false, true, now());
	INSERT INTO token_blacklist_outstandingtoken (token, created_at, expires_at, user_id, jti) VALUES
		('x', now(), now() + interval '1 day', 1, 'jti-of-a-deleted-django-user'),
		('x', now(), now() + interval '1 day', 100, 'jti-ana')`)
	db := testdb.Open(t)
	if err := postgres.NewUserService(db).CreateUser(context.Background(), &api.User{Email: "root@isis.example", Password: "!x", IsActive: true, IsSuperuser: true}); err != nil {
		t.Fatal(err)
	}
	var native int64
	db.Get(&native, `SELECT id FROM users`)
	src.MustExec(`UPDATE token_blacklist_outstandingtoken SET user_id = $1 WHERE jti = 'jti-of-a-deleted-django-user'`, native)
	dst := db.DB
	_, err := djangoimport.Import(context.Background(), src, dst, djangoimport.Options{})
	if err == nil || !strings.Contains(err.Error(), "isis already has 1 user(s) that no import created") || !strings.Contains(err.Error(), "--merge") {
		t.Fatalf("import into an isis with users: %v", err)
	}
	if _, err := djangoimport.Import(context.Background(), src, dst, djangoimport.Options{Merge: true}); err != nil {
		t.Fatalf("--merge: %v", err)
	}
	// Later imports continue the first one: isis's own users are expected.
	if _, err := djangoimport.Import(context.Background(), src, dst, djangoimport.Options{}); err != nil {
		t.Errorf("a later import without --merge: %v", err)
	}
	var owners []string
	dst.Select(&owners, `SELECT jti || '=' || COALESCE(user_id::text, 'none') FROM token_outstanding ORDER BY jti`)
	if strings.Join(owners, " ") != "jti-ana=100 jti-of-a-deleted-django-user=none" {
		t.Errorf("token owners: %v (isis's own user is %d)", owners, native)
	}
}
