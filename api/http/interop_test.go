package apihttp

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"testing"

	"github.com/isis-project/isis/api"
)

// simplejwt runs testdata/simplejwt.py with Debian's python3, where the real
// djangorestframework-simplejwt is installed (scripts/setup.sh test).
func simplejwt(t *testing.T, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command("/usr/bin/python3", append([]string{"testdata/simplejwt.py", testSecret}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() == 3 {
		return errb.String(), 3
	}
	if err != nil {
		t.Fatalf("simplejwt %v: %v: %s (run scripts/setup.sh test to install python3-djangorestframework-simplejwt)", args, err, errb.String())
	}
	return out.String(), 0
}

// TestSimpleJWTInterop proves tokens cross both ways with the real library
// and the same SECRET_KEY, and Django's own password hashes are accepted.
func TestSimpleJWTInterop(t *testing.T) {
	ts := newTestServer(t, nil)
	u := mustUser(t, ts, "ana@example.com", false)

	// SimpleJWT mints, isis accepts.
	out, _ := simplejwt(t, "mint", jsonBody(u.ID))
	var pair map[string]string
	if err := json.Unmarshal([]byte(out), &pair); err != nil {
		t.Fatal(err)
	}
	w := ts.do(t, req{URL: "/api/users/me/", Header: bearer(pair["access"])})
	if m := decode(t, w); w.Code != 200 || m["email"] != "ana@example.com" {
		t.Fatalf("SimpleJWT access token: %d %v", w.Code, m)
	}
	w = ts.do(t, req{Method: "POST", URL: "/api/token/refresh/", Body: jsonBody(map[string]string{"refresh": pair["refresh"]})})
	if w.Code != 200 {
		t.Fatalf("SimpleJWT refresh token: %d %s", w.Code, w.Body.String())
	}
	if w := ts.do(t, req{Method: "POST", URL: "/api/token/blacklist/", Body: jsonBody(map[string]string{"refresh": pair["refresh"]})}); w.Code != 200 {
		t.Fatalf("blacklisting a SimpleJWT token: %d %s", w.Code, w.Body.String())
	}
	wantError(t, ts.do(t, req{Method: "POST", URL: "/api/token/refresh/", Body: jsonBody(map[string]string{"refresh": pair["refresh"]})}), 401, "token_not_valid")

	// isis mints, SimpleJWT decodes with the same claims.
	access, refresh := login(t, ts, "ana@example.com", goodPassword)
	for typ, tok := range map[string]string{"access": access, "refresh": refresh} {
		out, code := simplejwt(t, "decode", typ, tok)
		if code != 0 {
			t.Fatalf("SimpleJWT refused the isis %s token: %s", typ, out)
		}
		var payload map[string]any
		json.Unmarshal([]byte(out), &payload)
		if payload["token_type"] != typ || payload["user_id"] != float64(u.ID) || payload["jti"] == "" || payload["exp"] == nil || payload["iat"] == nil {
			t.Errorf("%s payload = %v", typ, payload)
		}
	}
	// And SimpleJWT refuses what it should: wrong type, other key.
	if _, code := simplejwt(t, "decode", "access", refresh); code != 3 {
		t.Error("SimpleJWT accepted a refresh token as access (the harness cannot fail)")
	}

	// A password hashed by Django logs in, and is upgraded.
	hash, _ := simplejwt(t, "hash", "lètmein-2019")
	d := &api.User{Email: "django@example.com", Password: string(bytes.TrimSpace([]byte(hash))), IsActive: true}
	if err := ts.Users.CreateUser(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	login(t, ts, "django@example.com", "lètmein-2019")
}
