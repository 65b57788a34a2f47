package auth

import (
	"context"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Google ID-token errors.
var (
	// ErrGoogleToken: the ID token must be refused (safe to show).
	ErrGoogleToken = errors.New("Invalid Google ID token.")
	// ErrJWKSUnavailable: Google's keys could not be fetched.
	ErrJWKSUnavailable = errors.New("Google sign-in is unavailable; try again shortly.")
)

// GoogleIdentity is what a verified ID token says about the user.
type GoogleIdentity struct {
	Subject    string
	Email      string
	GivenName  string
	FamilyName string
}

// GoogleVerifier checks Google ID tokens (RS256) against a JWKS fetched from
// JWKSURL and cached for as long as its Cache-Control max-age says.
type GoogleVerifier struct {
	ClientID string
	JWKSURL  string
	Issuers  []string
	HTTP     *http.Client
	Now      func() time.Time

	mu        sync.Mutex
	keys      map[string]*rsa.PublicKey
	expires   time.Time
	lastFetch time.Time
}

// googleClaims are the claims isis reads.
type googleClaims struct {
	Email         string          `json:"email"`
	EmailVerified json.RawMessage `json:"email_verified"`
	GivenName     string          `json:"given_name"`
	FamilyName    string          `json:"family_name"`
	AZP           *string         `json:"azp"`
	jwt.RegisteredClaims
}

// Verify checks signature, aud, iss, exp, email_verified (true) and, when
// present, azp (the client the token was issued to: GOOGLE_CLIENT_ID, as
// Google's and OpenID Connect's rules say). The claims' content (an email
// that is not one, NUL characters) is the caller's to judge.
func (g *GoogleVerifier) Verify(ctx context.Context, idToken string) (*GoogleIdentity, error) {
	if idToken == "" || len(idToken) > 8192 {
		return nil, ErrGoogleToken
	}
	var keyErr error
	c := &googleClaims{}
	_, err := jwt.ParseWithClaims(idToken, c, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		k, err := g.key(ctx, kid)
		keyErr = err
		return k, err
	},
		jwt.WithValidMethods([]string{"RS256"}),
		jwt.WithAudience(g.ClientID),
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(g.Now),
		jwt.WithLeeway(5*time.Second),
	)
	if errors.Is(keyErr, ErrJWKSUnavailable) {
		return nil, keyErr
	}
	if err != nil {
		return nil, ErrGoogleToken
	}
	issOK := false
	for _, iss := range g.Issuers {
		issOK = issOK || c.Issuer == iss
	}
	verified := string(c.EmailVerified) == "true" || string(c.EmailVerified) == `"true"`
	azpOK := c.AZP == nil || *c.AZP == g.ClientID
	if !issOK || !verified || !azpOK || c.Email == "" || c.Subject == "" {
		return nil, ErrGoogleToken
	}
	return &GoogleIdentity{Subject: c.Subject, Email: c.Email, GivenName: c.GivenName, FamilyName: c.FamilyName}, nil
}

// key returns the public key for kid, fetching the JWKS when the cache is
// stale or (at most every 30 s) when kid is unknown.
func (g *GoogleVerifier) key(ctx context.Context, kid string) (*rsa.PublicKey, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.Now()
	k, ok := g.keys[kid]
	if ok && now.Before(g.expires) {
		return k, nil
	}
	if g.keys != nil && now.Before(g.expires) && now.Sub(g.lastFetch) < 30*time.Second {
		return nil, ErrGoogleToken // unknown kid, fetched just now
	}
	if err := g.fetch(ctx, now); err != nil {
		if k, ok := g.keys[kid]; ok { // serve a stale key rather than fail
			return k, nil
		}
		return nil, err
	}
	if k, ok := g.keys[kid]; ok {
		return k, nil
	}
	return nil, ErrGoogleToken
}

func (g *GoogleVerifier) fetch(ctx context.Context, now time.Time) error {
	g.lastFetch = now
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, g.JWKSURL, nil)
	if err != nil {
		return fmt.Errorf("%w (%v)", ErrJWKSUnavailable, err)
	}
	client := g.HTTP
	if client == nil {
		client = http.DefaultClient
	}
	res, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("%w (%v)", ErrJWKSUnavailable, err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("%w (JWKS status %d)", ErrJWKSUnavailable, res.StatusCode)
	}
	var set struct {
		Keys []struct {
			Kty, Kid, N, E, Alg, Use string
		} `json:"keys"`
	}
	if err := json.NewDecoder(io.LimitReader(res.Body, 1<<20)).Decode(&set); err != nil {
		return fmt.Errorf("%w (JWKS: %v)", ErrJWKSUnavailable, err)
	}
	keys := map[string]*rsa.PublicKey{}
	for _, k := range set.Keys {
		if k.Kty != "RSA" || (k.Use != "" && k.Use != "sig") || (k.Alg != "" && k.Alg != "RS256") {
			continue
		}
		n, err1 := base64.RawURLEncoding.DecodeString(strings.TrimRight(k.N, "="))
		e, err2 := base64.RawURLEncoding.DecodeString(strings.TrimRight(k.E, "="))
		if err1 != nil || err2 != nil || len(e) == 0 || len(e) > 4 {
			continue
		}
		keys[k.Kid] = &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
	}
	if len(keys) == 0 {
		return fmt.Errorf("%w (JWKS has no RSA signing keys)", ErrJWKSUnavailable)
	}
	g.keys = keys
	g.expires = now.Add(maxAge(res.Header.Get("Cache-Control")))
	return nil
}

// maxAge reads Cache-Control's max-age (default 1 h, at most 24 h; 0 when
// no-store or no-cache).
func maxAge(cc string) time.Duration {
	age := time.Hour
	for _, d := range strings.Split(cc, ",") {
		d = strings.TrimSpace(strings.ToLower(d))
		switch {
		case d == "no-store" || d == "no-cache":
			return 0
		case strings.HasPrefix(d, "max-age="):
			if n, err := strconv.Atoi(strings.TrimPrefix(d, "max-age=")); err == nil && n >= 0 {
				age = time.Duration(n) * time.Second
			}
		}
	}
	return min(age, 24*time.Hour)
}
