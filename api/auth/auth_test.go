package auth

import (
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func TestPasswordHashing(t *testing.T) {
	h, err := HashPassword("lètmein-ok")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "argon2$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("hash = %s", h)
	}
	h2, _ := HashPassword("lètmein-ok")
	if h == h2 {
		t.Error("two hashes of one password are equal: no salt")
	}
	for _, tc := range []struct {
		password, encoded string
		ok, upgrade       bool
	}{
		{"lètmein-ok", h, true, false},
		{"letmein-ok", h, false, false},
		{"", h, false, false},
		// Django 3.2's own test vector (make_password("lètmein", "seasalt", "pbkdf2_sha256")).
		{"lètmein", "pbkdf2_sha256$260000$seasalt$YlZ2Vggtqdc61YjArZuoApoBh9JNGYoDRBUGu6tcJQo=", true, true},
		{"lètmein", "pbkdf2_sha256$260000$seasalt$YlZ2Vggtqdc61YjArZuoApoBh9JNGYoDRBUGu6tcJQQ=", false, false},
		{"lètmein", "pbkdf2_sha256$260000$seasalt", false, false},
		{"lètmein", "pbkdf2_sha256$99999999999$seasalt$YlZ2Vggtqdc61YjArZuoApoBh9JNGYoDRBUGu6tcJQo=", false, false},
		{"x", DjangoPBKDF2("x", "salt", 1000), true, true},
		{"lètmein", "!unusable", false, false},
		{"lètmein", "md5$salt$abc", false, false},
		{"lètmein", "", false, false},
		{"lètmein", "argon2$argon2id$v=19$m=4294967295,t=1,p=1$c2FsdA$aGFzaA", false, false},
		// Made by Django 3.2's own hashers (argon2-cffi 21.1, bcrypt 3.2), with small work factors so the
		// race detector stays quick (TestImportDjango checks Django's defaults end to end).
		{"lètmein", "pbkdf2_sha1$260000$seasalt$XXHk2gQ7tjWIyrS320RXXsGqkUg=", true, true},
		{"lètmeout", "pbkdf2_sha1$260000$seasalt$XXHk2gQ7tjWIyrS320RXXsGqkUg=", false, false},
		{"lètmein", "argon2$argon2id$v=19$m=256,t=1,p=2$c2Vhc2FsdHNlYXNhbHQ$7N+i6x/Jc9fg0Jr7O9j2NA", true, true},
		{"lètmeout", "argon2$argon2id$v=19$m=256,t=1,p=2$c2Vhc2FsdHNlYXNhbHQ$7N+i6x/Jc9fg0Jr7O9j2NA", false, false},
		{"lètmein", "argon2$argon2i$v=19$m=256,t=1,p=2$c2Vhc2FsdHNlYXNhbHQ$8oN6JcIgSUgDQR9jNHEkKg", true, true},
		{"lètmein", "argon2$argon2d$v=19$m=256,t=1,p=2$c2Vhc2FsdHNlYXNhbHQ$8oN6JcIgSUgDQR9jNHEkKg", false, false},
		{"lètmein", "bcrypt_sha256$$2b$04$cDrfWUxnret/Yc4SijznEetO69QbIKexVKlKtfrZvBUmDUlbkc0z6", true, true},
		{"lètmeout", "bcrypt_sha256$$2b$04$cDrfWUxnret/Yc4SijznEetO69QbIKexVKlKtfrZvBUmDUlbkc0z6", false, false},
		{strings.Repeat("x", 100), "bcrypt_sha256$$2b$04$Lelt/md8hHNWc/rCViZmsulLtWVANVsCRm3bZG7ltRARo6XpMyo2G", true, true},
		{strings.Repeat("x", 99), "bcrypt_sha256$$2b$04$Lelt/md8hHNWc/rCViZmsulLtWVANVsCRm3bZG7ltRARo6XpMyo2G", false, false},
		{"lètmein", "bcrypt$$2b$04$db0CT4xnFTCurJ1j/vRYhOh5bE5yv2kyM/fetnbrU85A0Lj3G90rG", true, true},
		{strings.Repeat("y", 80), "bcrypt$$2b$04$h.bj822mRi30b4ZPSdUS1Os0Ccbq7eDj2CLrnhYQ/ZqjLQbkDUjsW", true, true},
		{"lètmein", "bcrypt_sha256$$2b$31$cDrfWUxnret/Yc4SijznEetO69QbIKexVKlKtfrZvBUmDUlbkc0z6", false, false},
	} {
		ok, up := CheckPassword(tc.password, tc.encoded)
		if ok != tc.ok || up != tc.upgrade {
			t.Errorf("CheckPassword(%q, %.40s) = %v, %v; want %v, %v", tc.password, tc.encoded, ok, up, tc.ok, tc.upgrade)
		}
	}
	for _, tc := range []struct{ encoded, err string }{
		{"!unusable", ""},
		{"pbkdf2_sha256$260000$seasalt$YlZ2Vggtqdc61YjArZuoApoBh9JNGYoDRBUGu6tcJQo=", ""},
		{"bcrypt_sha256$$2b$04$cDrfWUxnret/Yc4SijznEetO69QbIKexVKlKtfrZvBUmDUlbkc0z6", ""},
		{"argon2$argon2i$v=19$m=256,t=1,p=2$c2Vhc2FsdHNlYXNhbHQ$8oN6JcIgSUgDQR9jNHEkKg", ""},
		{"md5$salt$abc", `algorithm "md5" is not supported`},
		{"sha1$salt$abc", `algorithm "sha1" is not supported`},
		{"argon2$argon2d$v=19$m=256,t=1,p=2$c2FsdA$aGFzaA", `variety "argon2d"`},
		{"argon2$argon2i$m=256,t=1,p=2$c2FsdA$aGFzaA", "argon2 hash: want"},
		{"bcrypt_sha256$$2b$31$cDrfWUxnret/Yc4SijznEetO69QbIKexVKlKtfrZvBUmDUlbkc0z6", "cost 31 out of bounds"},
		{"plaintext", "no algorithm"},
		{"", "empty"},
	} {
		err := CheckableHash(tc.encoded)
		if (tc.err == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("CheckableHash(%.40q) = %v, want %q", tc.encoded, err, tc.err)
		}
	}
	// Older argon2 parameters are upgraded.
	old := "argon2$argon2id$v=19$m=8192,t=1,p=1$" + "c29tZXNhbHRzb21lc2FsdA" + "$"
	if ok, _ := CheckPassword("x", old+"AAAA"); ok {
		t.Error("bad argon2 hash matched")
	}
}

