package apihttp

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/isis-project/isis/api/config"
	"github.com/isis-project/isis/api/media"
	"github.com/isis-project/isis/internal/s3test"
)

// Real images (avatars are decoded in full): 16×12 pixels each.
var (
	pngFile  = encodeImage(png.Encode, 16, 12)
	jpegFile = encodeImage(func(w io.Writer, m image.Image) error { return jpeg.Encode(w, m, nil) }, 16, 12)
	webpFile = mustRead("../media/testdata/avatar-lossy.webp")
)

func gradient(w, h int) image.Image {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.NRGBA{uint8(x * 9), uint8(y * 13), 77, 255})
		}
	}
	return img
}

func encodeImage(enc func(io.Writer, image.Image) error, w, h int) []byte {
	var b bytes.Buffer
	if err := enc(&b, gradient(w, h)); err != nil {
		panic(err)
	}
	return b.Bytes()
}

func mustRead(name string) []byte {
	b, err := os.ReadFile(name)
	if err != nil {
		panic(err)
	}
	return b
}

// multipartBody builds a form with one file field.
func multipartBody(field, filename string, content []byte) (string, string) {
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	fw, _ := w.CreateFormFile(field, filename)
	fw.Write(content)
	w.WriteField("note", "ignored")
	w.Close()
	return b.String(), w.FormDataContentType()
}

func upload(t *testing.T, ts *testServer, tok, field, filename string, content []byte) *httptest.ResponseRecorder {
	body, ctype := multipartBody(field, filename, content)
	return ts.do(t, req{Method: "PUT", URL: "/api/profiles/me/avatar/", Body: body,
		Header: map[string]string{"Authorization": "Bearer " + tok, "Content-Type": ctype}})
}

