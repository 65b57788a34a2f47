package postgres

import (
	"context"
	"fmt"
	"strings"

	"github.com/isis-project/isis/api"
	"github.com/jmoiron/sqlx"
)

// fillEmailKeys is the Go half of 0006_user_identity: it computes every
// user's email_key, refuses (naming them) users whose addresses are the same
// in the normal form, and then makes the key required and unique.
func fillEmailKeys(ctx context.Context, tx *sqlx.Tx) error {
	var rows []struct {
		ID    int64  `db:"id"`
		Email string `db:"email"`
	}
	if err := tx.SelectContext(ctx, &rows, `SELECT id, email FROM users ORDER BY id`); err != nil {
		return err
	}
	owner := map[string]int{}
	var clashes []string
	for i, r := range rows {
		k := api.NormalizeEmail(r.Email)
		if j, ok := owner[k]; ok {
			clashes = append(clashes, fmt.Sprintf("user %d (%q) and user %d (%q)", rows[j].ID, rows[j].Email, r.ID, r.Email))
			continue
		}
		owner[k] = i
		if _, err := tx.ExecContext(ctx, `UPDATE users SET email_key = $2 WHERE id = $1`, r.ID, k); err != nil {
			return err
		}
	}
	if len(clashes) > 0 {
		return fmt.Errorf("%d pair(s) of users have the same email once normalized (case, Unicode compatibility forms, "+
			"invisible characters): %s; change one address of each pair (UPDATE users SET email = … WHERE id = …), then migrate again",
			len(clashes), strings.Join(clashes, "; "))
	}
	_, err := tx.ExecContext(ctx, `ALTER TABLE users ALTER COLUMN email_key SET NOT NULL;
		CREATE UNIQUE INDEX users_email_key ON users (email_key);
		DROP INDEX IF EXISTS users_email_lower_key`)
	return err
}
