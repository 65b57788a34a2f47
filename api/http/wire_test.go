package apihttp

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
)

var updateWire = flag.Bool("update-wire", false, "rewrite testdata/wire.golden from the server's answers")

// wireCase is one raw request: what a client sends on the wire.
type wireCase struct {
	name, request string
}

// The requests the hot paths answer, and their neighbours (a 304, HEAD, an
// allowed origin, a bad Host, a 404, a 405, a preflight, a client's request
// id, a trailing slash or not), so that a faster path shows any byte it
// changes.
var wireCases = []wireCase{
	{"health", "GET /api/health/ HTTP/1.1\r\nHost: api.example.com\r\n\r\n"},
	{"departments", "GET /api/departments/ HTTP/1.1\r\nHost: api.example.com\r\n\r\n"},
	{"departments again (from the cache)", "GET /api/departments/ HTTP/1.1\r\nHost: api.example.com\r\n\r\n"},
	{"departments, no slash", "GET /api/departments HTTP/1.1\r\nHost: api.example.com\r\n\r\n"},
	{"departments page 2", "GET /api/departments/?page_size=3&page=2 HTTP/1.1\r\nHost: localhost:8000\r\n\r\n"},
	{"department", "GET /api/departments/05/ HTTP/1.1\r\nHost: api.example.com\r\n\r\n"},
	{"department, HEAD", "HEAD /api/departments/05/ HTTP/1.1\r\nHost: api.example.com\r\n\r\n"},
	{"unknown department", "GET /api/departments/00/ HTTP/1.1\r\nHost: api.example.com\r\n\r\n"},
	{"municipalities by department", "GET /api/municipalities/?department=05 HTTP/1.1\r\nHost: api.example.com\r\n\r\n"},
	{"municipalities by department, again", "GET /api/municipalities/?department=05 HTTP/1.1\r\nHost: api.example.com\r\n\r\n"},
	{"municipalities by search", "GET /api/municipalities/?search=san HTTP/1.1\r\nHost: api.example.com\r\n\r\n"},
	{"municipalities, bad filter", "GET /api/municipalities/?department=5 HTTP/1.1\r\nHost: api.example.com\r\n\r\n"},
	{"nested municipalities", "GET /api/departments/05/municipalities/?page=2 HTTP/1.1\r\nHost: www.example.org\r\n\r\n"},
	{"municipality", "GET /api/municipalities/05001/ HTTP/1.1\r\nHost: api.example.com\r\n\r\n"},
	{"if-none-match", "GET /api/departments/05/ HTTP/1.1\r\nHost: api.example.com\r\nIf-None-Match: W/\"x\", W/\"3c4zuyyvp6kbj\"\r\n\r\n"},
	{"if-none-match *", "GET /api/municipalities/?department=05 HTTP/1.1\r\nHost: api.example.com\r\nIf-None-Match: *\r\n\r\n"},
	{"if-none-match, another tag", "GET /api/departments/05/ HTTP/1.1\r\nHost: api.example.com\r\nIf-None-Match: \"3c4zuyyvp6kbk\"\r\n\r\n"},
	{"allowed origin", "GET /api/departments/05/ HTTP/1.1\r\nHost: api.example.com\r\nOrigin: https://app.example.com\r\n\r\n"},
	{"other origin", "GET /api/departments/05/ HTTP/1.1\r\nHost: api.example.com\r\nOrigin: https://evil.example.net\r\n\r\n"},
	{"preflight", "OPTIONS /api/departments/ HTTP/1.1\r\nHost: api.example.com\r\nOrigin: https://app.example.com\r\nAccess-Control-Request-Method: GET\r\n\r\n"},
	{"options", "OPTIONS /api/departments/ HTTP/1.1\r\nHost: api.example.com\r\n\r\n"},
	{"client request id", "GET /api/departments/05/ HTTP/1.1\r\nHost: api.example.com\r\nX-Request-ID: abc-123.x:y\r\n\r\n"},
	{"bad host", "GET /api/departments/ HTTP/1.1\r\nHost: evil.example.net\r\n\r\n"},
	{"not found", "GET /api/nothing/ HTTP/1.1\r\nHost: api.example.com\r\n\r\n"},
	{"method not allowed", "DELETE /api/departments/ HTTP/1.1\r\nHost: api.example.com\r\n\r\n"},
	{"anonymous users/me", "GET /api/users/me/ HTTP/1.1\r\nHost: api.example.com\r\n\r\n"},
	{"bad token", "GET /api/departments/ HTTP/1.1\r\nHost: api.example.com\r\nAuthorization: Bearer x.y.z\r\n\r\n"},
	{"users/me", "GET /api/users/me/ HTTP/1.1\r\nHost: api.example.com\r\nAuthorization: Bearer {{access}}\r\n\r\n"},
	{"users/me again", "GET /api/users/me/ HTTP/1.1\r\nHost: api.example.com\r\nAuthorization: Bearer {{access}}\r\n\r\n"},
	{"departments as a user", "GET /api/departments/05/ HTTP/1.1\r\nHost: api.example.com\r\nAuthorization: Bearer {{access}}\r\n\r\n"},
}

