package apihttp

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/isis-project/isis/api"
	"github.com/isis-project/isis/api/auth"
)

// TestEmailNormalForm: addresses that are the same once normalized (case,
// compatibility forms, invisible characters, NFC/NFD) are one account, and
// addresses Django refuses are refused.
func TestEmailNormalForm(t *testing.T) {
	ts := newTestServer(t, map[string]string{"THROTTLE_REGISTER": "1000/hour", "THROTTLE_TOKEN": "1000/min"})
	hash, err := auth.HashPassword(goodPassword)
	if err != nil {
		t.Fatal(err)
	}
	register := func(email string) *httptestRecorder {
		return ts.do(t, req{Method: "POST", URL: "/api/auth/register/", Body: jsonBody(map[string]string{"email": email, "password": goodPassword})})
	}
	emailError := func(w *httptestRecorder) string {
		t.Helper()
		m := wantError(t, w, 400, "invalid")
		errs, _ := m["errors"].(map[string]any)
		list, _ := errs["email"].([]any)
		if len(list) == 0 {
			t.Fatalf("no email error: %s", w.Body.String())
		}
		return list[0].(string)
	}
	for i, pair := range [][2]string{
		{"kim@example.com", "\u212aim@example.com"},      // Kelvin sign
		{"kim@example.com", "KIM@EXAMPLE.COM"},           // case
		{"kim@example.com", "kim@ｅｘａｍｐｌｅ.com"},           // fullwidth domain
		{"kim@example.com", "kim@ex\u200bample.com"},     // zero-width space in the domain
		{"kim@exámple.com", "kim@exa\u0301mple.com"},     // NFC, NFD
		{"kim@exámple.com", "kim@xn--exmple-qta.com"},    // Unicode, Punycode
		{"sam@example.com", "ſam@example.com"},           // long s
		{"kim@straße.de", "KIM@STRASSE.de"},              // full case folding (ß, ss)
		{"kim.lee@example.com", `"kim.lee"@example.com`}, // needless quotes
	} {
		ts.DB.MustExec(`DELETE FROM users`)
		u := &api.User{Email: pair[0], Password: hash, IsActive: true}
		if err := ts.Users.CreateUser(context.Background(), u); err != nil {
			t.Fatalf("create %q: %v", pair[0], err)
		}
		if msg := emailError(register(pair[1])); !strings.Contains(msg, "already exists") {
			t.Errorf("register %q after %q: %q, want taken", pair[1], pair[0], msg)
		}
		// Either spelling finds the one account (login looks it up so).
		if got, err := ts.Users.FindUserByEmail(context.Background(), pair[1]); err != nil || got.ID != u.ID {
			t.Errorf("FindUserByEmail(%q) = %v, %v; want user %d", pair[1], got, err, u.ID)
		}
		if i == 0 {
			login(t, ts, pair[1], goodPassword) // the Kelvin sign logs in to kim@
		}
	}
	for _, bad := range []string{"kim@ex_ample.com", "kim@1.2.3.4", "ki\u202em@example.com", "k\u200bim@example.com",
		"ｋｉｍ@example.com", "ki\x01m@example.com", "kim@ex\u202eample.com", "kim@example", "kim@[01.2.3.4]"} {
		if msg := emailError(register(bad)); msg != "Enter a valid email address." {
			t.Errorf("register %+q: %q", bad, msg)
		}
	}
	if msg := emailError(register("ki\x00m@example.com")); msg != "Null characters are not allowed." {
		t.Errorf("NUL: %q", msg)
	}
	if msg := emailError(register(strings.Repeat("a", 64) + "@" + strings.Repeat("b", 200) + ".com")); !strings.Contains(msg, "254 characters") {
		t.Errorf("long: %q", msg)
	}
	for _, ok := range []string{"kim@1.2.3.44", "kim@[1.2.3.4]", "kim@[::1]", "kim@localhost", "o'neil+tag@example.co"} {
		if w := register(ok); w.Code != 201 {
			t.Errorf("register %q = %d %s", ok, w.Code, w.Body.String())
		}
	}

	// A staff edit cannot give a second user the same address either.
	ts.DB.MustExec(`DELETE FROM users`)
	mustUser(t, ts, "kim@example.com", false)
	other := mustUser(t, ts, "otro@example.com", false)
	mustUser(t, ts, "staff@example.com", true)
	staff, _ := login(t, ts, "staff@example.com", goodPassword)
	patch := func(email string) *httptestRecorder {
		return ts.do(t, req{Method: "PATCH", URL: "/api/users/" + strconv.FormatInt(other.ID, 10) + "/", Header: bearer(staff), Body: jsonBody(map[string]string{"email": email})})
	}
	if msg := emailError(patch("\u212aim@example.com")); !strings.Contains(msg, "already exists") {
		t.Errorf("patch to the Kelvin twin: %q", msg)
	}
	if msg := emailError(patch("otro@ex_ample.com")); msg != "Enter a valid email address." {
		t.Errorf("patch to a bad domain: %q", msg)
	}
	if w := patch("Otro.Nuevo@Example.com"); w.Code != 200 {
		t.Fatalf("patch = %d %s", w.Code, w.Body.String())
	}
	login(t, ts, "otro.nuevo@example.com", goodPassword)
}
