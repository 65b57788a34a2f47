package apihttp

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// jwksServer serves the public half of keys as a JWKS, counting fetches.
type jwksServer struct {
	URL     string
	fetches atomic.Int32
	keys    atomic.Pointer[map[string]*rsa.PrivateKey]
}

func newJWKSServer(t testing.TB, maxAge string, keys map[string]*rsa.PrivateKey) *jwksServer {
	js := &jwksServer{}
	js.keys.Store(&keys)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		js.fetches.Add(1)
		var set struct {
			Keys []map[string]string `json:"keys"`
		}
		for kid, k := range *js.keys.Load() {
			set.Keys = append(set.Keys, map[string]string{
				"kty": "RSA", "alg": "RS256", "use": "sig", "kid": kid,
				"n": base64.RawURLEncoding.EncodeToString(k.N.Bytes()),
				"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(k.E)).Bytes()),
			})
		}
		w.Header().Set("Cache-Control", "public, max-age="+maxAge)
		json.NewEncoder(w).Encode(set)
	}))
	t.Cleanup(srv.Close)
	js.URL = srv.URL
	return js
}

const googleClient = "1234-test.apps.googleusercontent.com"

func googleToken(t *testing.T, key *rsa.PrivateKey, kid string, over map[string]any) string {
	now := time.Now()
	c := jwt.MapClaims{
		"iss": "https://accounts.google.com", "aud": googleClient, "sub": "10769150350006150715113082367",
		"email": "maria@gmail.com", "email_verified": true, "given_name": "María", "family_name": "López",
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
	}
	for k, v := range over {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, c)
	tok.Header["kid"] = kid
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestGoogleSignIn(t *testing.T) {
	key := testRSAKey(t)
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	jwks := newJWKSServer(t, "3600", map[string]*rsa.PrivateKey{"k1": key})
	ts := newTestServer(t, map[string]string{"GOOGLE_CLIENT_ID": googleClient, "GOOGLE_JWKS_URL": jwks.URL})
	post := func(tok string) *httptestRecorder {
		return ts.do(t, req{Method: "POST", URL: "/api/auth/google/", Body: jsonBody(map[string]string{"id_token": tok})})
	}
	w := post(googleToken(t, key, "k1", nil))
	if w.Code != 200 {
		t.Fatalf("google = %d %s", w.Code, w.Body.String())
	}
	pair := decode(t, w)
	me := decode(t, ts.do(t, req{URL: "/api/users/me/", Header: bearer(pair["access"].(string))}))
	if me["email"] != "maria@gmail.com" || me["first_name"] != "María" || me["last_name"] != "López" {
		t.Errorf("created user = %v", me)
	}
	// Second sign-in: same user, no new account; the key set is cached.
	if w := post(googleToken(t, key, "k1", nil)); w.Code != 200 {
		t.Errorf("second sign-in = %d", w.Code)
	}
	var n int
	ts.DB.Get(&n, `SELECT count(*) FROM users`)
	if n != 1 || jwks.fetches.Load() != 1 {
		t.Errorf("users = %d, JWKS fetches = %d; want 1 and 1", n, jwks.fetches.Load())
	}
	// The created account cannot log in with a password.
	wantError(t, ts.do(t, req{Method: "POST", URL: "/api/token/", Body: `{"email":"maria@gmail.com","password":"!"}`}), 401, "authentication_failed")

	for name, tok := range map[string]string{
		"wrong aud":          googleToken(t, key, "k1", map[string]any{"aud": "someone-else"}),
		"wrong iss":          googleToken(t, key, "k1", map[string]any{"iss": "https://evil.example"}),
		"expired":            googleToken(t, key, "k1", map[string]any{"exp": time.Now().Add(-time.Hour).Unix()}),
		"no exp":             googleToken(t, key, "k1", map[string]any{"exp": nil}),
		"email not verified": googleToken(t, key, "k1", map[string]any{"email_verified": false}),
		"no email":           googleToken(t, key, "k1", map[string]any{"email": nil}),
		"unknown kid":        googleToken(t, other, "k9", nil),
		"wrong key":          googleToken(t, other, "k1", nil),
		"HS256 with secret":  forge(t, jwt.SigningMethodHS256, []byte(testSecret), jwt.MapClaims{"iss": "https://accounts.google.com", "aud": googleClient, "email": "x@gmail.com", "email_verified": true, "exp": time.Now().Add(time.Hour).Unix(), "sub": "1"}),
		"garbage":            "abc",
	} {
		w := post(tok)
		if w.Code != 401 {
			t.Errorf("%s: %d %s", name, w.Code, w.Body.String())
			continue
		}
		wantError(t, w, 401, "authentication_failed")
	}
	wantError(t, ts.do(t, req{Method: "POST", URL: "/api/auth/google/", Body: `{}`}), 400, "invalid")

	// Key rotation: a new kid is fetched when first seen.
	jwks.keys.Store(&map[string]*rsa.PrivateKey{"k1": key, "k2": other})
	before := jwks.fetches.Load()
	time.Sleep(10 * time.Millisecond)
	ts.Now = func() time.Time { return time.Now().Add(31 * time.Second) }
	if w := post(googleToken(t, other, "k2", map[string]any{"email": "otro@gmail.com", "exp": time.Now().Add(2 * time.Hour).Unix()})); w.Code != 200 {
		t.Errorf("rotated key = %d %s", w.Code, w.Body.String())
	}
	if jwks.fetches.Load() != before+1 {
		t.Errorf("fetches after rotation = %d, want %d", jwks.fetches.Load(), before+1)
	}
}

func TestGoogleCacheControl(t *testing.T) {
	key := testRSAKey(t)
	jwks := newJWKSServer(t, "60", map[string]*rsa.PrivateKey{"k1": key})
	ts := newTestServer(t, map[string]string{"GOOGLE_CLIENT_ID": googleClient, "GOOGLE_JWKS_URL": jwks.URL})
	base := time.Now()
	post := func() int {
		tok := googleToken(t, key, "k1", map[string]any{"exp": base.Add(3 * time.Hour).Unix()})
		return ts.do(t, req{Method: "POST", URL: "/api/auth/google/", Body: jsonBody(map[string]string{"id_token": tok})}).Code
	}
	post()
	ts.Now = func() time.Time { return base.Add(30 * time.Second) }
	post()
	if jwks.fetches.Load() != 1 {
		t.Errorf("fetched %d times within max-age", jwks.fetches.Load())
	}
	ts.Now = func() time.Time { return base.Add(61 * time.Second) }
	if code := post(); code != 200 || jwks.fetches.Load() != 2 {
		t.Errorf("after max-age: %d, fetches %d", code, jwks.fetches.Load())
	}
}

func TestGoogleDisabledAndDown(t *testing.T) {
	ts := newTestServer(t, nil)
	wantError(t, ts.do(t, req{Method: "POST", URL: "/api/auth/google/", Body: `{"id_token":"x"}`}), 404, "not_found")
	down := newTestServer(t, map[string]string{"GOOGLE_CLIENT_ID": googleClient, "GOOGLE_JWKS_URL": "http://127.0.0.1:1/certs"})
	tok := googleToken(t, testRSAKey(t), "k1", nil)
	wantError(t, down.do(t, req{Method: "POST", URL: "/api/auth/google/", Body: jsonBody(map[string]string{"id_token": tok})}), 503, "service_unavailable")
}