// avatarStores is the same table run on disk and on a real S3 server.
func avatarStores(t *testing.T) map[string]func(ts *testServer) (fetch func(string) (int, []byte), count func() int) {
	return map[string]func(ts *testServer) (func(string) (int, []byte), func() int){
		"disk": func(ts *testServer) (func(string) (int, []byte), func() int) {
			root := t.TempDir()
			ts.Media = &media.Disk{Root: root, URLPrefix: "/media/"}
			fetch := func(u string) (int, []byte) {
				p, _ := url.Parse(u)
				w := ts.do(t, req{URL: p.Path})
				return w.Code, w.Body.Bytes()
			}
			count := func() int {
				n := 0
				filepath.Walk(root, func(_ string, info os.FileInfo, _ error) error {
					if info != nil && !info.IsDir() {
						n++
					}
					return nil
				})
				return n
			}
			return fetch, count
		},
		"s3": func(ts *testServer) (func(string) (int, []byte), func() int) {
			srv := s3test.Start(t)
			bucket := srv.Bucket(t, "avatars")
			env := map[string]string{"DEBUG": "1", "AWS_STORAGE_BUCKET_NAME": bucket, "AWS_S3_ENDPOINT_URL": srv.Endpoint,
				"AWS_ACCESS_KEY_ID": s3test.AccessKey, "AWS_SECRET_ACCESS_KEY": s3test.SecretKey}
			cfg, err := config.Load(func(k string) string { return env[k] })
			if err != nil {
				t.Fatal(err)
			}
			s, err := media.NewS3(cfg)
			if err != nil {
				t.Fatal(err)
			}
			ts.Media = s
			count := func() int {
				keys, err := s.List(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				return len(keys)
			}
			return func(u string) (int, []byte) { return s3test.Get(t, u) }, count
		},
	}
}

func TestAvatar(t *testing.T) {
	for name, setup := range avatarStores(t) {
		t.Run(name, func(t *testing.T) {
			ts := newTestServer(t, map[string]string{"MAX_UPLOAD_BYTES": "4096"})
			fetch, count := setup(ts)
			mustUser(t, ts, "ana@example.com", false)
			tok, _ := login(t, ts, "ana@example.com", goodPassword)

			w := upload(t, ts, tok, "file", "photo.txt", pngFile) // the name does not matter, the content does
			if w.Code != 200 {
				t.Fatalf("upload = %d %s", w.Code, w.Body.String())
			}
			p := decode(t, w)
			u1, _ := p["avatar_url"].(string)
			if u1 == "" || !strings.HasSuffix(strings.Split(u1, "?")[0], ".png") {
				t.Fatalf("avatar_url = %v", p["avatar_url"])
			}
			if status, body := fetch(u1); status != 200 || !bytes.Equal(body, pngFile) {
				t.Fatalf("GET avatar = %d, %d bytes", status, len(body))
			}
			if me := decode(t, ts.do(t, req{URL: "/api/profiles/me/", Header: bearer(tok)})); me["avatar_url"] == nil {
				t.Error("profile lost the avatar")
			}
			// Replacing stores a new object and deletes the old one.
			for _, f := range [][]byte{jpegFile, webpFile} {
				w = upload(t, ts, tok, "file", "x", f)
				if w.Code != 200 {
					t.Fatalf("replace = %d %s", w.Code, w.Body.String())
				}
			}
			u3 := decode(t, w)["avatar_url"].(string)
			if u3 == u1 || !strings.Contains(u3, ".webp") {
				t.Errorf("replaced avatar_url = %s", u3)
			}
			if n := count(); n != 1 {
				t.Errorf("%d objects stored after two replacements, want 1", n)
			}
			// Refusals: not an image, too large, no file, not multipart, anonymous.
			m := wantError(t, upload(t, ts, tok, "file", "evil.png", []byte("<?php echo 'hi'; ?>")), 400, "invalid")
			if m["errors"].(map[string]any)["file"] == nil {
				t.Errorf("errors = %v", m["errors"])
			}
			wantError(t, upload(t, ts, tok, "file", "big.png", append(append([]byte{}, pngFile...), make([]byte, 5000)...)), 413, "payload_too_large")
			wantError(t, upload(t, ts, tok, "photo", "x.png", pngFile), 400, "invalid")
			wantError(t, ts.do(t, req{Method: "PUT", URL: "/api/profiles/me/avatar/", Header: bearer(tok), Body: `{"file":"x"}`}), 415, "unsupported_media_type")
			body, ctype := multipartBody("file", "x.png", pngFile)
			wantError(t, ts.do(t, req{Method: "PUT", URL: "/api/profiles/me/avatar/", Body: body, Header: map[string]string{"Content-Type": ctype}}), 401, "not_authenticated")
			if n := count(); n != 1 {
				t.Errorf("refused uploads left %d objects, want 1", n)
			}
			// DELETE removes it.
			if w := ts.do(t, req{Method: "DELETE", URL: "/api/profiles/me/avatar/", Header: bearer(tok)}); w.Code != 204 {
				t.Fatalf("DELETE = %d", w.Code)
			}
			if me := decode(t, ts.do(t, req{URL: "/api/profiles/me/", Header: bearer(tok)})); me["avatar_url"] != nil {
				t.Errorf("avatar_url after DELETE = %v", me["avatar_url"])
			}
			if n := count(); n != 0 {
				t.Errorf("%d objects after DELETE", n)
			}
		})
	}
}

// TestAvatarTooLargeOverTheWire: a large upload is refused before it is all
// read into memory, and the client still gets the 413.
func TestAvatarTooLargeOverTheWire(t *testing.T) {
	ts := newTestServer(t, map[string]string{"MAX_UPLOAD_BYTES": "65536"})
	ts.Media = &media.Disk{Root: t.TempDir(), URLPrefix: "/media/"}
	mustUser(t, ts, "ana@example.com", false)
	tok, _ := login(t, ts, "ana@example.com", goodPassword)
	srv := newHTTPServer(t, ts)
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		fw, _ := mw.CreateFormFile("file", "huge.png")
		fw.Write(pngFile)
		chunk := make([]byte, 64<<10)
		for i := 0; i < 64; i++ { // 4 MiB, streamed
			if _, err := fw.Write(chunk); err != nil {
				break
			}
		}
		mw.Close()
		pw.Close()
	}()
	r, _ := http.NewRequest("PUT", srv+"/api/profiles/me/avatar/", pr)
	r.Host = "api.example.com"
	r.Header.Set("Content-Type", mw.FormDataContentType())
	r.Header.Set("Authorization", "Bearer "+tok)
	res, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 413 {
		t.Errorf("status = %d, want 413", res.StatusCode)
	}
}

func TestAvatarNotConfigured(t *testing.T) {
	ts := newTestServer(t, nil)
	mustUser(t, ts, "ana@example.com", false)
	tok, _ := login(t, ts, "ana@example.com", goodPassword)
	wantError(t, upload(t, ts, tok, "file", "x.png", pngFile), 503, "service_unavailable")
	wantError(t, ts.do(t, req{URL: "/media/avatars/1/x.png"}), 404, "not_found")
}

func TestReadyReportsBucket(t *testing.T) {
	srv := s3test.Start(t)
	bucket := srv.Bucket(t, "ready-check")
	over := map[string]string{"AWS_STORAGE_BUCKET_NAME": bucket, "AWS_S3_ENDPOINT_URL": srv.Endpoint,
		"AWS_ACCESS_KEY_ID": s3test.AccessKey, "AWS_SECRET_ACCESS_KEY": s3test.SecretKey}
	ts := newTestServer(t, over)
	s, _ := media.NewS3(ts.Config)
	ts.Media = s
	m := decode(t, ts.do(t, req{URL: "/api/ready/"}))
	if m["storage"] != "ok" || m["status"] != "ok" {
		t.Errorf("ready = %v", m)
	}
	srv.Client.RemoveBucket(context.Background(), bucket)
	w := ts.do(t, req{URL: "/api/ready/"})
	if m := decode(t, w); w.Code != 503 || m["storage"] != "unavailable" {
		t.Errorf("ready without the bucket = %d %v", w.Code, m)
	}
}
