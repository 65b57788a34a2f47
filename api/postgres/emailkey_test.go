package postgres

import (
	"context"
	"strings"
	"testing"

	"github.com/isis-project/isis/internal/pgtest"
)

// TestEmailKeyMigration: 0006 fills email_key for the users already there
// and refuses, naming both, two users whose addresses are the same once
// normalized (the lower(email) index let them in); users a previous release
// writes later get theirs on the next migrate.
func TestEmailKeyMigration(t *testing.T) {
	ctx := context.Background()
	db, err := Open(pgtest.NewDatabase(t, "", nil), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	conn, err := db.Connx(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(ctx, createMigrationsTable); err != nil {
		t.Fatal(err)
	}
	for _, m := range Migrations() {
		if m.Version >= "0006" {
			break
		}
		if err := applyMigration(ctx, conn, m); err != nil {
			t.Fatal(err)
		}
	}
	conn.Close()
	for _, e := range []string{"Kim@example.com", "kim@ｅｘａｍｐｌｅ.com", "ana@example.com"} {
		db.MustExec(`INSERT INTO users (email, password, date_joined) VALUES ($1, '!', now())`, e)
	}
	_, err = db.Migrate(ctx)
	if err == nil || !strings.Contains(err.Error(), `"Kim@example.com"`) || !strings.Contains(err.Error(), `"kim@ｅｘａｍｐｌｅ.com"`) {
		t.Fatalf("migrate with a clash: %v", err)
	}
	db.MustExec(`UPDATE users SET email = 'kim2@example.com' WHERE email = 'kim@ｅｘａｍｐｌｅ.com'`)
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	var keys []string
	db.Select(&keys, `SELECT email_key FROM users ORDER BY id`)
	if strings.Join(keys, " ") != "kim@example.com kim2@example.com ana@example.com" {
		t.Errorf("email keys = %q", keys)
	}
	if _, err := db.Exec(`INSERT INTO users (email, email_key, password, date_joined) VALUES ('ANA@example.com', 'ana@example.com', '!', now())`); err == nil {
		t.Error("a second user with the same email_key was stored")
	}

	// A server of the previous release, still up during the upgrade, writes
	// users without a key: they sign in as before, and the next migrate
	// gives them their key.
	if _, err := db.Exec(`INSERT INTO users (email, password, date_joined) VALUES ('Old.Server@example.com', '!', now())`); err != nil {
		t.Fatalf("insert as the previous release does: %v", err)
	}
	if _, err := db.Exec(`INSERT INTO users (email, password, date_joined) VALUES ('ANA@EXAMPLE.COM', '!', now())`); err == nil {
		t.Error("the previous release's insert of a taken address was stored")
	}
	u, err := NewUserService(db).FindUserByEmail(ctx, "old.server@EXAMPLE.com")
	if err != nil || u.Email != "Old.Server@example.com" {
		t.Fatalf("user without a key: %v %v", u, err)
	}
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	var key string
	db.Get(&key, `SELECT email_key FROM users WHERE id = $1`, u.ID)
	if key != "old.server@example.com" {
		t.Errorf("key after migrate = %q", key)
	}
}