func TestValidatePassword(t *testing.T) {
	u := UserAttributes{Email: "gabriela@example.com", FirstName: "Gabriela", LastName: "Montoya"}
	for _, tc := range []struct {
		pw   string
		want []string
	}{
		{"correct-horse-battery-9", nil},
		{"short1!", []string{"This password is too short. It must contain at least 8 characters."}},
		{"password", []string{"This password is too common."}},
		{"PASSWORD", []string{"This password is too common."}},
		{"12345678", []string{"This password is too common.", "This password is entirely numeric."}},
		{"8302917465", []string{"This password is entirely numeric."}},
		{"gabriela2024", []string{"The password is too similar to the first name."}},
		{"montoya-77", []string{"The password is too similar to the last name."}},
		{"gabriela@example", []string{"The password is too similar to the email address."}},
	} {
		got := ValidatePassword(tc.pw, u)
		if strings.Join(got, "|") != strings.Join(tc.want, "|") {
			t.Errorf("ValidatePassword(%q) = %q, want %q", tc.pw, got, tc.want)
		}
	}
	if got := ValidatePassword("examplecom", UserAttributes{Email: "a@example.com"}); len(got) != 1 || !strings.Contains(got[0], "email address") {
		t.Errorf("similar to email = %q", got)
	}
}

func TestQuickRatio(t *testing.T) {
	// difflib.SequenceMatcher(None, "abcd", "bcde").quick_ratio() == 0.75
	if r := quickRatio([]rune("abcd"), []rune("bcde")); r != 0.75 {
		t.Errorf("quickRatio = %v", r)
	}
}

func TestJWT(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	tk := &JWT{Key: []byte("k-0123456789-abcdefghijklmnopqrstuvwxyz"), AccessTTL: 5 * time.Minute, RefreshTTL: 24 * time.Hour,
		Now: func() time.Time { return now }}
	s, c, err := tk.Mint(42, Access)
	if err != nil {
		t.Fatal(err)
	}
	if c.ExpiresAt.Sub(now) != 5*time.Minute || len(c.ID) != 32 {
		t.Errorf("claims = %+v", c)
	}
	got, err := tk.Parse(s, Access)
	if err != nil || got.UserID != 42 || got.TokenType != Access {
		t.Fatalf("Parse = %+v, %v", got, err)
	}
	if _, err := tk.Parse(s, Refresh); err == nil {
		t.Error("access accepted as refresh")
	}
	// user_id as a string, as some SimpleJWT versions write it.
	str, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"token_type": "access", "user_id": "42", "jti": "x",
		"exp": now.Add(time.Minute).Unix()}).SignedString(tk.Key)
	if got, err := tk.Parse(str, Access); err != nil || got.UserID != 42 {
		t.Errorf("string user_id: %+v %v", got, err)
	}
	// Verified access tokens are remembered; what Parse hands out is a copy.
	if len(tk.verified) != 2 {
		t.Errorf("%d tokens remembered, want 2", len(tk.verified))
	}
	got.UserID = 7
	if again, err := tk.Parse(s, Access); err != nil || again.UserID != 42 {
		t.Errorf("remembered claims changed by a caller: %+v %v", again, err)
	}
	if _, err := tk.Parse(s[:len(s)-2]+"xx", Access); err == nil {
		t.Error("tampered token accepted")
	}
	// Remembered or not, a token is dead from its exp on.
	now = c.ExpiresAt.Time
	if _, err := tk.Parse(s, Access); err == nil {
		t.Error("token accepted at its exp")
	}
	now = now.Add(time.Second)
	if _, err := tk.Parse(s, Access); err == nil {
		t.Error("expired token accepted")
	}
}

