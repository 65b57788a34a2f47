package apihttp

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// rawServer serves a Server without a database (enough for the root, the
// host check and authentication) over real loopback HTTP.
func rawServer(t *testing.T, over map[string]string) (addr string, logs *syncBuffer) {
	t.Helper()
	logs = &syncBuffer{}
	s := NewServer(testEnv(t, over), slog.New(slog.NewJSONHandler(logs, nil)), Services{AccessLog: logs})
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String(), logs
}

// rawRequest writes head (request line and headers, CRLF-separated, no
// final blank line) on a fresh connection and reads the answer.
func rawRequest(t *testing.T, addr, head string) (*http.Response, []byte) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, head+"\r\nConnection: close\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("%q: %v", head, err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res, body
}

// TestMalformedHeaders: header values net/http lets through to the server
// (tabs and bytes over 0x7f in Authorization, a Host that is not a
// host[:port]) get the JSON error envelope; the ones net/http refuses itself
// (control characters, a Host it cannot parse) get its plain "400 Bad
// Request", as docs/security.md says, and never reach a handler
// or the access log.
func TestMalformedHeaders(t *testing.T) {
	addr, logs := rawServer(t, map[string]string{"ALLOWED_HOSTS": "api.example.com,[::1]"})
	const host = "Host: api.example.com\r\n"
	for _, tc := range []struct {
		head   string
		status int
		code   string // "" means net/http's own plain-text answer
	}{
		// Reach the server: the envelope.
		{"GET /api/ HTTP/1.1\r\nHost: api.example.com:abc", 400, "bad_request"},
		{"GET /api/ HTTP/1.1\r\nHost: api.example.com:", 400, "bad_request"},
		{"GET /api/ HTTP/1.1\r\nHost: api.example.com:80:80", 400, "bad_request"},
		{"GET /api/ HTTP/1.1\r\nHost: api%01.example.com", 400, "bad_request"},
		{"GET /api/ HTTP/1.1\r\nHost: api_x.example.com", 400, "bad_request"},
		{"GET /api/ HTTP/1.1\r\nHost: [::1", 400, "bad_request"},
		{"GET /api/ HTTP/1.1\r\nHost: [::1]x", 400, "bad_request"},
		{"GET /api/ HTTP/1.0", 400, "bad_request"}, // no Host at all
		{"GET /api/users/me/ HTTP/1.1\r\n" + host + "Authorization: Bearer\tabc", 401, "token_not_valid"},
		{"GET /api/users/me/ HTTP/1.1\r\n" + host + "Authorization: Bearer \x80\xff\xfe", 401, "token_not_valid"},
		{"GET /api/users/me/ HTTP/1.1\r\n" + host + "Authorization: Bearer a\tb", 401, "token_not_valid"},
		{"GET /api/users/me/ HTTP/1.1\r\n" + host + "Authorization: \xc3\xa9 x", 401, "not_authenticated"},
		{"GET /api/ HTTP/1.1\r\n" + host + "X-Request-ID: \xff\x80", 200, ""},
		// Refused by net/http before the server sees them.
		{"GET /api/ HTTP/1.1\r\nHost: api.example.com\x01", 400, ""},
		{"GET /api/ HTTP/1.1\r\nHost: api.example.com\x7f", 400, ""},
		{"GET /api/ HTTP/1.1\r\nHost: api.ex\tample.com", 400, ""},
		{"GET /api/ HTTP/1.1\r\nHost: api.ex\xc3\xa4mple.com", 400, ""},
		{"GET /api/ HTTP/1.1\r\nHost: a\r\nHost: b", 400, ""},
		{"GET /api/ HTTP/1.1", 400, ""}, // HTTP/1.1 without Host
		{"GET /api/users/me/ HTTP/1.1\r\n" + host + "Authorization: Bearer \x01abc", 400, ""},
		{"GET /api/users/me/ HTTP/1.1\r\n" + host + "Authorization: Bearer a\x00b", 400, ""},
		{"GET /api/users/me/ HTTP/1.1\r\n" + host + "Authorization: Bearer a\x0bb", 400, ""},
		{"GET /api/users/me/ HTTP/1.1\r\n" + host + "Authorization: Bearer a\rb", 400, ""},
		{"GET /api/users/me/ HTTP/1.1\r\n" + host + "Author\x01zation: x", 400, ""},
	} {
		res, body := rawRequest(t, addr, tc.head)
		if res.StatusCode != tc.status {
			t.Errorf("%q: status %d, want %d: %s", tc.head, res.StatusCode, tc.status, body)
			continue
		}
		ct := res.Header.Get("Content-Type")
		if tc.status == 200 {
			continue
		}
		if tc.code == "" {
			if !strings.HasPrefix(ct, "text/plain") || !strings.HasPrefix(string(body), "400 Bad Request") {
				t.Errorf("%q: want net/http's own answer, got %s %q", tc.head, ct, body)
			}
			continue
		}
		var env struct{ Detail, Code, RequestID string }
		if err := json.Unmarshal(body, &struct {
			Detail    *string `json:"detail"`
			Code      *string `json:"code"`
			RequestID *string `json:"request_id"`
		}{&env.Detail, &env.Code, &env.RequestID}); err != nil || !strings.HasPrefix(ct, "application/json") {
			t.Errorf("%q: not the JSON envelope: %s %q (%v)", tc.head, ct, body, err)
			continue
		}
		if env.Code != tc.code || env.Detail == "" || env.RequestID == "" {
			t.Errorf("%q: envelope %s, want code %s", tc.head, body, tc.code)
		}
	}
	lines := logs.lines(t) // every line is JSON, whatever bytes came in
	if len(lines) != 13 {
		t.Errorf("%d access log lines, want one per request that reached the server (13)", len(lines))
	}
	for _, l := range lines {
		if fmt.Sprint(l["client_ip"]) != "127.0.0.1" {
			t.Errorf("log line %v", l)
		}
	}
}

