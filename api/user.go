package api

import (
	"context"
	"encoding/json"
	"strconv"
	"time"
)

// User is an account. Email is the login name, unique in its normal form
// (emailaddr.Normalize).
type User struct {
	ID          int64      `json:"id" db:"id"`
	Email       string     `json:"email" db:"email"`
	FirstName   string     `json:"first_name" db:"first_name"`
	LastName    string     `json:"last_name" db:"last_name"`
	IsStaff     bool       `json:"is_staff" db:"is_staff"`
	IsActive    bool       `json:"is_active" db:"is_active"`
	DateJoined  time.Time  `json:"date_joined" db:"date_joined"`
	LastLogin   *time.Time `json:"last_login" db:"last_login"`
	IsSuperuser bool       `json:"-" db:"is_superuser"`
	// Password is the stored hash; never serialized.
	Password string `json:"-" db:"password"`
	// GoogleSub is the linked Google account's subject ("" when none); never
	// serialized.
	GoogleSub string `json:"-" db:"google_sub"`
}

// MarshalJSON writes times in UTC.
func (u User) MarshalJSON() ([]byte, error) { return u.AppendJSON(nil), nil }

// AppendJSON appends the user as MarshalJSON writes it, encoded by hand: an
// authenticated request writes one, and reflection cost a fifth of it.
func (u *User) AppendJSON(b []byte) []byte {
	b = append(b, `{"id":`...)
	b = strconv.AppendInt(b, u.ID, 10)
	b = append(b, `,"email":`...)
	b = AppendJSONString(b, u.Email)
	b = append(b, `,"first_name":`...)
	b = AppendJSONString(b, u.FirstName)
	b = append(b, `,"last_name":`...)
	b = AppendJSONString(b, u.LastName)
	b = append(b, `,"is_staff":`...)
	b = strconv.AppendBool(b, u.IsStaff)
	b = append(b, `,"is_active":`...)
	b = strconv.AppendBool(b, u.IsActive)
	b = append(b, `,"date_joined":`...)
	b = appendJSONTime(b, u.DateJoined)
	b = append(b, `,"last_login":`...)
	if u.LastLogin == nil {
		b = append(b, "null"...)
	} else {
		b = appendJSONTime(b, *u.LastLogin)
	}
	return append(b, '}')
}

// appendJSONTime writes t in UTC as time.Time's MarshalJSON does.
func appendJSONTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.UTC().AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

// UserFilter selects users for the staff list.
type UserFilter struct {
	Search   string
	Ordering string
	Offset   int
	Limit    int
}

// UserUpdate holds the fields a PATCH may change; nil leaves a field alone.
type UserUpdate struct {
	Email     *string
	FirstName *string
	LastName  *string
	IsStaff   *bool
	IsActive  *bool
}

// Date is a calendar date, JSON "YYYY-MM-DD".
type Date struct{ time.Time }

// MarshalJSON implements json.Marshaler.
func (d Date) MarshalJSON() ([]byte, error) { return json.Marshal(d.Format(time.DateOnly)) }

// Profile is the per-user profile.
type Profile struct {
	ID           int64     `json:"id"`
	UserID       int64     `json:"user_id"`
	Phone        string    `json:"phone"`
	Bio          string    `json:"bio"`
	BirthDate    *Date     `json:"birth_date"`
	Department   *Place    `json:"department"`
	Municipality *Place    `json:"municipality"`
	AvatarURL    *string   `json:"avatar_url"`
	UpdatedAt    time.Time `json:"updated_at"`
	// AvatarKey is the storage key of the avatar ("" when none).
	AvatarKey string `json:"-"`
}

// ProfileUpdate holds the fields a PATCH may change. For the nullable
// fields, Set says the field was present (a nil value then clears it).
type ProfileUpdate struct {
	Phone            *string
	Bio              *string
	BirthDate        Optional[Date]
	DepartmentCode   Optional[string]
	MunicipalityCode Optional[string]
}

// Optional is a field of a PATCH that may be absent, null or a value.
type Optional[T any] struct {
	Set   bool
	Value *T
}

// UserService manages accounts and their profiles.
type UserService interface {
	// FindUserByID returns ENOTFOUND when there is no such user.
	FindUserByID(ctx context.Context, id int64) (*User, error)
	// FindUserByEmail matches on the normal form (emailaddr.Normalize); ENOTFOUND
	// when missing.
	FindUserByEmail(ctx context.Context, email string) (*User, error)
	// FindUserByGoogleSub returns the user linked to that Google account;
	// ENOTFOUND when none is.
	FindUserByGoogleSub(ctx context.Context, sub string) (*User, error)
	// LinkGoogle links the Google account sub to the user: ECONFLICT when
	// the user is linked to another Google account, EGOOGLEINUSE when sub is
	// linked to another user. Linking the same pair again is a no-op.
	LinkGoogle(ctx context.Context, id int64, sub string) error
	// UnlinkGoogle removes the user's Google link, if any.
	UnlinkGoogle(ctx context.Context, id int64) error
	// FindUsers returns one page of users and the total count.
	FindUsers(ctx context.Context, f UserFilter) ([]*User, int, error)
	// CreateUser stores u with the given password hash (and Google link,
	// when GoogleSub is set); EINVALID when the email is taken, EGOOGLEINUSE
	// when the Google account is linked to another user. A profile is
	// created with it.
	CreateUser(ctx context.Context, u *User) error
	// UpdateUser returns ENOTFOUND or EINVALID. A user it leaves inactive
	// has every unexpired refresh token blacklisted in the same transaction.
	UpdateUser(ctx context.Context, id int64, upd UserUpdate) (*User, error)
	// SetPassword replaces the stored hash and blacklists every unexpired
	// refresh token of the user, in one transaction.
	SetPassword(ctx context.Context, id int64, hash string) error
	// TouchLogin sets last_login to now.
	TouchLogin(ctx context.Context, id int64) error

	// FindProfileByUserID returns the user's profile, creating it if missing.
	FindProfileByUserID(ctx context.Context, userID int64) (*Profile, error)
	// FindProfileByID returns ENOTFOUND when missing.
	FindProfileByID(ctx context.Context, id int64) (*Profile, error)
	// UpdateProfile validates the geography and returns EINVALID on a code
	// that is unknown or a municipality outside the department.
	UpdateProfile(ctx context.Context, userID int64, upd ProfileUpdate) (*Profile, error)
	// SetAvatar stores the new avatar key and returns the previous one.
	SetAvatar(ctx context.Context, userID int64, key string) (old string, p *Profile, err error)
}

// OutstandingToken records an issued refresh token (SimpleJWT's
// token_blacklist app).
type OutstandingToken struct {
	JTI       string
	UserID    int64
	CreatedAt time.Time // zero when the token has no iat

	ExpiresAt time.Time
}

// RefreshTokenService tracks issued refresh tokens and the blacklist.
type RefreshTokenService interface {
	// AddOutstanding records an issued refresh token.
	AddOutstanding(ctx context.Context, t OutstandingToken) error
	// Blacklist blacklists a token (recording it as outstanding first if it
	// was minted elsewhere); ETOKENINVALID when it already is.
	Blacklist(ctx context.Context, t OutstandingToken) error
	// IsBlacklisted reports whether jti is blacklisted.
	IsBlacklisted(ctx context.Context, jti string) (bool, error)
	// FlushExpired deletes outstanding (and blacklisted) tokens past expiry.
	FlushExpired(ctx context.Context) (int64, error)
}
