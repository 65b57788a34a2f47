package apihttp

import (
	"context"
	"crypto/rsa"
	"sync"
	"testing"

	"github.com/isis-project/isis/api"
	"github.com/isis-project/isis/api/auth"
	"github.com/isis-project/isis/api/emailaddr"
)

// googleEnv is a server with Google sign-in on against a JWKS of key "k1".
func googleEnv(t *testing.T) (*testServer, *rsa.PrivateKey) {
	key := testRSAKey(t)
	jwks := newJWKSServer(t, "3600", map[string]*rsa.PrivateKey{"k1": key})
	ts := newTestServer(t, map[string]string{"GOOGLE_CLIENT_ID": googleClient, "GOOGLE_JWKS_URL": jwks.URL,
		"THROTTLE_GOOGLE": "1000/min", "THROTTLE_REGISTER": "1000/hour"})
	return ts, key
}

// googleSignIn posts an ID token with the given claims over the defaults.
func googleSignIn(t *testing.T, ts *testServer, key *rsa.PrivateKey, over map[string]any) *httptestRecorder {
	t.Helper()
	return ts.do(t, req{Method: "POST", URL: "/api/auth/google/", Body: jsonBody(map[string]string{"id_token": googleToken(t, key, "k1", over)})})
}

// meID is the id of the user an access token from a 200 token pair belongs to.
func meID(t *testing.T, ts *testServer, w *httptestRecorder) float64 {
	t.Helper()
	if w.Code != 200 {
		t.Fatalf("sign-in = %d %s", w.Code, w.Body.String())
	}
	me := decode(t, ts.do(t, req{URL: "/api/users/me/", Header: bearer(decode(t, w)["access"].(string))}))
	return me["id"].(float64)
}

// TestGooglePreAccountTakeover: someone registers the victim's address with
// a password; the victim's Google sign-in must not hand them that account
// (nor the account hand the squatter the victim's Google identity).
func TestGooglePreAccountTakeover(t *testing.T) {
	ts, key := googleEnv(t)
	for _, squat := range []string{"maria@gmail.com", "MARIA@gmail.com"} {
		ts.DB.MustExec(`DELETE FROM users`)
		w := ts.do(t, req{Method: "POST", URL: "/api/auth/register/", Body: jsonBody(map[string]string{"email": squat, "password": goodPassword})})
		if w.Code != 201 {
			t.Fatalf("register %s = %d %s", squat, w.Code, w.Body.String())
		}
		m := wantError(t, googleSignIn(t, ts, key, nil), 409, "google_account_not_linked")
		if d := m["detail"].(string); d == "" {
			t.Errorf("no detail")
		}
		var n int
		ts.DB.Get(&n, `SELECT count(*) FROM users WHERE google_sub IS NOT NULL`)
		if n != 0 {
			t.Errorf("squatted %s: a Google subject was recorded", squat)
		}
	}
	// The Kelvin sign makes no second account for the same address, and
	// does not take the Google sign-in either.
	ts.DB.MustExec(`DELETE FROM users`)
	mustUser(t, ts, "\u212aim@gmail.com", false)
	wantError(t, googleSignIn(t, ts, key, map[string]any{"email": "kim@gmail.com", "sub": "kim-sub"}), 409, "google_account_not_linked")
}

