package apihttp

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"runtime/debug"
	"strconv"
	"testing"

	"github.com/isis-project/isis/internal/testenv"

	"github.com/labstack/echo/v4"
)

// TestConnStackSmall: answering a body larger than net/http's buffers (the
// municipality list, 4.5 KB) does not grow the connection goroutine's stack
// past 8 KiB. Written from under the middleware chain it grew to 16 KiB,
// 8 MiB more at a thousand keep-alive connections (see writeBody). The
// measure is the growth of the stacks in use, per connection, while 200
// connections each get one answer (the collector off: no stack shrinks).
func TestConnStackSmall(t *testing.T) {
	if testenv.Race {
		t.Skip("the race detector's instrumentation deepens every frame: measured by the ordinary run")
	}
	ts := newTestServer(t, nil)
	srv := httptest.NewServer(ts)
	defer srv.Close()
	const n = 200
	var conns []net.Conn
	for range n {
		c, err := net.Dial("tcp", srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns = append(conns, c)
	}
	// A first answer fills the cache: the measured ones are hits.
	if w := ts.do(t, req{URL: "/api/municipalities/?department=05"}); w.Code != 200 || w.Body.Len() < 4096 {
		t.Fatalf("municipalities = %d, %d bytes", w.Code, w.Body.Len())
	}
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for _, c := range conns {
		fmt.Fprintf(c, "GET /api/municipalities/?department=05 HTTP/1.1\r\nHost: api.example.com\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	runtime.ReadMemStats(&after)
	if per := (after.StackInuse - before.StackInuse) / n; per >= 8<<10 {
		t.Errorf("the stacks grew by %d bytes per connection (8 KiB or more: the answer's write is too deep)", per)
	} else {
		t.Logf("the stacks grew by %d bytes per connection", per)
	}
}

// FuzzDeferredBody: an answer whose body waits for writeBody is the one
// Echo's Blob writes at once: status, headers and body, HEAD included.
func FuzzDeferredBody(f *testing.F) {
	f.Add(200, []byte(`{"status":"ok"}`), false)
	f.Add(201, []byte{}, false)
	f.Add(304, []byte(`{}`), false)
	f.Add(200, make([]byte, 9000), true)
	e := echo.New()
	f.Fuzz(func(t *testing.T, status int, body []byte, head bool) {
		if status < 200 || status > 599 {
			return
		}
		method := http.MethodGet
		if head {
			method = http.MethodHead
		}
		answer := func(deferred bool) (*httptest.ResponseRecorder, *echo.Response) {
			w := httptest.NewRecorder()
			c := e.NewContext(httptest.NewRequest(method, "/x", nil), &reqState{ResponseWriter: w})
			if deferred {
				if err := writeBlobJSON(c, status, body); err != nil {
					t.Fatal(err)
				}
				writeBody(c)
			} else {
				h := c.Response().Header()
				h["Content-Type"] = contentTypeJSON
				h["Content-Length"] = []string{strconv.Itoa(len(body))}
				_ = c.Blob(status, echo.MIMEApplicationJSON, body)
			}
			return w, c.Response()
		}
		got, gres := answer(true)
		want, wres := answer(false)
		if gres.Status != wres.Status || gres.Size != wres.Size || !gres.Committed { // the log line's status and bytes
			t.Fatalf("deferred: status %d size %d; at once: %d %d", gres.Status, gres.Size, wres.Status, wres.Size)
		}
		if got.Code != want.Code || !bytes.Equal(got.Body.Bytes(), want.Body.Bytes()) {
			t.Fatalf("deferred: %d %q; at once: %d %q", got.Code, got.Body, want.Code, want.Body)
		}
		if g, w := fmt.Sprint(got.Header()), fmt.Sprint(want.Header()); g != w {
			t.Fatalf("headers %s, want %s", g, w)
		}
	})
}
