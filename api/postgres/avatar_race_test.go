package postgres_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/isis-project/isis/api"
	"github.com/isis-project/isis/api/postgres"
	"github.com/isis-project/isis/internal/testdb"
)

// TestSetAvatarConcurrent: of many concurrent SetAvatar calls on one
// profile, each replaced key is returned exactly once (as the old key to
// delete) and only the last one set stays: none is orphaned.
func TestSetAvatarConcurrent(t *testing.T) {
	db := testdb.Open(t)
	users := postgres.NewUserService(db)
	ctx := context.Background()
	u := &api.User{Email: "race@example.com", IsActive: true, Password: "!"}
	if err := users.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	if _, _, err := users.SetAvatar(ctx, u.ID, "k0"); err != nil {
		t.Fatal(err)
	}
	const n = 40
	olds := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			old, _, err := users.SetAvatar(ctx, u.ID, fmt.Sprint("k", i+1))
			if err != nil {
				t.Error(err)
			}
			olds[i] = old
		})
	}
	wg.Wait()
	p, err := users.FindProfileByUserID(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	returned := map[string]int{}
	for _, o := range olds {
		returned[o]++
	}
	for i := range n + 1 {
		k := fmt.Sprint("k", i)
		want := 1
		if k == p.AvatarKey {
			want = 0 // the one kept
		}
		if returned[k] != want {
			t.Errorf("key %s returned as replaced %d times, want %d (kept: %s)", k, returned[k], want, p.AvatarKey)
		}
	}
}