func TestGoogleLink(t *testing.T) {
	ts, key := googleEnv(t)
	owner := mustUser(t, ts, "maria@gmail.com", false)
	access, _ := login(t, ts, "maria@gmail.com", goodPassword)
	link := func(tok string, over map[string]any) *httptestRecorder {
		h := map[string]string{}
		if tok != "" {
			h = bearer(tok)
		}
		return ts.do(t, req{Method: "POST", URL: "/api/auth/google/link/", Header: h, Body: jsonBody(map[string]string{"id_token": googleToken(t, key, "k1", over)})})
	}
	wantError(t, link("", nil), 401, "not_authenticated")
	if w := link(access, nil); w.Code != 204 {
		t.Fatalf("link = %d %s", w.Code, w.Body.String())
	}
	if w := link(access, nil); w.Code != 204 {
		t.Fatalf("link again = %d %s", w.Code, w.Body.String())
	}
	if id := meID(t, ts, googleSignIn(t, ts, key, nil)); id != float64(owner.ID) {
		t.Fatalf("Google sign-in after linking reached user %v, want %d", id, owner.ID)
	}
	// The subject, not the email, finds the account: Google's email may change.
	if id := meID(t, ts, googleSignIn(t, ts, key, map[string]any{"email": "maria.lopez@gmail.com"})); id != float64(owner.ID) {
		t.Fatalf("new Google email reached user %v, want %d", id, owner.ID)
	}
	// Another user cannot take the same Google account; the owner cannot
	// link a second one without unlinking.
	mustUser(t, ts, "otro@example.com", false)
	other, _ := login(t, ts, "otro@example.com", goodPassword)
	wantError(t, link(other, nil), 409, "google_account_in_use")
	wantError(t, link(access, map[string]any{"sub": "another-sub"}), 409, "conflict")
	// Unlinking (the account has a password): Google no longer gets in.
	if w := ts.do(t, req{Method: "DELETE", URL: "/api/auth/google/link/", Header: bearer(access)}); w.Code != 204 {
		t.Fatalf("unlink = %d %s", w.Code, w.Body.String())
	}
	wantError(t, googleSignIn(t, ts, key, nil), 409, "google_account_not_linked")
	wantError(t, ts.do(t, req{Method: "DELETE", URL: "/api/auth/google/link/"}), 401, "not_authenticated")

	// An account Google sign-in made has no password: it cannot be unlinked.
	g := decode(t, googleSignIn(t, ts, key, map[string]any{"email": "nuevo@gmail.com", "sub": "nuevo-sub"}))
	wantError(t, ts.do(t, req{Method: "DELETE", URL: "/api/auth/google/link/", Header: bearer(g["access"].(string))}), 409, "conflict")

	// Off without GOOGLE_CLIENT_ID.
	off := newTestServer(t, nil)
	wantError(t, off.do(t, req{Method: "POST", URL: "/api/auth/google/link/", Body: `{"id_token":"x"}`}), 404, "not_found")
}

// TestGoogleAdoptsPasswordlessAccount: an account made by Google sign-in
// before isis recorded subjects (no usable password, no subject) is still
// the Google user's; the first sign-in records the subject, and from then
// on another Google account with that email is refused.
func TestGoogleAdoptsPasswordlessAccount(t *testing.T) {
	ts, key := googleEnv(t)
	u := &api.User{Email: "maria@gmail.com", Password: auth.UnusablePassword(), IsActive: true}
	if err := ts.Users.CreateUser(context.Background(), u); err != nil {
		t.Fatal(err)
	}
	if id := meID(t, ts, googleSignIn(t, ts, key, nil)); id != float64(u.ID) {
		t.Fatalf("sign-in reached %v, want %d", id, u.ID)
	}
	var sub string
	ts.DB.Get(&sub, `SELECT google_sub FROM users WHERE id = $1`, u.ID)
	if sub != "10769150350006150715113082367" {
		t.Errorf("google_sub = %q", sub)
	}
	wantError(t, googleSignIn(t, ts, key, map[string]any{"sub": "someone-else"}), 409, "google_account_not_linked")
}

func TestGoogleClaims(t *testing.T) {
	ts, key := googleEnv(t)
	for name, tc := range map[string]struct {
		over   map[string]any
		status int
		code   string
	}{
		"azp ours":            {map[string]any{"azp": googleClient}, 200, ""},
		"azp other client":    {map[string]any{"azp": "9999-other.apps.googleusercontent.com", "sub": "s1", "email": "s1@gmail.com"}, 401, "authentication_failed"},
		"email_verified str":  {map[string]any{"email_verified": "true", "sub": "s2", "email": "s2@gmail.com"}, 200, ""},
		"email_verified no":   {map[string]any{"email_verified": "false", "sub": "s3", "email": "s3@gmail.com"}, 401, "authentication_failed"},
		"no email_verified":   {map[string]any{"email_verified": nil, "sub": "s4", "email": "s4@gmail.com"}, 401, "authentication_failed"},
		"email not an email":  {map[string]any{"email": "not-an-email", "sub": "s5"}, 400, "invalid"},
		"email bad domain":    {map[string]any{"email": "s6@ex_ample.com", "sub": "s6"}, 400, "invalid"},
		"email with NUL":      {map[string]any{"email": "s7\x00@gmail.com", "sub": "s7"}, 400, "invalid"},
		"given_name with NUL": {map[string]any{"given_name": "Ma\x00ría", "sub": "s8", "email": "s8@gmail.com"}, 400, "invalid"},
		"family_name NUL":     {map[string]any{"family_name": "\x00", "sub": "s9", "email": "s9@gmail.com"}, 400, "invalid"},
		"sub with NUL":        {map[string]any{"sub": "s\x0010", "email": "s10@gmail.com"}, 400, "invalid"},
	} {
		w := googleSignIn(t, ts, key, tc.over)
		if tc.status == 200 {
			if w.Code != 200 {
				t.Errorf("%s: %d %s", name, w.Code, w.Body.String())
			}
			continue
		}
		if w.Code != tc.status {
			t.Errorf("%s: %d %s, want %d", name, w.Code, w.Body.String(), tc.status)
			continue
		}
		wantError(t, w, tc.status, tc.code)
	}
}

