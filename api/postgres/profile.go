package postgres

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/isis-project/isis/api"
	"github.com/jmoiron/sqlx"
)

type profileRow struct {
	ID               int64          `db:"id"`
	UserID           int64          `db:"user_id"`
	Phone            string         `db:"phone"`
	Bio              string         `db:"bio"`
	BirthDate        sql.NullTime   `db:"birth_date"`
	DepartmentCode   sql.NullString `db:"department_code"`
	DepartmentName   sql.NullString `db:"department_name"`
	MunicipalityCode sql.NullString `db:"municipality_code"`
	MunicipalityName sql.NullString `db:"municipality_name"`
	Avatar           string         `db:"avatar"`
	UpdatedAt        time.Time      `db:"updated_at"`
}

func (r *profileRow) toProfile() *api.Profile {
	p := &api.Profile{ID: r.ID, UserID: r.UserID, Phone: r.Phone, Bio: r.Bio, AvatarKey: r.Avatar, UpdatedAt: r.UpdatedAt.UTC()}
	if r.BirthDate.Valid {
		p.BirthDate = &api.Date{Time: r.BirthDate.Time}
	}
	if r.DepartmentCode.Valid {
		p.Department = &api.Place{Code: r.DepartmentCode.String, Name: r.DepartmentName.String}
	}
	if r.MunicipalityCode.Valid {
		p.Municipality = &api.Place{Code: r.MunicipalityCode.String, Name: r.MunicipalityName.String}
	}
	return p
}

const profileSelect = `SELECT p.id, p.user_id, p.phone, p.bio, p.birth_date, p.department_code, d.name AS department_name,
	p.municipality_code, m.name AS municipality_name, p.avatar, p.updated_at
	FROM profiles p
	LEFT JOIN departments d ON d.code = p.department_code
	LEFT JOIN municipalities m ON m.code = p.municipality_code `

func findProfile(ctx context.Context, q sqlx.QueryerContext, where string, arg any) (*api.Profile, error) {
	var r profileRow
	if err := sqlx.GetContext(ctx, q, &r, profileSelect+where, arg); err != nil {
		if err := FormatError(err); api.ErrorCode(err) == api.ENOTFOUND {
			return nil, api.Errorf(api.ENOTFOUND, "No profile matches the given query.")
		} else {
			return nil, err
		}
	}
	return r.toProfile(), nil
}

// FindProfileByUserID implements api.UserService.
func (s *UserService) FindProfileByUserID(ctx context.Context, userID int64) (*api.Profile, error) {
	p, err := findProfile(ctx, s.db, `WHERE p.user_id = $1`, userID)
	if api.ErrorCode(err) != api.ENOTFOUND {
		return p, err
	}
	_, err = s.db.ExecContext(ctx, `INSERT INTO profiles (user_id, updated_at) SELECT id, $2 FROM users WHERE id = $1
		ON CONFLICT (user_id) DO NOTHING`, userID, s.db.Now().UTC())
	if err != nil {
		return nil, FormatError(err)
	}
	return findProfile(ctx, s.db, `WHERE p.user_id = $1`, userID)
}

// FindProfileByID implements api.UserService.
func (s *UserService) FindProfileByID(ctx context.Context, id int64) (*api.Profile, error) {
	return findProfile(ctx, s.db, `WHERE p.id = $1`, id)
}

