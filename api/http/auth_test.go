package apihttp

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/isis-project/isis/api"
	"github.com/isis-project/isis/api/auth"
	"github.com/isis-project/isis/internal/wait"
)

const goodPassword = "correct-horse-battery-9"

// mustUser creates an active user with a password.
func mustUser(t testing.TB, ts *testServer, email string, staff bool) *api.User {
	t.Helper()
	h, err := auth.HashPassword(goodPassword)
	if err != nil {
		t.Fatal(err)
	}
	u := &api.User{Email: email, Password: h, IsActive: true, IsStaff: staff, FirstName: "Ana", LastName: "Pérez"}
	if err := ts.Users.CreateUser(context.Background(), u); err != nil {
		t.Fatal(err)
	}
	return u
}

func jsonBody(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// login returns an access and a refresh token.
func login(t testing.TB, ts *testServer, email, password string) (string, string) {
	t.Helper()
	w := ts.do(t, req{Method: "POST", URL: "/api/token/", Body: jsonBody(map[string]string{"email": email, "password": password})})
	if w.Code != 200 {
		t.Fatalf("login %s = %d %s", email, w.Code, w.Body.String())
	}
	m := decode(t, w)
	return m["access"].(string), m["refresh"].(string)
}

func bearer(tok string) map[string]string { return map[string]string{"Authorization": "Bearer " + tok} }

func TestRegister(t *testing.T) {
	ts := newTestServer(t, nil)
	w := ts.do(t, req{Method: "POST", URL: "/api/auth/register/", Body: jsonBody(map[string]string{
		"email": "New.User@Example.COM", "password": goodPassword, "first_name": "Nuevo", "last_name": "Usuario"})})
	if w.Code != 201 {
		t.Fatalf("register = %d %s", w.Code, w.Body.String())
	}
	u := decode(t, w)
	keys := []string{"id", "email", "first_name", "last_name", "is_staff", "is_active", "date_joined", "last_login"}
	if len(u) != len(keys) {
		t.Errorf("user keys = %v", u)
	}
	for _, k := range keys {
		if _, ok := u[k]; !ok {
			t.Errorf("user lacks %s", k)
		}
	}
	if u["email"] != "New.User@example.com" || u["is_staff"] != false || u["is_active"] != true || u["last_login"] != nil {
		t.Errorf("user = %v", u)
	}
	if _, err := time.Parse(time.RFC3339, u["date_joined"].(string)); err != nil || !strings.HasSuffix(u["date_joined"].(string), "Z") {
		t.Errorf("date_joined %v is not RFC 3339 UTC", u["date_joined"])
	}
	login(t, ts, "new.user@EXAMPLE.com", goodPassword)

	for _, tc := range []struct {
		name   string
		body   map[string]any
		fields map[string]string // field -> a message it must hold
	}{
		{"missing all", map[string]any{}, map[string]string{"email": "This field is required.", "password": "This field is required."}},
		{"bad email", map[string]any{"email": "not-an-email", "password": goodPassword}, map[string]string{"email": "Enter a valid email address."}},
		{"taken", map[string]any{"email": "NEW.USER@example.com", "password": goodPassword}, map[string]string{"email": "user with this email already exists."}},
		{"short", map[string]any{"email": "a@example.com", "password": "x7#kQ"}, map[string]string{"password": "This password is too short. It must contain at least 8 characters."}},
		{"common", map[string]any{"email": "a@example.com", "password": "password123"}, map[string]string{"password": "This password is too common."}},
		{"numeric", map[string]any{"email": "a@example.com", "password": "8302917465"}, map[string]string{"password": "This password is entirely numeric."}},
		{"similar", map[string]any{"email": "gabriela@example.com", "password": "gabriela2024"}, map[string]string{"password": "The password is too similar to the email address."}},
		{"wrong type", map[string]any{"email": 42, "password": goodPassword}, map[string]string{"email": ""}},
		{"long name", map[string]any{"email": "b@example.com", "password": goodPassword, "first_name": strings.Repeat("a", 151)}, map[string]string{"first_name": "Ensure this field has no more than 150 characters."}},
	} {
		w := ts.do(t, req{Method: "POST", URL: "/api/auth/register/", Body: jsonBody(tc.body)})
		m := wantError(t, w, 400, "invalid")
		errs, _ := m["errors"].(map[string]any)
		for f, msg := range tc.fields {
			list, _ := errs[f].([]any)
			if len(list) == 0 || (msg != "" && !strings.Contains(fmt.Sprint(list), msg)) {
				t.Errorf("%s: errors[%s] = %v, want %q", tc.name, f, errs[f], msg)
			}
		}
	}
}

func TestTokenObtain(t *testing.T) {
	ts := newTestServer(t, nil)
	mustUser(t, ts, "ana@example.com", false)
	access, refresh := login(t, ts, "ana@example.com", goodPassword)
	for _, tok := range []string{access, refresh} {
		if strings.Count(tok, ".") != 2 {
			t.Fatalf("not a JWT: %s", tok)
		}
	}
	// "username" holding the email also works.
	w := ts.do(t, req{Method: "POST", URL: "/api/token", Body: `{"username":"ana@example.com","password":"` + goodPassword + `"}`})
	if w.Code != 200 {
		t.Errorf("username login = %d", w.Code)
	}
	// last_login is set.
	u := decode(t, ts.do(t, req{URL: "/api/users/me/", Header: bearer(access)}))
	if u["last_login"] == nil || u["email"] != "ana@example.com" {
		t.Errorf("me = %v", u)
	}

	// Wrong password and unknown email: the same answer.
	wrong := wantError(t, ts.do(t, req{Method: "POST", URL: "/api/token/", Body: `{"email":"ana@example.com","password":"nope-nope-nope"}`}), 401, "authentication_failed")
	unknown := wantError(t, ts.do(t, req{Method: "POST", URL: "/api/token/", Body: `{"email":"who@example.com","password":"nope-nope-nope"}`}), 401, "authentication_failed")
	if wrong["detail"] != "No active account found with the given credentials" || wrong["detail"] != unknown["detail"] {
		t.Errorf("details differ: %v / %v", wrong, unknown)
	}
	wantError(t, ts.do(t, req{Method: "POST", URL: "/api/token/", Body: `{}`}), 400, "invalid")

	// Inactive users cannot log in.
	inactive := false
	u2 := mustUser(t, ts, "gone@example.com", false)
	ts.Users.UpdateUser(context.Background(), u2.ID, api.UserUpdate{IsActive: &inactive})
	wantError(t, ts.do(t, req{Method: "POST", URL: "/api/token/", Body: `{"email":"gone@example.com","password":"` + goodPassword + `"}`}), 401, "authentication_failed")
}

func TestBodyRules(t *testing.T) {
	ts := newTestServer(t, map[string]string{"MAX_BODY_BYTES": "1024"})
	wantError(t, ts.do(t, req{Method: "POST", URL: "/api/token/", Body: `{"email":`}), 400, "parse_error")
	wantError(t, ts.do(t, req{Method: "POST", URL: "/api/token/", Body: `[1,2]`}), 400, "invalid") // DRF: "Expected a dictionary"
	wantError(t, ts.do(t, req{Method: "POST", URL: "/api/token/", Body: `{"email":"a"} {"x":1}`}), 400, "parse_error")
	wantError(t, ts.do(t, req{Method: "POST", URL: "/api/token/", Body: `email=a&password=b`,
		Header: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}}), 415, "unsupported_media_type")
	wantError(t, ts.do(t, req{Method: "POST", URL: "/api/token/", Body: `{"email":"a@b.co"}`,
		Header: map[string]string{"Content-Type": "text/plain"}}), 415, "unsupported_media_type")
	if w := ts.do(t, req{Method: "POST", URL: "/api/token/", Body: `{"email":"a@b.co","password":"x"}`,
		Header: map[string]string{"Content-Type": "application/json; charset=utf-8"}}); w.Code != 401 {
		t.Errorf("charset param: %d", w.Code)
	}
	big := `{"email":"` + strings.Repeat("a", 2000) + `"}`
	wantError(t, ts.do(t, req{Method: "POST", URL: "/api/token/", Body: big}), 413, "payload_too_large")
	// Both with and without the trailing slash, no redirect.
	if w := ts.do(t, req{Method: "POST", URL: "/api/token", Body: `{}`}); w.Code != 400 {
		t.Errorf("POST without slash = %d", w.Code)
	}
}