// TestAccessUserID: Parse(token, Access)'s user id, remembered or not.
func TestAccessUserID(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	tk := &JWT{Key: []byte("k-0123456789-abcdefghijklmnopqrstuvwxyz"), AccessTTL: 5 * time.Minute, RefreshTTL: 24 * time.Hour,
		Now: func() time.Time { return now }}
	access, c, _ := tk.Mint(42, Access)
	refresh, _, _ := tk.Mint(43, Refresh)
	for i := range 2 { // first verified, then remembered
		if id, err := tk.AccessUserID(access); id != 42 || err != nil {
			t.Errorf("round %d: AccessUserID(access) = %d, %v", i, id, err)
		}
		if id, err := tk.AccessUserID(refresh); err == nil {
			t.Errorf("round %d: refresh token accepted as access: %d", i, id)
		}
	}
	if len(tk.verified) != 1 {
		t.Errorf("%d tokens remembered, want 1", len(tk.verified))
	}
	for _, bad := range []string{"", access[:len(access)-2] + "xx", strings.Repeat("a", 4097)} {
		if _, err := tk.AccessUserID(bad); err == nil {
			t.Errorf("AccessUserID(%.20q…) accepted", bad)
		}
	}
	now = c.ExpiresAt.Time
	if id, err := tk.AccessUserID(access); err == nil {
		t.Errorf("remembered token accepted at its exp: %d", id)
	}
}

// FuzzCheckPassword: any stored hash is either refused or verified, never a
// panic, and a random one never matches.
func FuzzCheckPassword(f *testing.F) {
	f.Add("pw", "pbkdf2_sha256$1000$salt$"+strings.Repeat("A", 44))
	f.Add("pw", "argon2$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA")
	f.Add("pw", "argon2$argon2id$v=19$m=,t=,p=$$")
	f.Add("", "$$$$")
	f.Add("pw", "bcrypt_sha256$$2b$04$Lelt/md8hHNWc/rCViZmsulLtWVANVsCRm3bZG7ltRARo6XpMyo2G")
	f.Add("pw", "argon2$argon2i$v=19$m=256,t=1,p=2$c2Vhc2FsdHNlYXNhbHQ$8oN6JcIgSUgDQR9jNHEkKg")
	f.Fuzz(func(t *testing.T, pw, encoded string) {
		if strings.Contains(encoded, "m=") && len(encoded) > 400 {
			return
		}
		ok, up := CheckPassword(pw, encoded)
		if up && !ok {
			t.Fatal("upgrade without a match")
		}
		// What the importer lets through is what CheckPassword can verify.
		if ok && CheckableHash(encoded) != nil {
			t.Fatalf("CheckPassword verified %q, CheckableHash refuses it", encoded)
		}
	})
}

// FuzzParseToken: arbitrary tokens never panic and are never accepted.
func FuzzParseToken(f *testing.F) {
	tk := &JWT{Key: []byte("k-0123456789-abcdefghijklmnopqrstuvwxyz"), AccessTTL: time.Minute, RefreshTTL: time.Hour, Now: time.Now}
	s, _, _ := tk.Mint(1, Access)
	f.Add(s)
	f.Add("eyJhbGciOiJub25lIn0.eyJ1c2VyX2lkIjoxfQ.")
	f.Add("a.b.c")
	f.Fuzz(func(t *testing.T, token string) {
		c, err := tk.Parse(token, "")
		if err == nil && token != s {
			// Only a token signed with the key can pass; the fuzzer cannot forge HMAC.
			if c.UserID != 1 {
				t.Fatalf("forged token accepted: %q", token)
			}
		}
	})
}
