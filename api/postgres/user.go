package postgres

import (
	"context"
	"database/sql"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/isis-project/isis/api"
	"github.com/isis-project/isis/api/emailaddr"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
	"github.com/lib/pq/pqerror"
)

// UserService implements api.UserService.
type UserService struct{ db *DB }

// NewUserService returns the account service over db.
func NewUserService(db *DB) *UserService { return &UserService{db: db} }

var _ api.UserService = (*UserService)(nil)

const userColumns = `id, email, password, first_name, last_name, is_staff, is_superuser, is_active, date_joined, last_login,
	COALESCE(google_sub, '') AS google_sub`

func userSearchText(u *api.User) string {
	return api.Fold(u.Email + " " + u.FirstName + " " + u.LastName)
}

// StoredEmail is the address as stored and shown: trimmed, with its domain
// lower-cased (Django's BaseUserManager.normalize_email). Comparisons use
// emailaddr.Normalize (the email_key column) instead.
func StoredEmail(email string) string {
	email = strings.TrimSpace(email)
	i := strings.LastIndexByte(email, '@')
	if i < 0 {
		return email
	}
	return email[:i] + "@" + strings.ToLower(email[i+1:])
}

func emailTaken() error {
	return fieldInvalid("email", "user with this email already exists.")
}

func findUser(ctx context.Context, q sqlx.QueryerContext, where string, arg any) (*api.User, error) {
	var u api.User
	if err := sqlx.GetContext(ctx, q, &u, `SELECT `+userColumns+` FROM users WHERE `+where, arg); err != nil {
		if err := FormatError(err); api.ErrorCode(err) == api.ENOTFOUND {
			return nil, api.Errorf(api.ENOTFOUND, "No user matches the given query.")
		} else {
			return nil, err
		}
	}
	return &u, nil
}

// FindUserByID implements api.UserService.
// Rows are cached while Listen runs.
func (s *UserService) FindUserByID(ctx context.Context, id int64) (*api.User, error) {
	if u, ok := s.db.users.get(id); ok {
		return u, nil
	}
	gen := s.db.users.gen.Load()
	u, err := findUser(ctx, s.db, `id = $1`, id)
	if err != nil {
		return nil, err
	}
	s.db.users.put(gen, u)
	return u, nil
}

// FindUserByEmail implements api.UserService.
func (s *UserService) FindUserByEmail(ctx context.Context, email string) (*api.User, error) {
	if len(email) > 1024 { // no stored address is that long: spare normalizing it
		return nil, api.Errorf(api.ENOTFOUND, "No user matches the given query.")
	}
	var u api.User
	// A user without a key was written by a server of the previous release
	// during an upgrade (see 0006_user_identity): found as it would have.
	err := s.db.GetContext(ctx, &u, `SELECT `+userColumns+` FROM users
		WHERE email_key = $1 OR (email_key IS NULL AND lower(email) = lower($2)) LIMIT 1`,
		emailaddr.Normalize(email), strings.TrimSpace(email))
	if err := FormatError(err); err != nil {
		if api.ErrorCode(err) == api.ENOTFOUND {
			return nil, api.Errorf(api.ENOTFOUND, "No user matches the given query.")
		}
		return nil, err
	}
	return &u, nil
}

// FindUserByGoogleSub implements api.UserService.
func (s *UserService) FindUserByGoogleSub(ctx context.Context, sub string) (*api.User, error) {
	if sub == "" {
		return nil, api.Errorf(api.ENOTFOUND, "No user matches the given query.")
	}
	return findUser(ctx, s.db, `google_sub = $1`, sub)
}

func googleInUse() error {
	return api.Errorf(api.EGOOGLEINUSE, "This Google account is linked to another user.")
}

// LinkGoogle implements api.UserService.
func (s *UserService) LinkGoogle(ctx context.Context, id int64, sub string) error {
	defer s.db.users.drop(id)
	res, err := s.db.ExecContext(ctx, `UPDATE users SET google_sub = $2 WHERE id = $1 AND (google_sub IS NULL OR google_sub = $2)`, id, sub)
	if api.ErrorCode(FormatError(err)) == api.ECONFLICT {
		return googleInUse()
	}
	if err := rowsOrNotFound(res, err, "user"); api.ErrorCode(err) == api.ENOTFOUND {
		if _, ferr := findUser(ctx, s.db, `id = $1`, id); ferr != nil {
			return ferr
		}
		return api.Errorf(api.ECONFLICT, "This account is linked to another Google account; unlink it first.")
	} else if err != nil {
		return err
	}
	return nil
}

// UnlinkGoogle implements api.UserService.
func (s *UserService) UnlinkGoogle(ctx context.Context, id int64) error {
	defer s.db.users.drop(id)
	_, err := s.db.ExecContext(ctx, `UPDATE users SET google_sub = NULL WHERE id = $1`, id)
	return FormatError(err)
}

// nullIfEmpty is NULL for "".
func nullIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// uniqueIndex names the unique index err violates ("" when none).
func uniqueIndex(err error) string {
	var pqErr *pq.Error
	if errors.As(err, &pqErr) && pqErr.Code == pqerror.UniqueViolation {
		return pqErr.Constraint
	}
	return ""
}

var userOrdering = map[string]string{
	"id": "id", "email": "lower(email)", "date_joined": "date_joined", "last_login": "last_login",
	"first_name": "first_name", "last_name": "last_name",
}