// What changes from run to run: the date, generated request ids, the user's
// id and timestamps, and in log lines the time and latency.
var wireVolatile = []struct {
	re   *regexp.Regexp
	repl string
}{
	{regexp.MustCompile(`(?m)^Date: .*\r$`), "Date: DATE\r"},
	{regexp.MustCompile(`(?m)^X-Request-Id: [0-9a-f]{32}\r$`), "X-Request-Id: GENERATED\r"},
	{regexp.MustCompile(`"request_id":"[0-9a-f]{32}"`), `"request_id":"GENERATED"`},
	{regexp.MustCompile(`"(id|user_id)":\d+`), `"$1":ID`},
	{regexp.MustCompile(`"(date_joined|last_login|time)":"[^"]*"`), `"$1":"TIME"`},
	{regexp.MustCompile(`"latency_ms":[0-9.e-]+`), `"latency_ms":LATENCY`},
}

var (
	contentLength = regexp.MustCompile(`(?m)^Content-Length: \d+\r$`)
	logBytes      = regexp.MustCompile(`"bytes":\d+`)
)

// TestWireGolden pins, byte for byte, what the server sends on the wire
// through net/http (status line, every header and its order, body) and the
// access log line of each request, against testdata/wire.golden (recorded
// from the server before the hot paths were made faster). -update-wire
// rewrites the file.
func TestWireGolden(t *testing.T) {
	ts := newTestServer(t, nil)
	mustUser(t, ts, "wire@example.com", false)
	access, _ := login(t, ts, "wire@example.com", goodPassword)
	ts.Log.mu.Lock()
	ts.Log.b.Reset()
	ts.Log.mu.Unlock()
	srv := httptest.NewServer(ts)
	defer srv.Close()
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	br := bufio.NewReader(conn)
	var out strings.Builder
	for _, c := range wireCases {
		raw := strings.ReplaceAll(c.request, "{{access}}", access)
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(conn, raw); err != nil {
			t.Fatal(err)
		}
		// One keep-alive connection for all: the answer is read up to its
		// end (Content-Length; none after HEAD and 304) as sent.
		got := readRawResponse(t, br, strings.HasPrefix(raw, "HEAD "))
		line := waitLogLine(t, ts)
		if strings.Contains(got, `"date_joined":`) { // its length varies with the timestamps'
			got = contentLength.ReplaceAllString(got, "Content-Length: N\r")
			line = logBytes.ReplaceAllString(line, `"bytes":N`)
		}
		fmt.Fprintf(&out, "=== %s\n%s\n--- log\n%s\n", c.name, got, line)
	}
	text := out.String()
	for _, v := range wireVolatile {
		text = v.re.ReplaceAllString(text, v.repl)
	}
	const golden = "testdata/wire.golden"
	if *updateWire {
		if err := os.WriteFile(golden, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if text != string(want) {
		gl, wl := strings.Split(text, "\n"), strings.Split(string(want), "\n")
		for i := 0; i < len(gl) || i < len(wl); i++ {
			var g, w string
			if i < len(gl) {
				g = gl[i]
			}
			if i < len(wl) {
				w = wl[i]
			}
			if g != w {
				t.Fatalf("wire answers differ from %s at line %d:\n got: %q\nwant: %q", golden, i+1, g, w)
			}
		}
	}
}

// readRawResponse reads one response's bytes as they came (headers and
// body), using net/http's parser only to find where it ends.
func readRawResponse(t *testing.T, br *bufio.Reader, head bool) string {
	t.Helper()
	// Read the header block line by line, so that nothing past it is buffered.
	var hdr strings.Builder
	for {
		l, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		hdr.WriteString(l)
		if l == "\r\n" {
			break
		}
	}
	resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(hdr.String())), nil)
	if err != nil {
		t.Fatal(err)
	}
	body := ""
	if !head && resp.ContentLength > 0 {
		b := make([]byte, resp.ContentLength)
		if _, err := io.ReadFull(br, b); err != nil {
			t.Fatal(err)
		}
		body = string(b)
	}
	if resp.ContentLength < 0 && !head && resp.StatusCode != http.StatusNotModified && resp.StatusCode != http.StatusNoContent {
		t.Fatalf("an answer without Content-Length: %q", hdr.String())
	}
	return hdr.String() + body
}

// waitLogLine returns the access log's lines so far (the one of the request
// just answered: mwLog writes it after the answer) and clears the log.
func waitLogLine(t *testing.T, ts *testServer) string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		ts.Log.mu.Lock()
		s := ts.Log.b.String()
		if strings.HasSuffix(s, "\n") {
			ts.Log.b.Reset()
			ts.Log.mu.Unlock()
			return strings.TrimSuffix(s, "\n")
		}
		ts.Log.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatal("no access log line")
		}
		time.Sleep(time.Millisecond)
	}
}
