package djangoimport_test

import (
	"context"
	"fmt"
	"reflect"
	"sort"
	"testing"

	"github.com/isis-project/isis/api"
	"github.com/isis-project/isis/api/djangoimport"
	"github.com/isis-project/isis/api/postgres"
	"github.com/isis-project/isis/internal/djangotest"
	"github.com/isis-project/isis/internal/pgtest"
	"github.com/isis-project/isis/internal/testdb"
	"github.com/isis-project/isis/internal/testenv"
	"github.com/jmoiron/sqlx"
)

// TestImportStreams: the import holds no table in memory. 12,000 users
// whose profiles carry an 8 KiB bio each (96 MiB of bios) are imported with
// the process's peak RSS under 64 MiB (an import that reads every row
// into memory first needs about twice the bios); the no-op rerun too.
func TestImportStreams(t *testing.T) {
	if testenv.Race {
		t.Skip("the race detector's shadow memory multiplies RSS: measured by the ordinary run")
	}
	const n = 12_000
	src := sqlx.MustOpen("postgres", pgtest.NewDatabase(t, "", nil))
	defer src.Close()
	djangotest.Fill(t, src, n)
	// Bios that do not compress (TOAST would shrink a repeated one, not the import's copy of it).
	src.MustExec(`ALTER TABLE accounts_profile ALTER bio SET STORAGE EXTERNAL;
		UPDATE accounts_profile SET bio = (SELECT string_agg(md5(id::text || ':' || g::text), '') FROM generate_series(1, 256) g)`)
	dst := sqlx.MustOpen("postgres", testdb.DSN(t))
	defer dst.Close()
	for _, run := range []string{"first", "again"} {
		peak := testenv.PeakRSS()
		s, err := djangoimport.Import(context.Background(), src, dst, djangoimport.Options{})
		if err != nil {
			t.Fatalf("%s import: %v", run, err)
		}
		mib := peak()
		t.Logf("%s import: peak RSS %.1f MiB, %d changes", run, mib, s.Changes)
		if run == "first" && (s.Users.Created != n || s.Profiles.Created != n) || run == "again" && s.Changes != 0 {
			t.Errorf("%s import: %+v", run, s)
		}
		if mib >= 64 {
			t.Errorf("%s import: peak RSS %.1f MiB, want under 64 MiB for %d users with 8 KiB bios", run, mib, n)
		}
	}
	var bio int
	dst.Get(&bio, `SELECT length(bio) FROM profiles WHERE id = 7`)
	if bio != 8192 {
		t.Errorf("bio of profile 7: %d bytes, want 8192", bio)
	}
}

// TestImportChecksAgainstIsis: the checks that compare Django's rows with
// isis's own (now run in SQL against the staged rows) name the same rows as
// before: an id or profile id isis gave one of its users, an address or an
// avatar an isis user has; users gone from Django are counted. The same
// through a pool of one connection (where nothing can be read beside the
// COPY, and every row is staged).
func TestImportChecksAgainstIsis(t *testing.T) {
	for _, conns := range []int{0, 1} {
		t.Run(fmt.Sprintf("max %d connections", conns), func(t *testing.T) { checksAgainstIsis(t, conns) })
	}
}