// FindUsers implements api.UserService.
func (s *UserService) FindUsers(ctx context.Context, f api.UserFilter) ([]*api.User, int, error) {
	var conds []string
	var args []any
	for _, t := range searchTerms(f.Search) {
		args = append(args, t)
		conds = append(conds, "search_text LIKE $"+strconv.Itoa(len(args)))
	}
	where := ""
	if len(conds) > 0 {
		where = "WHERE " + strings.Join(conds, " AND ")
	}
	args = append(args, f.Limit, f.Offset)
	q := `SELECT ` + userColumns + `, count(*) OVER () AS total FROM users ` + where +
		` ORDER BY ` + orderBy(f.Ordering, userOrdering, "id") +
		` LIMIT $` + strconv.Itoa(len(args)-1) + ` OFFSET $` + strconv.Itoa(len(args))
	var rows []struct {
		api.User
		Total int `db:"total"`
	}
	if err := s.db.SelectContext(ctx, &rows, q, args...); err != nil {
		return nil, 0, FormatError(err)
	}
	out := make([]*api.User, len(rows))
	total := 0
	for i := range rows {
		out[i], total = &rows[i].User, rows[i].Total
	}
	if len(rows) == 0 && f.Offset > 0 {
		var n int
		err := s.db.GetContext(ctx, &n, `SELECT count(*) FROM users `+where, args[:len(args)-2]...)
		return out, n, FormatError(err)
	}
	return out, total, nil
}

// CreateUser implements api.UserService.
func (s *UserService) CreateUser(ctx context.Context, u *api.User) error {
	u.Email = StoredEmail(u.Email)
	now := s.db.Now().UTC().Truncate(time.Microsecond)
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return FormatError(err)
	}
	defer tx.Rollback()
	err = tx.QueryRowxContext(ctx, `INSERT INTO users
		(email, password, first_name, last_name, is_staff, is_superuser, is_active, date_joined, search_text, email_key, google_sub)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id`,
		u.Email, u.Password, u.FirstName, u.LastName, u.IsStaff, u.IsSuperuser, u.IsActive, now, userSearchText(u),
		emailaddr.Normalize(u.Email), nullIfEmpty(u.GoogleSub)).Scan(&u.ID)
	if err != nil {
		if uniqueIndex(err) == "users_google_sub_key" {
			return googleInUse()
		}
		if api.ErrorCode(FormatError(err)) == api.ECONFLICT {
			return emailTaken()
		}
		return FormatError(err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO profiles (user_id, updated_at) VALUES ($1, $2)`, u.ID, now); err != nil {
		return FormatError(err)
	}
	u.DateJoined = now
	return FormatError(tx.Commit())
}

// UpdateUser implements api.UserService.
func (s *UserService) UpdateUser(ctx context.Context, id int64, upd api.UserUpdate) (*api.User, error) {
	defer s.db.users.drop(id) // after the commit: the next read sees this write
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return nil, FormatError(err)
	}
	defer tx.Rollback()
	u, err := findUser(ctx, tx, `id = $1 FOR UPDATE`, id)
	if err != nil {
		return nil, err
	}
	if upd.Email != nil {
		u.Email = StoredEmail(*upd.Email)
	}
	if upd.FirstName != nil {
		u.FirstName = *upd.FirstName
	}
	if upd.LastName != nil {
		u.LastName = *upd.LastName
	}
	if upd.IsStaff != nil {
		u.IsStaff = *upd.IsStaff
	}
	if upd.IsActive != nil {
		u.IsActive = *upd.IsActive
	}
	_, err = tx.ExecContext(ctx, `UPDATE users SET email = $2, first_name = $3, last_name = $4,
		is_staff = $5, is_active = $6, search_text = $7, email_key = $8 WHERE id = $1`,
		id, u.Email, u.FirstName, u.LastName, u.IsStaff, u.IsActive, userSearchText(u), emailaddr.Normalize(u.Email))
	if err != nil {
		if api.ErrorCode(FormatError(err)) == api.ECONFLICT {
			return nil, emailTaken()
		}
		return nil, FormatError(err)
	}
	if !u.IsActive {
		if err := s.endSessions(ctx, tx, id); err != nil {
			return nil, err
		}
	}
	return u, FormatError(tx.Commit())
}

// SetPassword implements api.UserService.
func (s *UserService) SetPassword(ctx context.Context, id int64, hash string) error {
	defer s.db.users.drop(id)
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return FormatError(err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `UPDATE users SET password = $2 WHERE id = $1`, id, hash)
	if err := rowsOrNotFound(res, err, "user"); err != nil {
		return err
	}
	if err := s.endSessions(ctx, tx, id); err != nil {
		return err
	}
	return FormatError(tx.Commit())
}

// endSessions blacklists every unexpired refresh token of the user, in the
// transaction that changed their password or deactivated them: the change
// and the end of the sessions it calls for land together or not at all.
func (s *UserService) endSessions(ctx context.Context, tx *sqlx.Tx, userID int64) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO token_blacklisted (token_id, blacklisted_at)
		SELECT id, $2 FROM token_outstanding WHERE user_id = $1 AND expires_at > $2
		ON CONFLICT (token_id) DO NOTHING`, userID, s.db.Now().UTC())
	return FormatError(err)
}

// TouchLogin implements api.UserService.
func (s *UserService) TouchLogin(ctx context.Context, id int64) error {
	defer s.db.users.drop(id)
	res, err := s.db.ExecContext(ctx, `UPDATE users SET last_login = $2 WHERE id = $1`, id, s.db.Now().UTC())
	return rowsOrNotFound(res, err, "user")
}

func rowsOrNotFound(res sql.Result, err error, what string) error {
	if err != nil {
		return FormatError(err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return api.Errorf(api.ENOTFOUND, "No %s matches the given query.", what)
	}
	return nil
}
