package postgres

import (
	"context"
	"strings"
	"testing"

	"github.com/isis-project/isis/internal/pgtest"
)

// TestEmailKeyMigration: 0006 fills email_key for the users already there
// and refuses, naming both, two users whose addresses are the same once
// normalized (the lower(email) index let them in).
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
	if _, err := db.Exec(`INSERT INTO users (email, password, date_joined) VALUES ('x@example.com', '!', now())`); err == nil {
		t.Error("a user without email_key was stored")
	}
	if _, err := db.Exec(`INSERT INTO users (email, email_key, password, date_joined) VALUES ('ANA@example.com', 'ana@example.com', '!', now())`); err == nil {
		t.Error("a second user with the same email_key was stored")
	}
}
