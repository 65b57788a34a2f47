package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/isis-project/isis/api"
	"github.com/isis-project/isis/api/postgres"
	"github.com/isis-project/isis/internal/testdb"
)

// TestSessionsEndWithTheChange: a new password, or a user made inactive,
// blacklists the user's unexpired refresh tokens in the same transaction.
// When the blacklisting fails (a trigger makes it fail here), the password
// or the deactivation is not stored either: a changed password never leaves
// an old session alive.
func TestSessionsEndWithTheChange(t *testing.T) {
	db := testdb.Open(t)
	ctx := context.Background()
	users := postgres.NewUserService(db)
	tokens := postgres.NewRefreshTokenService(db)
	inactive := false
	changes := []struct {
		name   string
		change func(id int64) error
		stored string // a query true once the change is stored
	}{
		{"SetPassword", func(id int64) error { return users.SetPassword(ctx, id, "new-hash") },
			`SELECT password = 'new-hash' FROM users WHERE id = $1`},
		{"UpdateUser inactive", func(id int64) error {
			_, err := users.UpdateUser(ctx, id, api.UserUpdate{IsActive: &inactive})
			return err
		}, `SELECT NOT is_active FROM users WHERE id = $1`},
	}
	for i, c := range changes {
		t.Run(c.name, func(t *testing.T) {
			u := &api.User{Email: "sessions" + string(rune('a'+i)) + "@example.com", IsActive: true, Password: "old-hash"}
			if err := users.CreateUser(ctx, u); err != nil {
				t.Fatal(err)
			}
			jti := "sessions-" + c.name
			if err := tokens.AddOutstanding(ctx, api.OutstandingToken{JTI: jti, UserID: u.ID, ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
				t.Fatal(err)
			}
			stored := func() bool {
				var ok bool
				if err := db.QueryRow(c.stored, u.ID).Scan(&ok); err != nil {
					t.Fatal(err)
				}
				return ok
			}

			if _, err := db.Exec(`CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$;
				CREATE TRIGGER refuse BEFORE INSERT ON token_blacklisted FOR EACH ROW EXECUTE FUNCTION refuse()`); err != nil {
				t.Fatal(err)
			}
			err := c.change(u.ID)
			if _, dropErr := db.Exec(`DROP TRIGGER refuse ON token_blacklisted; DROP FUNCTION refuse()`); dropErr != nil {
				t.Fatal(dropErr)
			}
			if err == nil {
				t.Fatal("the blacklisting failed, and the change reported success")
			}
			if stored() {
				t.Fatal("the blacklisting failed, and the change was stored anyway: the old session lives on")
			}

			if err := c.change(u.ID); err != nil {
				t.Fatal(err)
			}
			if !stored() {
				t.Fatal("the change was not stored")
			}
			if ok, err := tokens.IsBlacklisted(ctx, jti); err != nil || !ok {
				t.Fatalf("the user's refresh token is not blacklisted (%v)", err)
			}
		})
	}
}