// UpdateProfile implements api.UserService. The result must be consistent:
// a municipality belongs to the profile's department. Setting only a
// municipality sets its department; changing only the department clears a
// municipality outside it.
func (s *UserService) UpdateProfile(ctx context.Context, userID int64, upd api.ProfileUpdate) (*api.Profile, error) {
	if _, err := s.FindProfileByUserID(ctx, userID); err != nil {
		return nil, err
	}
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return nil, FormatError(err)
	}
	defer tx.Rollback()
	var r profileRow
	if err := tx.GetContext(ctx, &r, `SELECT p.id, p.user_id, p.phone, p.bio, p.birth_date, p.department_code,
		p.municipality_code, p.avatar, p.updated_at FROM profiles p WHERE p.user_id = $1 FOR UPDATE`, userID); err != nil {
		return nil, FormatError(err)
	}
	var fe api.FieldErrors
	if upd.Phone != nil {
		r.Phone = *upd.Phone
	}
	if upd.Bio != nil {
		r.Bio = *upd.Bio
	}
	if upd.BirthDate.Set {
		r.BirthDate = sql.NullTime{}
		if upd.BirthDate.Value != nil {
			r.BirthDate = sql.NullTime{Time: upd.BirthDate.Value.Time, Valid: true}
		}
	}
	if upd.DepartmentCode.Set {
		r.DepartmentCode = nullString(upd.DepartmentCode.Value)
		if r.DepartmentCode.Valid {
			var ok bool
			if err := tx.GetContext(ctx, &ok, `SELECT EXISTS (SELECT 1 FROM departments WHERE code = $1)`, r.DepartmentCode.String); err != nil {
				return nil, FormatError(err)
			}
			if !ok {
				fe.Add("department_code", "Unknown department code "+r.DepartmentCode.String+".")
			}
		}
	}
	munDep := ""
	if upd.MunicipalityCode.Set {
		r.MunicipalityCode = nullString(upd.MunicipalityCode.Value)
		if r.MunicipalityCode.Valid {
			err := tx.GetContext(ctx, &munDep, `SELECT department_code FROM municipalities WHERE code = $1`, r.MunicipalityCode.String)
			if err == sql.ErrNoRows {
				fe.Add("municipality_code", "Unknown municipality code "+r.MunicipalityCode.String+".")
			} else if err != nil {
				return nil, FormatError(err)
			}
		}
	}
	if len(fe) == 0 && r.MunicipalityCode.Valid {
		if munDep == "" { // municipality kept from before
			munDep = r.MunicipalityCode.String[:2]
		}
		switch {
		case upd.MunicipalityCode.Set && !upd.DepartmentCode.Set && !r.DepartmentCode.Valid:
			r.DepartmentCode = sql.NullString{String: munDep, Valid: true}
		case upd.MunicipalityCode.Set && (!r.DepartmentCode.Valid || r.DepartmentCode.String != munDep):
			if upd.DepartmentCode.Set || r.DepartmentCode.Valid {
				fe.Add("municipality_code", fmt.Sprintf("Municipality %s does not belong to department %s.",
					r.MunicipalityCode.String, r.DepartmentCode.String))
			}
		case !upd.MunicipalityCode.Set && (!r.DepartmentCode.Valid || r.DepartmentCode.String != munDep):
			r.MunicipalityCode = sql.NullString{}
		}
	}
	if err := fe.Err(); err != nil {
		return nil, err
	}
	_, err = tx.ExecContext(ctx, `UPDATE profiles SET phone = $2, bio = $3, birth_date = $4, department_code = $5,
		municipality_code = $6, updated_at = $7 WHERE user_id = $1`,
		userID, r.Phone, r.Bio, r.BirthDate, r.DepartmentCode, r.MunicipalityCode, s.db.Now().UTC())
	if err != nil {
		return nil, FormatError(err)
	}
	if err := tx.Commit(); err != nil {
		return nil, FormatError(err)
	}
	return findProfile(ctx, s.db, `WHERE p.user_id = $1`, userID)
}

// SetAvatar implements api.UserService. The previous key is read under the
// row's lock, so of concurrent calls each gets the key the one before it
// set: every key replaced is returned once, and none is left behind.
func (s *UserService) SetAvatar(ctx context.Context, userID int64, key string) (string, *api.Profile, error) {
	if _, err := s.FindProfileByUserID(ctx, userID); err != nil {
		return "", nil, err
	}
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return "", nil, FormatError(err)
	}
	defer tx.Rollback()
	var old string
	if err := tx.GetContext(ctx, &old, `SELECT avatar FROM profiles WHERE user_id = $1 FOR UPDATE`, userID); err != nil {
		return "", nil, FormatError(err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE profiles SET avatar = $2, updated_at = $3 WHERE user_id = $1`,
		userID, key, s.db.Now().UTC()); err != nil {
		return "", nil, FormatError(err)
	}
	p, err := findProfile(ctx, tx, `WHERE p.user_id = $1`, userID)
	if err != nil {
		return "", nil, err
	}
	if err := tx.Commit(); err != nil {
		return "", nil, FormatError(err)
	}
	return old, p, nil
}

func nullString(s *string) sql.NullString {
	if s == nil {
		return sql.NullString{}
	}
	return sql.NullString{String: *s, Valid: true}
}