// TestBodyTooLargeOverTheWire: a client sending a body far over the limit
// still reads the 413 (the server drains it, as nginx does).
func TestBodyTooLargeOverTheWire(t *testing.T) {
	ts := newTestServer(t, nil)
	srv := newHTTPServer(t, ts)
	body := `{"email":"` + strings.Repeat("a", 3<<20) + `"}`
	for _, chunked := range []bool{false, true} {
		r, _ := http.NewRequest("POST", srv+"/api/token/", strings.NewReader(body))
		r.Host = "api.example.com"
		r.Header.Set("Content-Type", "application/json")
		if chunked {
			r.ContentLength = -1
			r.Body = readerOnly{strings.NewReader(body)}
		}
		res, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatalf("chunked=%v: %v", chunked, err)
		}
		var m map[string]any
		json.NewDecoder(res.Body).Decode(&m)
		res.Body.Close()
		if res.StatusCode != 413 || m["code"] != "payload_too_large" {
			t.Errorf("chunked=%v: %d %v", chunked, res.StatusCode, m)
		}
	}
}

type readerOnly struct{ r *strings.Reader }

func (r readerOnly) Read(p []byte) (int, error) { return r.r.Read(p) }
func (r readerOnly) Close() error               { return nil }

func TestRefreshVerifyBlacklist(t *testing.T) {
	ts := newTestServer(t, nil)
	mustUser(t, ts, "ana@example.com", false)
	access, refresh := login(t, ts, "ana@example.com", goodPassword)

	w := ts.do(t, req{Method: "POST", URL: "/api/token/refresh/", Body: jsonBody(map[string]string{"refresh": refresh})})
	m := decode(t, w)
	if w.Code != 200 || m["access"] == nil || m["refresh"] != nil || len(m) != 1 {
		t.Fatalf("refresh = %d %v", w.Code, m)
	}
	newAccess := m["access"].(string)
	if w := ts.do(t, req{URL: "/api/users/me/", Header: bearer(newAccess)}); w.Code != 200 {
		t.Errorf("refreshed access token refused: %d", w.Code)
	}
	for _, tok := range []string{access, refresh} {
		w := ts.do(t, req{Method: "POST", URL: "/api/token/verify/", Body: jsonBody(map[string]string{"token": tok})})
		if w.Code != 200 || w.Body.String() != "{}" {
			t.Errorf("verify = %d %s", w.Code, w.Body.String())
		}
	}
	wantError(t, ts.do(t, req{Method: "POST", URL: "/api/token/verify/", Body: `{"token":"abc.def.ghi"}`}), 401, "token_not_valid")
	// An access token is not a refresh token.
	wantError(t, ts.do(t, req{Method: "POST", URL: "/api/token/refresh/", Body: jsonBody(map[string]string{"refresh": access})}), 401, "token_not_valid")
	wantError(t, ts.do(t, req{Method: "POST", URL: "/api/token/refresh/", Body: `{}`}), 400, "invalid")

	// Logout: blacklist, then the refresh token is dead everywhere.
	w = ts.do(t, req{Method: "POST", URL: "/api/token/blacklist/", Body: jsonBody(map[string]string{"refresh": refresh})})
	if w.Code != 200 || w.Body.String() != "{}" {
		t.Fatalf("blacklist = %d %s", w.Code, w.Body.String())
	}
	wantError(t, ts.do(t, req{Method: "POST", URL: "/api/token/refresh/", Body: jsonBody(map[string]string{"refresh": refresh})}), 401, "token_not_valid")
	wantError(t, ts.do(t, req{Method: "POST", URL: "/api/token/verify/", Body: jsonBody(map[string]string{"token": refresh})}), 401, "token_not_valid")
	wantError(t, ts.do(t, req{Method: "POST", URL: "/api/token/blacklist/", Body: jsonBody(map[string]string{"refresh": refresh})}), 401, "token_not_valid")
	// As in SimpleJWT, the access token lives on until it expires.
	if w := ts.do(t, req{URL: "/api/users/me/", Header: bearer(access)}); w.Code != 200 {
		t.Errorf("access after logout = %d", w.Code)
	}
}

