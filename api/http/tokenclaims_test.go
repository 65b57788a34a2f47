package apihttp

import (
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"fmt"
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

// FuzzTokenClaims sends validly signed tokens of every claim shape (missing,
// extra, wrong-typed, out-of-range claims, payloads that are not even JSON
// objects) to every token endpoint: the answer is never a 5xx, and always
// the JSON error envelope when it is an error.
func FuzzTokenClaims(f *testing.F) {
	now := time.Now().Unix()
	for _, c := range []string{
		`{"token_type":"refresh","exp":%d,"iat":%d,"jti":"a1","user_id":1}`,
		`{"token_type":"refresh","exp":%d,"jti":"a2","user_id":1}`,
		`{"token_type":"access","exp":%d,"jti":"a3","user_id":1}`,
		`{"token_type":"refresh","exp":%d,"iat":"yesterday","jti":"a4","user_id":1}`,
		`{"token_type":"refresh","exp":"%d","jti":"a5","user_id":"1"}`,
		`{"token_type":"refresh","exp":%d,"jti":7,"user_id":1}`,
		`{"token_type":"refresh","exp":%d,"jti":"a6","user_id":99999}`,
		`{"token_type":"refresh","exp":%d,"jti":"a7","user_id":-1}`,
		`{"token_type":"refresh","exp":%d,"jti":"a8","user_id":1e400}`,
		`{"token_type":"refresh","exp":1e300,"jti":"a9","user_id":1}`,
		`{"token_type":"refresh","exp":99999999999999,"jti":"a10","user_id":1}`,
		`{"token_type":"refresh","exp":%d,"nbf":99999999999,"jti":"a11","user_id":1}`,
		`{"token_type":"refresh","exp":%d,"jti":"` + strings.Repeat("j", 300) + `","user_id":1}`,
		`{"token_type":"refresh","exp":%d,"jti":"a\u0000b","user_id":1}`,
		`{"token_type":["refresh"],"exp":%d,"jti":"a12","user_id":1}`,
		`{"token_type":"refresh","exp":%d,"jti":"a13","user_id":1,"extra":{"x":[1,2]}}`,
		`{"token_type":"refresh","exp":null,"jti":null,"user_id":null}`,
		`{}`, `[]`, `null`, `"refresh"`, `not json`,
	} {
		n := strings.Count(c, "%d")
		args := []any{now + 3600, now}[:n]
		for ep := range tokenEndpoints {
			f.Add([]byte(fmt.Sprintf(c, args...)), uint8(ep))
		}
	}
	ts := newTestServer(f, map[string]string{"ROTATE_REFRESH_TOKENS": "1"})
	mustUser(f, ts, "ana@example.com", false)
	f.Fuzz(func(t *testing.T, payload []byte, ep uint8) {
		r := tokenEndpoints[int(ep)%len(tokenEndpoints)](signRaw(payload))
		w := ts.do(t, r)
		if w.Code >= 500 {
			t.Fatalf("%s %s with claims %q = %d %s", r.Method, r.URL, payload, w.Code, w.Body.String())
		}
		if w.Code >= 400 {
			if m := decode(t, w); m["code"] == nil || m["detail"] == nil {
				t.Fatalf("error without the envelope: %s", w.Body.String())
			}
		}
	})
}
