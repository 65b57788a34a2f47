package apihttp

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"hash/crc32"
	"image"
	"image/color"
	"image/png"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/isis-project/isis/api"
	"github.com/isis-project/isis/api/media"
)

// TestAvatarContent: an avatar is judged by decoding it, not by its first
// bytes: files that only start like an image, a decompression bomb and an
// image with another file after it are refused and nothing is stored; a
// JPEG followed by other data (as cameras write) is kept without it.
func TestAvatarContent(t *testing.T) {
	ts := newTestServer(t, map[string]string{"MAX_IMAGE_PIXELS": "40000"})
	root := t.TempDir()
	ts.Media = &media.Disk{Root: root, URLPrefix: "/media/"}
	mustUser(t, ts, "ana@example.com", false)
	tok, _ := login(t, ts, "ana@example.com", goodPassword)
	html := []byte("<html><script>alert(document.cookie)</script></html>")
	zip := append([]byte("PK\x03\x04\x14\x00\x00\x00\x08\x00"), bytes.Repeat([]byte("z"), 64)...)
	for _, c := range []struct {
		name string
		file []byte
		msg  string
	}{
		{"png signature then HTML", append([]byte("\x89PNG\r\n\x1a\n"), html...), "valid image"},
		{"jpeg signature then ZIP", append([]byte("\xff\xd8\xff\xe0"), zip...), "valid image"},
		{"png declaring 100000x100000", pngDeclaring(100000, 100000), "100000×100000 pixels"},
		{"png over MAX_IMAGE_PIXELS", encodeImage(png.Encode, 201, 200), "201×200 pixels, more than the 40000 allowed"},
		{"png then HTML", append(append([]byte{}, pngFile...), html...), "after the end of the image"},
		{"png cut short", pngFile[:len(pngFile)-30], "valid image"},
	} {
		m := wantError(t, upload(t, ts, tok, "file", "a.png", c.file), 400, "invalid")
		if msg := fmt.Sprint(m["errors"]); !strings.Contains(msg, c.msg) {
			t.Errorf("%s: errors = %s, want %q", c.name, msg, c.msg)
		}
	}
	if me := decode(t, ts.do(t, req{URL: "/api/profiles/me/", Header: bearer(tok)})); me["avatar_url"] != nil {
		t.Fatalf("a refused file became the avatar: %v", me["avatar_url"])
	}
	w := upload(t, ts, tok, "file", "photo.jpg", append(append([]byte{}, jpegFile...), zip...))
	if w.Code != 200 {
		t.Fatalf("JPEG with trailing data = %d %s", w.Code, w.Body.String())
	}
	u, _ := url.Parse(decode(t, w)["avatar_url"].(string))
	if got := ts.do(t, req{URL: u.Path}); !bytes.Equal(got.Body.Bytes(), jpegFile) {
		t.Errorf("served %d bytes, want the %d of the JPEG alone", got.Body.Len(), len(jpegFile))
	}
}

// pngDeclaring is a PNG whose header declares w×h pixels.
func pngDeclaring(w, h uint32) []byte {
	b := bytes.Clone(encodeImage(png.Encode, 1, 1))
	// IHDR is the first chunk: 8 signature + 4 length + 4 type, then width, height.
	copy(b[16:], []byte{byte(w >> 24), byte(w >> 16), byte(w >> 8), byte(w), byte(h >> 24), byte(h >> 16), byte(h >> 8), byte(h)})
	crc := crc32IEEE(b[12:29])
	copy(b[29:], []byte{byte(crc >> 24), byte(crc >> 16), byte(crc >> 8), byte(crc)})
	return b
}

// TestAvatarConcurrentPuts: ten uploads at once leave exactly one object,
// the one the profile points to; DELETE leaves none.
func TestAvatarConcurrentPuts(t *testing.T) {
	for name, setup := range avatarStores(t) {
		t.Run(name, func(t *testing.T) {
			ts := newTestServer(t, nil)
			fetch, count := setup(ts)
			mustUser(t, ts, "ana@example.com", false)
			tok, _ := login(t, ts, "ana@example.com", goodPassword)
			// The ten reach the database together, as under load.
			gate := &gatedAvatars{UserService: ts.Users, n: 10, open: make(chan struct{})}
			ts.Users = gate
			var wg sync.WaitGroup
			codes := make([]int, 10)
			for i := range codes {
				wg.Go(func() { codes[i] = upload(t, ts, tok, "file", "a.png", []byte(pngFile)).Code })
			}
			wg.Wait()
			for i, c := range codes {
				if c != 200 {
					t.Errorf("upload %d = %d", i, c)
				}
			}
			if n := count(); n != 1 {
				t.Errorf("%d objects after 10 concurrent uploads, want 1", n)
			}
			me := decode(t, ts.do(t, req{URL: "/api/profiles/me/", Header: bearer(tok)}))
			if status, body := fetch(me["avatar_url"].(string)); status != 200 || !bytes.Equal(body, pngFile) {
				t.Errorf("the profile's avatar = %d, %d bytes", status, len(body))
			}
			if w := ts.do(t, req{Method: "DELETE", URL: "/api/profiles/me/avatar/", Header: bearer(tok)}); w.Code != 204 {
				t.Fatalf("DELETE = %d", w.Code)
			}
			if n := count(); n != 0 {
				t.Errorf("%d objects after DELETE, want 0", n)
			}
		})
	}
}