func checksAgainstIsis(t *testing.T, conns int) {
	src := sqlx.MustOpen("postgres", pgtest.NewDatabase(t, "", nil))
	defer src.Close()
	src.MustExec(djangotest.Schema)
	src.MustExec(`INSERT INTO accounts_user (id, password, is_superuser, email, first_name, last_name, is_staff, is_active, date_joined) VALUES
		(1, '!x', false, 'one@example.com', '', '', false, true, now()),
		(3, '!x', false, 'TWO@isis.example', '', '', false, true, now()),
		(4, '!x', false, 'four@example.com', '', '', false, true, now()),
		(5, '!x', false, 'five@example.com', '', '', false, true, now());
	INSERT INTO accounts_profile (id, phone, bio, avatar, updated_at, user_id) VALUES
		(5, '', '', '', now(), 4),
		(6, '', '', 'avatars/1/mine.png', now(), 5)`)
	db := testdb.Open(t)
	dst := db.DB
	dst.SetMaxOpenConns(conns)
	for _, e := range []string{"root@isis.example", "two@isis.example"} {
		if err := postgres.NewUserService(db).CreateUser(context.Background(), &api.User{Email: e, Password: "!x", IsActive: true}); err != nil {
			t.Fatal(err)
		}
	}
	var native []int64
	dst.Select(&native, `SELECT id FROM users ORDER BY id`)
	if !reflect.DeepEqual(native, []int64{1, 2}) {
		t.Fatalf("isis's own users have ids %v, want 1 and 2", native)
	}
	dst.MustExec(`UPDATE profiles SET id = 5, avatar = 'avatars/1/mine.png' WHERE user_id = 1`)
	s, err := djangoimport.Import(context.Background(), src, dst, djangoimport.Options{Merge: true})
	if !djangoimport.IsConflict(err) {
		t.Fatalf("import: %v", err)
	}
	var got []string
	for _, c := range s.Conflicts {
		got = append(got, c.String())
	}
	sort.Strings(got)
	want := []string{
		`accounts_profile id=5: isis already has a profile with id 5, of user 1, that no import created`,
		`accounts_profile id=6: avatar "avatars/1/mine.png" is also user 1's (isis deletes an avatar's file when its user uploads a new one: each user needs a file of their own)`,
		`accounts_user id=1: isis already has a user with id 1 (root@isis.example) that no import created: import into a fresh isis database`,
		`accounts_user id=3: email "TWO@isis.example" is the same address as isis user id=2 ("two@isis.example") in isis's normal form`,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("conflicts:\n got %q\nwant %q", got, want)
	}

	src.MustExec(`DELETE FROM accounts_profile; DELETE FROM accounts_user WHERE id IN (1, 3)`)
	if s, err = djangoimport.Import(context.Background(), src, dst, djangoimport.Options{Merge: true}); err != nil || s.Users.Created != 2 {
		t.Fatalf("import: %v, %+v", err, s)
	}
	src.MustExec(`DELETE FROM accounts_user WHERE id = 5`)
	if s, err = djangoimport.Import(context.Background(), src, dst, djangoimport.Options{}); err != nil || s.UsersGone != 1 || s.Users.Unchanged != 1 || s.Changes != 0 {
		t.Errorf("import after a user left Django: %v, %+v", err, s)
	}
}

// TestImportLaterChanges: what changed on Django since the last import is
// found whether or not a second connection reads isis's ledger and tokens
// beside the COPY: an edited user and profile, a token blacklisted since,
// a new token; the run after that writes nothing.
func TestImportLaterChanges(t *testing.T) {
	for _, conns := range []int{0, 1} {
		t.Run(fmt.Sprintf("max %d connections", conns), func(t *testing.T) {
			src := sqlx.MustOpen("postgres", pgtest.NewDatabase(t, "", nil))
			defer src.Close()
			djangotest.Fill(t, src, 30)
			dst := sqlx.MustOpen("postgres", testdb.DSN(t))
			defer dst.Close()
			dst.SetMaxOpenConns(conns)
			ctx := context.Background()
			if _, err := djangoimport.Import(ctx, src, dst, djangoimport.Options{}); err != nil {
				t.Fatal(err)
			}
			src.MustExec(`UPDATE accounts_user SET first_name = 'Nueva' WHERE id = 7;
				UPDATE accounts_profile SET bio = 'otra' WHERE user_id = 8;
				INSERT INTO token_blacklist_blacklistedtoken (blacklisted_at, token_id) SELECT now(), id FROM token_blacklist_outstandingtoken WHERE user_id = 9;
				INSERT INTO token_blacklist_outstandingtoken (token, created_at, expires_at, user_id, jti) VALUES ('x', now(), now() + interval '1 day', 9, '0-new')`)
			s, err := djangoimport.Import(ctx, src, dst, djangoimport.Options{})
			if err != nil || s.Users.Updated != 1 || s.Users.Unchanged != 29 || s.Profiles.Updated != 1 || s.Profiles.Unchanged != 29 ||
				s.OutstandingTokens.Created != 1 || s.BlacklistedTokens.Created != 1 || s.Changes != 4 {
				t.Fatalf("import after changes: %v, %+v", err, s)
			}
			var got []string
			dst.Select(&got, `SELECT u.first_name || ' ' || p.bio FROM users u JOIN profiles p ON p.user_id = u.id WHERE u.id IN (7, 8) ORDER BY u.id`)
			var black int
			dst.Get(&black, `SELECT count(*) FROM token_blacklisted b JOIN token_outstanding o ON o.id = b.token_id WHERE o.user_id = 9`)
			if !reflect.DeepEqual(got, []string{"Nueva bio 7", "First8 otra"}) || black != 1 {
				t.Errorf("after the import: %q, %d blacklisted tokens of user 9", got, black)
			}
			if s, err = djangoimport.Import(ctx, src, dst, djangoimport.Options{}); err != nil || s.Changes != 0 || s.Users.Unchanged != 30 {
				t.Errorf("the run after: %v, %+v", err, s)
			}
		})
	}
}
