package postgres_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/isis-project/isis/api"
	"github.com/isis-project/isis/api/postgres"
	"github.com/isis-project/isis/internal/testdb"
	"github.com/isis-project/isis/internal/wait"
)

type nopInvalidator struct{}

func (nopInvalidator) InvalidateGeo()          {}
func (nopInvalidator) SetGeoCacheEnabled(bool) {}

func listening(t *testing.T) (*postgres.DB, *postgres.UserService, *api.User) {
	t.Helper()
	db := testdb.Open(t)
	db.Listen(t.Context(), nopInvalidator{})
	users := postgres.NewUserService(db)
	u := &api.User{Email: "cache@example.com", FirstName: "Ana", IsActive: true, Password: "!"}
	if err := users.CreateUser(context.Background(), u); err != nil {
		t.Fatal(err)
	}
	wait.For(t, "the cache to come on", db.UserCacheEnabled)
	if _, err := users.FindUserByID(context.Background(), u.ID); err != nil {
		t.Fatal(err)
	}
	if !db.UserCached(u.ID) {
		t.Fatal("the row was not cached: the test would prove nothing")
	}
	return db, users, u
}

// TestUserCacheFollowsOtherWriters: a change made outside this process
// (psql, `isis changepassword`, another server) reaches the cache through
// the users trigger's notification; so do deletes and TRUNCATE.
func TestUserCacheFollowsOtherWriters(t *testing.T) {
	db, users, u := listening(t)
	ctx := context.Background()
	if _, err := db.Exec(`UPDATE users SET is_active = false WHERE id = $1`, u.ID); err != nil {
		t.Fatal(err)
	}
	wait.For(t, "the deactivation", func() bool {
		got, err := users.FindUserByID(ctx, u.ID)
		return err == nil && !got.IsActive
	})

	if _, err := users.FindUserByID(ctx, u.ID); err != nil || !db.UserCached(u.ID) {
		t.Fatalf("not cached again: %v", err)
	}
	for _, q := range []string{`DELETE FROM profiles WHERE user_id = $1`, `DELETE FROM users WHERE id = $1`} {
		if _, err := db.Exec(q, u.ID); err != nil {
			t.Fatal(err)
		}
	}
	wait.For(t, "the delete", func() bool {
		_, err := users.FindUserByID(ctx, u.ID)
		return api.ErrorCode(err) == api.ENOTFOUND
	})
}

func TestUserCacheTruncate(t *testing.T) {
	db, users, u := listening(t)
	if _, err := db.Exec(`TRUNCATE users CASCADE`); err != nil {
		t.Fatal(err)
	}
	wait.For(t, "the truncate", func() bool {
		_, err := users.FindUserByID(context.Background(), u.ID)
		return api.ErrorCode(err) == api.ENOTFOUND
	})
}

// TestUserCacheReadsOwnWrites: once a write through the service returns,
// every read sees it, with readers filling the cache all the while.
func TestUserCacheReadsOwnWrites(t *testing.T) {
	_, users, u := listening(t)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for ctx.Err() == nil {
				users.FindUserByID(ctx, u.ID)
			}
		})
	}
	defer func() { cancel(); wg.Wait() }()
	for i := range 100 {
		name := fmt.Sprint("Ana ", i)
		if _, err := users.UpdateUser(ctx, u.ID, api.UserUpdate{FirstName: &name}); err != nil {
			t.Fatal(err)
		}
		if got, err := users.FindUserByID(ctx, u.ID); err != nil || got.FirstName != name {
			t.Fatalf("after UpdateUser(%q): %v %v", name, got, err)
		}
		if err := users.TouchLogin(ctx, u.ID); err != nil {
			t.Fatal(err)
		}
		if got, err := users.FindUserByID(ctx, u.ID); err != nil || got.LastLogin == nil {
			t.Fatalf("after TouchLogin: %v %v", got, err)
		}
		hash := fmt.Sprint("hash-", i)
		if err := users.SetPassword(ctx, u.ID, hash); err != nil {
			t.Fatal(err)
		}
		if got, err := users.FindUserByID(ctx, u.ID); err != nil || got.Password != hash {
			t.Fatalf("after SetPassword: %v", err)
		}
	}
}

// TestUserCacheCopies: a caller changing its row does not change the cache.
func TestUserCacheCopies(t *testing.T) {
	_, users, u := listening(t)
	a, _ := users.FindUserByID(context.Background(), u.ID)
	a.FirstName = "changed by a handler"
	if b, _ := users.FindUserByID(context.Background(), u.ID); b.FirstName != "Ana" {
		t.Errorf("cache shares rows: %q", b.FirstName)
	}
}

// TestUserCacheOffWithoutNotifications: without Listen, every read goes to
// the database.
func TestUserCacheOffWithoutNotifications(t *testing.T) {
	db := testdb.Open(t)
	users := postgres.NewUserService(db)
	u := &api.User{Email: "nocache@example.com", IsActive: true, Password: "!"}
	if err := users.CreateUser(context.Background(), u); err != nil {
		t.Fatal(err)
	}
	users.FindUserByID(context.Background(), u.ID)
	if db.UserCached(u.ID) {
		t.Error("cached without notifications")
	}
}

// TestListenWaitsForTheDatabase: Listen returns at once with PostgreSQL
// down, the caches stay off, and they come on by themselves once it is up.
func TestListenWaitsForTheDatabase(t *testing.T) {
	pg, db := testdb.OwnServer(t)
	pg.Stop()
	done := make(chan struct{})
	go func() { db.Listen(t.Context(), nopInvalidator{}); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("Listen blocked while the database was down")
	}
	time.Sleep(300 * time.Millisecond)
	if db.UserCacheEnabled() {
		t.Fatal("cache on with the database down")
	}
	if err := pg.Start(); err != nil {
		t.Fatal(err)
	}
	wait.For(t, "the cache to come on", db.UserCacheEnabled)
	pg.Stop()
	wait.For(t, "the cache to go off", func() bool { return !db.UserCacheEnabled() })
}