// noise is an incompressible PNG of about 4·w·h bytes.
func noise(w, h int) []byte {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	r := rand.New(rand.NewPCG(1, 2))
	for i := range img.Pix {
		img.Pix[i] = uint8(r.Uint32())
	}
	img.Set(0, 0, color.NRGBA{A: 255})
	var b bytes.Buffer
	png.Encode(&b, img)
	return b.Bytes()
}

// slowUpload sends an avatar over a real loopback connection at rate bytes
// a second and returns the answer (nil: the connection ended without one).
func slowUpload(t *testing.T, addr, tok string, file []byte, rate int) *httptest.ResponseRecorder {
	t.Helper()
	body, ctype := multipartBody("file", "a.png", file)
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "PUT /api/profiles/me/avatar/ HTTP/1.1\r\nHost: api.example.com\r\nAuthorization: Bearer %s\r\n"+
		"Content-Type: %s\r\nContent-Length: %d\r\n\r\n", tok, ctype, len(body))
	go func() {
		const chunk = 1024
		for i := 0; i < len(body); i += chunk {
			if _, err := io.WriteString(conn, body[i:min(i+chunk, len(body))]); err != nil {
				return // the server answered and closed
			}
			time.Sleep(time.Second * chunk / time.Duration(rate))
		}
	}()
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Logf("no answer: %v", err)
		return nil
	}
	defer res.Body.Close()
	w := httptest.NewRecorder()
	for k, v := range res.Header {
		w.Header()[k] = v
	}
	if res.Close { // ReadResponse takes "Connection: close" out of the header
		w.Header().Set("Connection", "close")
	}
	w.WriteHeader(res.StatusCode)
	io.Copy(w, res.Body)
	return w
}

// TestAvatarSlowUpload: behind a server whose ReadTimeout is shorter than
// the upload takes (as in production, where it is 30 s), a slow but steady
// upload above UPLOAD_MIN_RATE succeeds; one below it gets 408 with the
// error envelope instead of a connection cut without an answer.
func TestAvatarSlowUpload(t *testing.T) {
	ts := newTestServer(t, map[string]string{"MAX_UPLOAD_BYTES": "65536", "UPLOAD_MIN_RATE": "8192"})
	ts.Media = &media.Disk{Root: t.TempDir(), URLPrefix: "/media/"}
	ts.uploadGrace = 300 * time.Millisecond
	mustUser(t, ts, "ana@example.com", false)
	tok, _ := login(t, ts, "ana@example.com", goodPassword)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: ts, ReadHeaderTimeout: time.Second, ReadTimeout: 500 * time.Millisecond, WriteTimeout: 500 * time.Millisecond}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	file := noise(80, 75) // some 24 KiB: 3 s at the minimum rate
	if len(file) < 20<<10 || len(file) > 30<<10 {
		t.Fatalf("test image of %d bytes", len(file))
	}

	// 24 KiB/s: about a second, twice the ReadTimeout, well within the deadline.
	if w := slowUpload(t, ln.Addr().String(), tok, file, 24<<10); w == nil || w.Code != 200 {
		t.Fatalf("steady upload above the minimum rate: %v", w)
	}
	// 2 KiB/s: it would take 12 s; the deadline (3.4 s) cuts it with a 408.
	start := time.Now()
	w := slowUpload(t, ln.Addr().String(), tok, file, 2<<10)
	t.Logf("slow upload answered after %s", time.Since(start))
	if w == nil {
		t.Fatal("a too slow upload got no answer")
	}
	wantError(t, w, 408, "request_timeout")
	if w.Header().Get("Connection") != "close" {
		t.Errorf("408 without Connection: close")
	}
}

func crc32IEEE(b []byte) uint32 { return crc32.ChecksumIEEE(b) }

// gatedAvatars holds SetAvatar calls until n of them wait (or a second has
// passed), then lets them all run at once against the real database.
type gatedAvatars struct {
	api.UserService
	n    int
	mu   sync.Mutex
	open chan struct{}
}

func (g *gatedAvatars) SetAvatar(ctx context.Context, userID int64, key string) (string, *api.Profile, error) {
	if key != "" {
		g.mu.Lock()
		if g.n--; g.n == 0 {
			close(g.open)
		}
		g.mu.Unlock()
		select {
		case <-g.open:
		case <-time.After(time.Second):
		}
	}
	return g.UserService.SetAvatar(ctx, userID, key)
}