// TestServeContentErrorsEnveloped: the answers http.ServeContent makes for
// static files on its own (416 for a Range it cannot satisfy, 412 for a
// failed precondition) come in the JSON envelope too, not as text/plain.
func TestServeContentErrorsEnveloped(t *testing.T) {
	addr, _ := rawServer(t, nil)
	const get = "GET /static/docs/index.html HTTP/1.1\r\nHost: api.example.com\r\n"
	for _, tc := range []struct {
		head   string
		status int
		code   string
	}{
		{get + "Range: bytes=99999999-", 416, "range_not_satisfiable"},
		{get + "Range: bytes=\xff", 416, "range_not_satisfiable"},
		{get + "Range: bytes=5-1", 416, "range_not_satisfiable"},
		{get + "If-Match: \"nope\"", 412, "precondition_failed"},
		{get + "If-Match: \xff", 412, "precondition_failed"},
		{get + "If-Unmodified-Since: Mon, 01 Jan 1990 00:00:00 GMT", 412, "precondition_failed"},
		{get + "Range: bytes=0-9", 206, ""},
		{get + "If-Modified-Since: \xff", 200, ""},
	} {
		res, body := rawRequest(t, addr, tc.head)
		if res.StatusCode != tc.status {
			t.Errorf("%q: status %d, want %d", tc.head, res.StatusCode, tc.status)
			continue
		}
		if tc.code == "" {
			continue
		}
		var env map[string]any
		if err := json.Unmarshal(body, &env); err != nil || env["code"] != tc.code || env["detail"] == "" ||
			env["request_id"] != res.Header.Get("X-Request-ID") || !strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
			t.Errorf("%q: %s %q, want the envelope with code %s", tc.head, res.Header.Get("Content-Type"), body, tc.code)
		}
	}
}