// TestGoogleConcurrentFirstSignIn: simultaneous first sign-ins of one Google
// account make one account, linked, and all succeed.
func TestGoogleConcurrentFirstSignIn(t *testing.T) {
	ts, key := googleEnv(t)
	tok := googleToken(t, key, "k1", nil)
	var wg sync.WaitGroup
	codes := make([]int, 8)
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i] = ts.do(t, req{Method: "POST", URL: "/api/auth/google/", Body: jsonBody(map[string]string{"id_token": tok})}).Code
		}()
	}
	wg.Wait()
	var n int
	ts.DB.Get(&n, `SELECT count(*) FROM users WHERE google_sub = '10769150350006150715113082367'`)
	for _, c := range codes {
		if c != 200 {
			t.Errorf("codes = %v", codes)
			break
		}
	}
	if n != 1 {
		t.Errorf("%d linked users, want 1", n)
	}
}

// FuzzGoogleClaims signs ID tokens whose claims hold any strings (and
// sometimes no email_verified or a foreign azp) and signs in with them:
// never a 5xx, an error is always the envelope, and a 200 always names an
// account whose email is valid.
func FuzzGoogleClaims(f *testing.F) {
	f.Add("maria@gmail.com", "sub-1", "María", "López", uint8(0))
	f.Add("ma\x00ria@gmail.com", "sub-2", "a", "b", uint8(0))
	f.Add("kim@ex_ample.com", "sub-3", "", "", uint8(1))
	f.Add("kim@ex_ample.com", "sub-4", "", "", uint8(0))
	f.Add("\u212aim@gmail.com", "s\x00", "\x00", "\xff", uint8(2))
	f.Add("x@[::1]", "", "", "", uint8(3))
	key := testRSAKey(f)
	jwks := newJWKSServer(f, "3600", map[string]*rsa.PrivateKey{"k1": key})
	ts := newTestServer(f, map[string]string{"GOOGLE_CLIENT_ID": googleClient, "GOOGLE_JWKS_URL": jwks.URL, "THROTTLE_GOOGLE": "1000000/min"})
	mustUser(f, ts, "kim@gmail.com", false)
	f.Fuzz(func(t *testing.T, email, sub, given, family string, shape uint8) {
		over := map[string]any{"email": email, "sub": sub, "given_name": given, "family_name": family}
		if shape&1 != 0 {
			over["email_verified"] = nil
		}
		if shape&2 != 0 {
			over["azp"] = sub
		}
		w := googleSignIn(t, ts, key, over)
		switch {
		case w.Code >= 500:
			t.Fatalf("claims %+q = %d %s", over, w.Code, w.Body.String())
		case w.Code >= 400:
			if m := decode(t, w); m["code"] == nil || m["detail"] == nil {
				t.Fatalf("error without the envelope: %s", w.Body.String())
			}
		case w.Code == 200:
			me := decode(t, ts.do(t, req{URL: "/api/users/me/", Header: bearer(decode(t, w)["access"].(string))}))
			if e, _ := me["email"].(string); emailaddr.Validate(e) != nil {
				t.Fatalf("signed in to an account with email %+q", e)
			}
		}
	})
}
