package auth

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Token types, SimpleJWT's token_type claim.
const (
	Access  = "access"
	Refresh = "refresh"
)

// UserID is the user_id claim: SimpleJWT writes the primary key as a number
// (or, in some versions, as a string); both are read.
type UserID int64

// UnmarshalJSON accepts 42 and "42".
func (u *UserID) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return errors.New("user_id is not a positive integer")
	}
	*u = UserID(n)
	return nil
}

// Claims are SimpleJWT's: token_type, exp, iat, jti, user_id. iat is
// optional (SimpleJWT does not need it): IssuedAt may be nil.
type Claims struct {
	TokenType string `json:"token_type"`
	UserID    UserID `json:"user_id"`
	jwt.RegisteredClaims
}

// JWT mints and checks HS256 tokens with the SECRET_KEY, as SimpleJWT's
// defaults do.
type JWT struct {
	Key        []byte
	AccessTTL  time.Duration
	RefreshTTL time.Duration
	Now        func() time.Time

	// verified remembers access tokens whose signature and claims checked
	// out: the same bytes under the same key verify the same way, so a
	// token seen again needs only its expiry checked (a fifth of an
	// authenticated request's CPU went to decoding and verifying it again).
	mu       sync.RWMutex
	verified map[string]*Claims
}

const verifiedMax = 10000

// maxExpiry is the latest exp accepted (Python's datetime ends there too).
var maxExpiry = time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)

// ErrTokenInvalid is returned for any token that must be refused; its text
// is safe to show.
var ErrTokenInvalid = errors.New("Token is invalid or expired")

// NewJTI returns a random token id (uuid4().hex in SimpleJWT).
func NewJTI() string {
	b := make([]byte, 16)
	rand.Read(b)
	b[6] = (b[6] & 0x0f) | 0x40
	b[8] = (b[8] & 0x3f) | 0x80
	return hex.EncodeToString(b)
}

// Mint signs a token of the given type for userID.
func (t *JWT) Mint(userID int64, tokenType string) (string, *Claims, error) {
	now := t.Now().UTC().Truncate(time.Second)
	ttl := t.AccessTTL
	if tokenType == Refresh {
		ttl = t.RefreshTTL
	}
	c := &Claims{
		TokenType: tokenType,
		UserID:    UserID(userID),
		RegisteredClaims: jwt.RegisteredClaims{
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
			IssuedAt:  jwt.NewNumericDate(now),
			ID:        NewJTI(),
		},
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(t.Key)
	return s, c, err
}

// Parse verifies signature (HS256 only: "none", other HMACs and RS/ES are
// refused), expiry and claims, and that the type is wantType ("" accepts
// either).
func (t *JWT) Parse(token, wantType string) (*Claims, error) {
	if token == "" || len(token) > 4096 {
		return nil, ErrTokenInvalid
	}
	if c := t.seen(token); c != nil && (wantType == "" || c.TokenType == wantType) {
		return c, nil
	}
	c := &Claims{}
	_, err := jwt.ParseWithClaims(token, c, func(*jwt.Token) (any, error) { return t.Key, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithTimeFunc(t.Now),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(), // an iat in the future is refused, as PyJWT does
		jwt.WithJSONNumber(),
	)
	if err != nil {
		return nil, ErrTokenInvalid
	}
	if c.ID == "" || c.UserID <= 0 || (c.TokenType != Access && c.TokenType != Refresh) {
		return nil, ErrTokenInvalid
	}
	// What the blacklist tables cannot hold is not a token isis minted:
	// a jti past varchar(255) or with a NUL, an expiry past year 9999.
	if len(c.ID) > 255 || strings.IndexByte(c.ID, 0) >= 0 || c.ExpiresAt.After(maxExpiry) {
		return nil, ErrTokenInvalid
	}
	if wantType != "" && c.TokenType != wantType {
		return nil, ErrTokenInvalid
	}
	if c.TokenType == Access {
		t.remember(token, c)
	}
	return c, nil
}

// seen returns a copy of the claims of a verified access token that has not
// expired since (a token past its expiry goes through the full check, and
// is refused there).
func (t *JWT) seen(token string) *Claims {
	c := t.seenShared(token)
	if c == nil {
		return nil
	}
	cp := *c
	return &cp
}

// seenShared is seen without the copy: the claims stored, never to be
// changed.
func (t *JWT) seenShared(token string) *Claims {
	t.mu.RLock()
	c := t.verified[token]
	t.mu.RUnlock()
	if c == nil || c.ExpiresAt == nil || !t.Now().Before(c.ExpiresAt.Time) {
		return nil
	}
	return c
}

// AccessUserID is Parse(token, Access)'s user id, without copying the claims
// of a token verified before (authentication reads nothing else of them, on
// every authenticated request).
func (t *JWT) AccessUserID(token string) (int64, error) {
	if token != "" && len(token) <= 4096 {
		if c := t.seenShared(token); c != nil && c.TokenType == Access {
			return int64(c.UserID), nil
		}
	}
	c, err := t.Parse(token, Access)
	if err != nil {
		return 0, err
	}
	return int64(c.UserID), nil
}

func (t *JWT) remember(token string, c *Claims) {
	cp := *c
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.verified == nil || len(t.verified) >= verifiedMax {
		t.verified = map[string]*Claims{}
	}
	t.verified[token] = &cp
}
