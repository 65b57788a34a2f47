package apihttp

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/isis-project/isis/api"
)

// TestLoginHashOutOfBounds: a user whose stored (imported) hash asks for
// more work than the bounds (this one took 190 s and 1.1 GB per login) is
// answered like a wrong password, at once, and the refusal is logged with
// the user id, never the hash.
func TestLoginHashOutOfBounds(t *testing.T) {
	ts := newTestServer(t, nil)
	const hash = "argon2$argon2id$v=19$m=1048576,t=16,p=255$c29tZXNhbHRzb21lc2FsdA$AAAAAAAAAAAAAAAAAAAAAA"
	u := &api.User{Email: "heavy@example.com", Password: hash, IsActive: true}
	if err := ts.Users.CreateUser(context.Background(), u); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	w := ts.do(t, req{Method: "POST", URL: "/api/token/", Body: jsonBody(map[string]string{"email": "heavy@example.com", "password": "lètmein"})})
	took := time.Since(start)
	wrong := ts.do(t, req{Method: "POST", URL: "/api/token/", Body: jsonBody(map[string]string{"email": "nobody@example.com", "password": "lètmein"})})
	body := func(s string) string { return s[:strings.Index(s, `"request_id"`)] }
	if w.Code != 401 || body(w.Body.String()) != body(wrong.Body.String()) || took > 5*time.Second {
		t.Errorf("login = %d %s after %v; a wrong password: %d %s", w.Code, w.Body.String(), took, wrong.Code, wrong.Body.String())
	}
	ts.Log.mu.Lock()
	logs := ts.Log.b.String()
	ts.Log.mu.Unlock()
	if !strings.Contains(logs, `"msg":"password hash refused"`) || !strings.Contains(logs, `"user_id":`+strconv.FormatInt(u.ID, 10)) ||
		!strings.Contains(logs, "memory_cost m=1048576 out of bounds") || strings.Contains(logs, "c29tZXNhbHRzb21lc2FsdA") {
		t.Errorf("log: %s", logs)
	}
}