func TestRefreshRotation(t *testing.T) {
	ts := newTestServer(t, map[string]string{"ROTATE_REFRESH_TOKENS": "1"})
	mustUser(t, ts, "ana@example.com", false)
	_, refresh := login(t, ts, "ana@example.com", goodPassword)
	w := ts.do(t, req{Method: "POST", URL: "/api/token/refresh/", Body: jsonBody(map[string]string{"refresh": refresh})})
	m := decode(t, w)
	if w.Code != 200 || m["access"] == nil || m["refresh"] == nil || m["refresh"] == refresh {
		t.Fatalf("rotating refresh = %d %v", w.Code, m)
	}
	wantError(t, ts.do(t, req{Method: "POST", URL: "/api/token/refresh/", Body: jsonBody(map[string]string{"refresh": refresh})}), 401, "token_not_valid")
	if w := ts.do(t, req{Method: "POST", URL: "/api/token/refresh/", Body: jsonBody(map[string]string{"refresh": m["refresh"].(string)})}); w.Code != 200 {
		t.Errorf("rotated token refused: %d", w.Code)
	}
}

// forge signs claims with a method and key of the test's choosing.
func forge(t testing.TB, method jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestTokenSecurity(t *testing.T) {
	ts := newTestServer(t, nil)
	u := mustUser(t, ts, "ana@example.com", false)
	access, refresh := login(t, ts, "ana@example.com", goodPassword)
	now := time.Now()
	claims := func(over map[string]any) jwt.MapClaims {
		c := jwt.MapClaims{"token_type": "access", "exp": now.Add(time.Minute).Unix(), "iat": now.Unix(), "jti": "abc123", "user_id": u.ID}
		for k, v := range over {
			c[k] = v
		}
		return c
	}
	// Sanity: a forged token with the right key is accepted, so the rows below fail for their own reason.
	if w := ts.do(t, req{URL: "/api/users/me/", Header: bearer(forge(t, jwt.SigningMethodHS256, []byte(testSecret), claims(nil)))}); w.Code != 200 {
		t.Fatalf("control token refused: %d %s", w.Code, w.Body.String())
	}
	parts := strings.Split(access, ".")
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	tampered := strings.Replace(string(payload), fmt.Sprintf(`"user_id":%d`, u.ID), `"user_id":999`, 1)
	noneTok := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + parts[1] + "."
	rsKey := testRSAKey(t)

	for name, tok := range map[string]string{
		"alg none":          noneTok,
		"alg None header":   base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"None"}`)) + "." + parts[1] + "." + parts[2],
		"other key":         forge(t, jwt.SigningMethodHS256, []byte("another-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz"), claims(nil)),
		"HS512 same key":    forge(t, jwt.SigningMethodHS512, []byte(testSecret), claims(nil)),
		"RS256":             forge(t, jwt.SigningMethodRS256, rsKey, claims(nil)),
		"refresh as access": refresh,
		"expired":           forge(t, jwt.SigningMethodHS256, []byte(testSecret), claims(map[string]any{"exp": now.Add(-time.Second).Unix()})),
		"no exp":            forge(t, jwt.SigningMethodHS256, []byte(testSecret), jwt.MapClaims{"token_type": "access", "jti": "x", "user_id": u.ID}),
		"no jti":            forge(t, jwt.SigningMethodHS256, []byte(testSecret), claims(map[string]any{"jti": ""})),
		"bad type":          forge(t, jwt.SigningMethodHS256, []byte(testSecret), claims(map[string]any{"token_type": "sliding"})),
		"tampered payload":  parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(tampered)) + "." + parts[2],
		"garbage":           "not.a.token",
		"empty sig":         parts[0] + "." + parts[1] + ".",
	} {
		m := wantError(t, ts.do(t, req{URL: "/api/users/me/", Header: bearer(tok)}), 401, "token_not_valid")
		_ = m
		// Public routes refuse a bad token too, as DRF does.
		if w := ts.do(t, req{URL: "/api/departments/", Header: bearer(tok)}); w.Code != 401 {
			t.Errorf("%s on a public route: %d", name, w.Code)
		}
	}
	wantError(t, ts.do(t, req{URL: "/api/users/me/"}), 401, "not_authenticated")
	wantError(t, ts.do(t, req{URL: "/api/users/me/", Header: map[string]string{"Authorization": "Bearer"}}), 401, "token_not_valid")
	wantError(t, ts.do(t, req{URL: "/api/users/me/", Header: map[string]string{"Authorization": "Basic YTpi"}}), 401, "not_authenticated")
	w := ts.do(t, req{URL: "/api/users/me/"})
	if w.Header().Get("WWW-Authenticate") == "" {
		t.Error("401 without WWW-Authenticate")
	}

	// A deactivated user's still-valid token is refused at once.
	inactive := false
	ts.Users.UpdateUser(context.Background(), u.ID, api.UserUpdate{IsActive: &inactive})
	wantError(t, ts.do(t, req{URL: "/api/users/me/", Header: bearer(access)}), 401, "authentication_failed")
	wantError(t, ts.do(t, req{Method: "POST", URL: "/api/token/refresh/", Body: jsonBody(map[string]string{"refresh": refresh})}), 401, "token_not_valid")
	// Deactivated outside this server (psql, another replica): refused as soon
	// as the notification lands, though the row had been cached.
	u3 := mustUser(t, ts, "cached@example.com", false)
	access3, _ := login(t, ts, "cached@example.com", goodPassword)
	if w := ts.do(t, req{URL: "/api/users/me/", Header: bearer(access3)}); w.Code != 200 {
		t.Fatalf("me = %d", w.Code)
	}
	if _, err := ts.DB.Exec(`UPDATE users SET is_active = false WHERE id = $1`, u3.ID); err != nil {
		t.Fatal(err)
	}
	wait.For(t, "the deactivation to reach the server", func() bool {
		return ts.do(t, req{URL: "/api/users/me/", Header: bearer(access3)}).Code == 401
	})
	// A token for a user that does not exist.
	ghost := forge(t, jwt.SigningMethodHS256, []byte(testSecret), claims(map[string]any{"user_id": 424242}))
	wantError(t, ts.do(t, req{URL: "/api/users/me/", Header: bearer(ghost)}), 401, "authentication_failed")
}

func TestExpiryWithClock(t *testing.T) {
	ts := newTestServer(t, nil)
	mustUser(t, ts, "ana@example.com", false)
	access, refresh := login(t, ts, "ana@example.com", goodPassword)
	base := time.Now()
	ts.Now = func() time.Time { return base.Add(5*time.Minute + time.Second) }
	wantError(t, ts.do(t, req{URL: "/api/users/me/", Header: bearer(access)}), 401, "token_not_valid")
	if w := ts.do(t, req{Method: "POST", URL: "/api/token/refresh/", Body: jsonBody(map[string]string{"refresh": refresh})}); w.Code != 200 {
		t.Errorf("refresh within a day = %d", w.Code)
	}
	ts.Now = func() time.Time { return base.Add(24*time.Hour + time.Second) }
	wantError(t, ts.do(t, req{Method: "POST", URL: "/api/token/refresh/", Body: jsonBody(map[string]string{"refresh": refresh})}), 401, "token_not_valid")
}

func TestDjangoHashUpgrade(t *testing.T) {
	ts := newTestServer(t, nil)
	u := &api.User{Email: "old@example.com", Password: auth.DjangoPBKDF2("legacy-pass-2019", "somesalt", 600000), IsActive: true}
	if err := ts.Users.CreateUser(context.Background(), u); err != nil {
		t.Fatal(err)
	}
	wantError(t, ts.do(t, req{Method: "POST", URL: "/api/token/", Body: `{"email":"old@example.com","password":"wrong"}`}), 401, "authentication_failed")
	got, _ := ts.Users.FindUserByID(context.Background(), u.ID)
	if !strings.HasPrefix(got.Password, "pbkdf2_sha256$") {
		t.Fatal("hash upgraded on a failed login")
	}
	login(t, ts, "old@example.com", "legacy-pass-2019")
	got, _ = ts.Users.FindUserByID(context.Background(), u.ID)
	if !strings.HasPrefix(got.Password, "argon2$argon2id$") {
		t.Fatalf("hash not upgraded: %s", got.Password[:20])
	}
	login(t, ts, "old@example.com", "legacy-pass-2019")
}

func TestThrottle(t *testing.T) {
	ts := newTestServer(t, map[string]string{"THROTTLE_TOKEN": "3/min", "THROTTLE_REGISTER": "2/hour"})
	body := `{"email":"x@example.com","password":"wrong-password"}`
	post := func(remote string, hdr map[string]string) *httptestRecorder {
		return ts.do(t, req{Method: "POST", URL: "/api/token/", Body: body, Remote: remote, Header: hdr})
	}
	for i := 0; i < 3; i++ {
		if w := post("198.51.100.1:1", nil); w.Code != 401 {
			t.Fatalf("request %d = %d", i, w.Code)
		}
	}
	w := post("198.51.100.1:1", map[string]string{"Origin": "https://app.example.com"})
	wantError(t, w, 429, "throttled")
	ra := w.Header().Get("Retry-After")
	if ra == "" || ra == "0" || w.Header().Get("Access-Control-Allow-Origin") == "" {
		t.Errorf("429 headers: %v", w.Header())
	}
	// A spoofed X-Forwarded-For from an untrusted peer does not get around it.
	wantError(t, post("198.51.100.1:1", map[string]string{"X-Forwarded-For": "203.0.113.77"}), 429, "throttled")
	// Another client is not affected; behind a trusted proxy the real client counts.
	if w := post("198.51.100.2:1", nil); w.Code != 401 {
		t.Errorf("other client = %d", w.Code)
	}
	for i := 0; i < 3; i++ {
		post("127.0.0.1:1", map[string]string{"X-Forwarded-For": "203.0.113.10"})
	}
	wantError(t, post("127.0.0.1:1", map[string]string{"X-Forwarded-For": "203.0.113.10"}), 429, "throttled")
	if w := post("127.0.0.1:1", map[string]string{"X-Forwarded-For": "203.0.113.11"}); w.Code != 401 {
		t.Errorf("other client behind proxy = %d", w.Code)
	}
	// The window slides: after a minute the client may try again.
	base := time.Now()
	ts.Now = func() time.Time { return base.Add(61 * time.Second) }
	if w := post("198.51.100.1:1", nil); w.Code != 401 {
		t.Errorf("after the window = %d", w.Code)
	}
	// Registration has its own scope.
	for i := 0; i < 2; i++ {
		ts.do(t, req{Method: "POST", URL: "/api/auth/register/", Body: `{}`, Remote: "198.51.100.3:1"})
	}
	wantError(t, ts.do(t, req{Method: "POST", URL: "/api/auth/register/", Body: `{}`, Remote: "198.51.100.3:1"}), 429, "throttled")
}

func userUpdateNames(first, last string) api.UserUpdate {
	return api.UserUpdate{FirstName: &first, LastName: &last}
}
