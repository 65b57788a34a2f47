package postgres

import (
	"context"

	"github.com/isis-project/isis/api"
)

// RefreshTokenService implements api.RefreshTokenService (SimpleJWT's token_blacklist).
type RefreshTokenService struct{ db *DB }

// NewRefreshTokenService returns the refresh-token service over db.
func NewRefreshTokenService(db *DB) *RefreshTokenService { return &RefreshTokenService{db: db} }

var _ api.RefreshTokenService = (*RefreshTokenService)(nil)

// AddOutstanding implements api.RefreshTokenService.
func (s *RefreshTokenService) AddOutstanding(ctx context.Context, t api.OutstandingToken) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO token_outstanding (jti, user_id, created_at, expires_at)
		VALUES ($1, (SELECT id FROM users WHERE id = $2), $3, $4) ON CONFLICT (jti) DO NOTHING`,
		t.JTI, t.UserID, createdAt(t), t.ExpiresAt.UTC())
	return FormatError(err)
}

// Blacklist implements api.RefreshTokenService.
func (s *RefreshTokenService) Blacklist(ctx context.Context, t api.OutstandingToken) error {
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return FormatError(err)
	}
	defer tx.Rollback()
	var id int64
	err = tx.GetContext(ctx, &id, `INSERT INTO token_outstanding (jti, user_id, created_at, expires_at)
		VALUES ($1, (SELECT id FROM users WHERE id = $2), $3, $4)
		ON CONFLICT (jti) DO UPDATE SET jti = EXCLUDED.jti RETURNING id`,
		t.JTI, t.UserID, createdAt(t), t.ExpiresAt.UTC())
	if err != nil {
		return FormatError(err)
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO token_blacklisted (token_id, blacklisted_at) VALUES ($1, $2)
		ON CONFLICT (token_id) DO NOTHING`, id, s.db.Now().UTC())
	if err != nil {
		return FormatError(err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return api.Errorf(api.ETOKENINVALID, "Token is blacklisted")
	}
	return FormatError(tx.Commit())
}

// IsBlacklisted implements api.RefreshTokenService.
func (s *RefreshTokenService) IsBlacklisted(ctx context.Context, jti string) (bool, error) {
	var ok bool
	err := s.db.GetContext(ctx, &ok, `SELECT EXISTS (SELECT 1 FROM token_blacklisted b
		JOIN token_outstanding o ON o.id = b.token_id WHERE o.jti = $1)`, jti)
	return ok, FormatError(err)
}

// FlushExpired implements api.RefreshTokenService.
func (s *RefreshTokenService) FlushExpired(ctx context.Context) (int64, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM token_outstanding WHERE expires_at < $1`, s.db.Now().UTC())
	if err != nil {
		return 0, FormatError(err)
	}
	return res.RowsAffected()
}

// createdAt is the created_at value: NULL for a token without iat, as
// SimpleJWT records one minted elsewhere.
func createdAt(t api.OutstandingToken) any {
	if t.CreatedAt.IsZero() {
		return nil
	}
	return t.CreatedAt.UTC()
}
