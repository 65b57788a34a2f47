package apihttp

import (
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
)

// signRaw signs payload (any bytes, not necessarily JSON) as an HS256 token
// with the test secret: a token only the server could have minted, whatever
// its claims say.
func signRaw(payload []byte) string {
	enc := base64.RawURLEncoding
	s := enc.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." + enc.EncodeToString(payload)
	m := hmac.New(sha256.New, []byte(testSecret))
	m.Write([]byte(s))
	return s + "." + enc.EncodeToString(m.Sum(nil))
}

// TestRefreshWithoutIat: SimpleJWT needs no iat; a validly signed refresh
// token without one is blacklisted and rotated like any other.
func TestRefreshWithoutIat(t *testing.T) {
	ts := newTestServer(t, map[string]string{"ROTATE_REFRESH_TOKENS": "1"})
	u := mustUser(t, ts, "ana@example.com", false)
	tok := func(jti string) string {
		b, _ := json.Marshal(map[string]any{"token_type": "refresh", "exp": time.Now().Add(time.Hour).Unix(), "jti": jti, "user_id": u.ID})
		return signRaw(b)
	}
	w := ts.do(t, req{Method: "POST", URL: "/api/token/refresh/", Body: jsonBody(map[string]string{"refresh": tok("noiat1")})})
	if m := decode(t, w); w.Code != 200 || m["access"] == nil || m["refresh"] == nil {
		t.Fatalf("refresh without iat = %d %s", w.Code, w.Body.String())
	}
	// Rotation blacklisted it.
	wantError(t, ts.do(t, req{Method: "POST", URL: "/api/token/refresh/", Body: jsonBody(map[string]string{"refresh": tok("noiat1")})}), 401, "token_not_valid")
	if w := ts.do(t, req{Method: "POST", URL: "/api/token/blacklist/", Body: jsonBody(map[string]string{"refresh": tok("noiat2")})}); w.Code != 200 {
		t.Fatalf("blacklist without iat = %d %s", w.Code, w.Body.String())
	}
	wantError(t, ts.do(t, req{Method: "POST", URL: "/api/token/verify/", Body: jsonBody(map[string]string{"token": tok("noiat2")})}), 401, "token_not_valid")
	var created []sql.NullTime
	if err := ts.DB.Select(&created, `SELECT created_at FROM token_outstanding WHERE jti LIKE 'noiat%' ORDER BY jti`); err != nil {
		t.Fatal(err)
	}
	if len(created) != 2 || created[0].Valid || created[1].Valid {
		t.Errorf("outstanding rows without iat: %v, want two with created_at NULL (as SimpleJWT records them)", created)
	}
}

// tokenEndpoints are the requests FuzzTokenClaims sends a token to.
var tokenEndpoints = []func(tok string) req{
	func(tok string) req {
		return req{Method: "POST", URL: "/api/token/refresh/", Body: jsonBody(map[string]string{"refresh": tok})}
	},
	func(tok string) req {
		return req{Method: "POST", URL: "/api/token/verify/", Body: jsonBody(map[string]string{"token": tok})}
	},
	func(tok string) req {
		return req{Method: "POST", URL: "/api/token/blacklist/", Body: jsonBody(map[string]string{"refresh": tok})}
	},
	func(tok string) req { return req{URL: "/api/users/me/", Header: bearer(tok)} },
}

// claimShape builds a claims object from fuzzed parts: shape's bits say
// which claims are present and whether exp and iat are numbers or strings;
// user_id is raw JSON when it parses, else a string.
func claimShape(shape uint8, tokenType string, exp, iat int64, jti, userID string) []byte {
	c := map[string]any{}
	if shape&1 != 0 {
		c["token_type"] = tokenType
	}
	for i, v := range []int64{exp, iat} {
		name := []string{"exp", "iat"}[i]
		switch (shape >> (1 + 2*i)) & 3 {
		case 1:
			c[name] = v
		case 2:
			c[name] = strconv.FormatInt(v, 10)
		case 3:
			c[name] = float64(v) + 0.5
		}
	}
	if shape&32 != 0 {
		c["jti"] = jti
	}
	if shape&64 != 0 {
		var v any
		if json.Unmarshal([]byte(userID), &v) == nil {
			c["user_id"] = v
		} else {
			c["user_id"] = userID
		}
	}
	b, _ := json.Marshal(c)
	return b
}

// FuzzTokenClaims sends validly signed tokens of every claim shape (missing,
// extra, wrong-typed, out-of-range claims; with shape's top bit, raw
// payloads that need not be JSON objects at all) to every token endpoint:
// the answer is never a 5xx, and an error is always the JSON envelope.
func FuzzTokenClaims(f *testing.F) {
	now := time.Now().Unix()
	all := uint8(1 | 1<<1 | 1<<3 | 32 | 64)
	for ep := range tokenEndpoints {
		e := uint8(ep)
		f.Add(e, all, "refresh", now+3600, now, "a1", "1", []byte(nil))
		f.Add(e, all&^(3<<3), "refresh", now+3600, now, "a2", "1", []byte(nil)) // no iat
		f.Add(e, all&^(3<<3), "access", now+3600, now, "a3", "1", []byte(nil))
		f.Add(e, all|2<<3, "refresh", now+3600, now, "a4", "1", []byte(nil))   // iat as a string
		f.Add(e, all|3<<1, "refresh", now+3600, now, "a5", `"1"`, []byte(nil)) // exp with a fraction
		f.Add(e, all, "refresh", now+3600, now+86400, "a6", "1", []byte(nil))  // iat in the future
		f.Add(e, all, "refresh", int64(99999999999999), now, "a7", "1", []byte(nil))
		f.Add(e, all, "refresh", now+3600, now, strings.Repeat("j", 300), "1", []byte(nil))
		f.Add(e, all, "refresh", now+3600, now, "a\x00b", "99999", []byte(nil))
		f.Add(e, all, "refresh", now+3600, now, "a8", "1e400", []byte(nil))
		f.Add(e, all, "refresh", now+3600, now, "a9", `[1]`, []byte(nil))
		f.Add(e, all, "sliding", now+3600, now, "a10", "-1", []byte(nil))
		f.Add(e, uint8(0), "", int64(0), int64(0), "", "", []byte(nil))
		for _, raw := range []string{`{"token_type":["refresh"],"exp":1e300,"jti":7,"user_id":1}`, `[]`, `null`, `"refresh"`, `not json`,
			fmt.Sprintf(`{"token_type":"refresh","exp":%d,"jti":"r1","user_id":1,"extra":{"x":[1,2]},"nbf":99999999999}`, now+3600)} {
			f.Add(e, uint8(128), "", int64(0), int64(0), "", "", []byte(raw))
		}
	}
	ts := newTestServer(f, map[string]string{"ROTATE_REFRESH_TOKENS": "1"})
	mustUser(f, ts, "ana@example.com", false)
	f.Fuzz(func(t *testing.T, ep, shape uint8, tokenType string, exp, iat int64, jti, userID string, raw []byte) {
		payload := raw
		if shape&128 == 0 {
			payload = claimShape(shape, tokenType, exp, iat, jti, userID)
		}
		r := tokenEndpoints[int(ep)%len(tokenEndpoints)](signRaw(payload))
		w := ts.do(t, r)
		if w.Code >= 500 {
			t.Fatalf("%s %s with claims %s = %d %s", r.Method, r.URL, payload, w.Code, w.Body.String())
		}
		if w.Code >= 400 {
			if m := decode(t, w); m["code"] == nil || m["detail"] == nil {
				t.Fatalf("error without the envelope: %s", w.Body.String())
			}
		}
	})
}
