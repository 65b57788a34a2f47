package postgres

import (
	"context"
	"fmt"
	"strings"

	"github.com/isis-project/isis/api/emailaddr"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// fillEmailKeys computes email_key for the users that have none: all of
// them in 0006_user_identity, then (run by every Migrate) those a server of
// the previous release wrote during an upgrade. Users whose addresses are the
// same once normalized are refused, naming both, and nothing is written.
func fillEmailKeys(ctx context.Context, tx *sqlx.Tx) error {
	var rows []struct {
		ID    int64  `db:"id"`
		Email string `db:"email"`
	}
	if err := tx.SelectContext(ctx, &rows, `SELECT id, email FROM users WHERE email_key IS NULL ORDER BY id`); err != nil {
		return err
	}
	if len(rows) == 0 {
		return nil
	}
	keys := make([]string, len(rows))
	for i, r := range rows {
		keys[i] = emailaddr.Normalize(r.Email)
	}
	var taken []struct {
		ID    int64  `db:"id"`
		Email string `db:"email"`
		Key   string `db:"email_key"`
	}
	if err := tx.SelectContext(ctx, &taken, `SELECT id, email, email_key FROM users WHERE email_key = ANY($1)`, pq.Array(keys)); err != nil {
		return err
	}
	owner := map[string]string{} // key -> "user N (email)"
	for _, u := range taken {
		owner[u.Key] = fmt.Sprintf("user %d (%q)", u.ID, u.Email)
	}
	var clashes []string
	for i, r := range rows {
		me := fmt.Sprintf("user %d (%q)", r.ID, r.Email)
		if o, ok := owner[keys[i]]; ok {
			clashes = append(clashes, o+" and "+me)
			continue
		}
		owner[keys[i]] = me
	}
	if len(clashes) > 0 {
		return fmt.Errorf("%d pair(s) of users have the same email once normalized (case, Unicode compatibility forms, "+
			"invisible characters): %s; change one address of each pair (UPDATE users SET email = … WHERE id = …), then migrate again",
			len(clashes), strings.Join(clashes, "; "))
	}
	for i, r := range rows {
		if _, err := tx.ExecContext(ctx, `UPDATE users SET email_key = $2 WHERE id = $1 AND email_key IS NULL`, r.ID, keys[i]); err != nil {
			return err
		}
	}
	return nil
}

// emailKeyVersion is the migration that adds email_key.
const emailKeyVersion = "0006_user_identity"

// refillEmailKeys runs fillEmailKeys in a transaction of its own.
func refillEmailKeys(ctx context.Context, conn *sqlx.Conn) error {
	tx, err := conn.BeginTxx(ctx, nil)
	if err != nil {
		return FormatError(err)
	}
	defer tx.Rollback()
	if err := fillEmailKeys(ctx, tx); err != nil {
		return fmt.Errorf("migrate: email keys: %w", err)
	}
	return tx.Commit()
}
