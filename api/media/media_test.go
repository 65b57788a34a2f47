package media

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/isis-project/isis/api"
	"github.com/isis-project/isis/api/config"
	"github.com/isis-project/isis/internal/s3test"
)

var pngBytes = append([]byte("\x89PNG\r\n\x1a\n"), bytes.Repeat([]byte{1, 2, 3}, 100)...)

type storeCase struct {
	name  string
	store api.MediaStore
	// fetch reads what URL returned, the way a client would.
	fetch func(t *testing.T, u string) (int, []byte)
}

func s3Config(srv *s3test.Server, bucket string, over map[string]string) *config.Config {
	env := map[string]string{"DEBUG": "1", "AWS_STORAGE_BUCKET_NAME": bucket, "AWS_S3_ENDPOINT_URL": srv.Endpoint,
		"AWS_ACCESS_KEY_ID": s3test.AccessKey, "AWS_SECRET_ACCESS_KEY": s3test.SecretKey, "AWS_S3_REGION_NAME": "us-east-1"}
	for k, v := range over {
		env[k] = v
	}
	cfg, err := config.Load(func(k string) string { return env[k] })
	if err != nil {
		panic(err)
	}
	return cfg
}

func stores(t *testing.T) []storeCase {
	srv := s3test.Start(t)
	bucket := srv.Bucket(t, "isis-media")
	presigned, err := NewS3(s3Config(srv, bucket, nil))
	if err != nil {
		t.Fatal(err)
	}
	pathStyle, err := NewS3(s3Config(srv, bucket, map[string]string{"AWS_QUERYSTRING_AUTH": "0", "AWS_S3_ADDRESSING_STYLE": "path"}))
	if err != nil {
		t.Fatal(err)
	}
	disk := &Disk{Root: t.TempDir(), URLPrefix: "/media/"}
	diskSrv := httptest.NewServer(http.StripPrefix("/media/", http.FileServer(http.Dir(disk.Root))))
	t.Cleanup(diskSrv.Close)
	viaHTTP := func(t *testing.T, u string) (int, []byte) { return s3test.Get(t, u) }
	return []storeCase{
		{"disk", disk, func(t *testing.T, u string) (int, []byte) { return s3test.Get(t, diskSrv.URL+u) }},
		{"s3 presigned", presigned, viaHTTP},
		{"s3 plain path-style", pathStyle, nil}, // a private bucket: plain URLs are not readable anonymously
	}
}

// TestStores runs one table against disk and a real S3 server.
func TestStores(t *testing.T) {
	ctx := context.Background()
	for _, sc := range stores(t) {
		t.Run(sc.name, func(t *testing.T) {
			if err := sc.store.Check(ctx); err != nil {
				t.Fatalf("Check: %v", err)
			}
			key := NewKey("avatars/7", ".png")
			if !strings.HasPrefix(key, "avatars/7/") || !strings.HasSuffix(key, ".png") || key == NewKey("avatars/7", ".png") {
				t.Fatalf("NewKey = %s", key)
			}
			if err := sc.store.Put(ctx, key, bytes.NewReader(pngBytes), int64(len(pngBytes)), "image/png"); err != nil {
				t.Fatalf("Put: %v", err)
			}
			u, err := sc.store.URL(ctx, key)
			if err != nil {
				t.Fatal(err)
			}
			if sc.fetch != nil {
				status, body := sc.fetch(t, u)
				if status != 200 || !bytes.Equal(body, pngBytes) {
					t.Fatalf("GET %s = %d, %d bytes", u, status, len(body))
				}
			} else if !strings.Contains(u, "/isis-media/media/"+key) || strings.Contains(u, "X-Amz-Signature") {
				t.Errorf("plain URL = %s", u)
			}
			if err := sc.store.Delete(ctx, key); err != nil {
				t.Fatalf("Delete: %v", err)
			}
			if err := sc.store.Delete(ctx, key); err != nil {
				t.Errorf("Delete of a missing key: %v", err)
			}
			if sc.fetch != nil {
				if status, _ := sc.fetch(t, u); status != 404 && status != 403 {
					t.Errorf("GET after Delete = %d", status)
				}
			}
			for _, bad := range []string{"../etc/passwd", "/abs", "a/../../b", "", ".hidden"} {
				if err := sc.store.Put(ctx, bad, bytes.NewReader(nil), 0, "x"); err == nil {
					t.Errorf("Put(%q) accepted", bad)
				}
			}
		})
	}
}

func TestS3Unavailable(t *testing.T) {
	srv := s3test.Start(t)
	cfg := s3Config(srv, "no-such-bucket", nil)
	s, _ := NewS3(cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Check(ctx); api.ErrorCode(err) != api.EUNAVAILABLE {
		t.Errorf("missing bucket: %v", err)
	}
	cfg = s3Config(srv, "b", map[string]string{"AWS_S3_ENDPOINT_URL": "http://127.0.0.1:1"})
	s, _ = NewS3(cfg)
	err := s.Put(ctx, "x.png", bytes.NewReader(pngBytes), int64(len(pngBytes)), "image/png")
	if api.ErrorCode(err) != api.EUNAVAILABLE || strings.Contains(err.(*api.Error).Message, s3test.SecretKey) {
		t.Errorf("unreachable endpoint: %v", err)
	}
}

func TestURLStyles(t *testing.T) {
	srv := s3test.Start(t)
	custom, _ := NewS3(s3Config(srv, "b", map[string]string{"AWS_S3_CUSTOM_DOMAIN": "cdn.example.com"}))
	if u, _ := custom.URL(context.Background(), "avatars/1/a b.png"); u != "https://cdn.example.com/media/avatars/1/a%20b.png" {
		t.Errorf("custom domain URL = %s", u)
	}
	virtual, _ := NewS3(s3Config(srv, "b", map[string]string{"AWS_QUERYSTRING_AUTH": "0", "AWS_S3_ADDRESSING_STYLE": "virtual",
		"AWS_S3_ENDPOINT_URL": "https://acct.r2.cloudflarestorage.com"}))
	if u, _ := virtual.URL(context.Background(), "k.png"); u != "https://b.acct.r2.cloudflarestorage.com/media/k.png" {
		t.Errorf("virtual-host URL = %s", u)
	}
	d := &Disk{Root: t.TempDir(), URLPrefix: "/media/"}
	if u, _ := d.URL(context.Background(), "avatars/1/x.png"); u != "/media/avatars/1/x.png" {
		t.Errorf("disk URL = %s", u)
	}
	if err := d.Check(context.Background()); err != nil {
		t.Error(err)
	}
	ro := &Disk{Root: filepath.Join(t.TempDir(), "f")}
	os.WriteFile(ro.Root, nil, 0o644) // a file, not a directory
	if err := ro.Check(context.Background()); err == nil {
		t.Error("Check accepted a file as the media root")
	}
}

func TestSniff(t *testing.T) {
	for _, tc := range []struct {
		head, want string
	}{
		{"\xff\xd8\xff\xe0\x00\x10JFIF", "image/jpeg"},
		{"\x89PNG\r\n\x1a\n\x00\x00", "image/png"},
		{"RIFF\x24\x00\x00\x00WEBPVP8 ", "image/webp"},
		{"GIF89a", ""},
		{"<svg xmlns=", ""},
		{"RIFF\x24\x00\x00\x00WAVEfmt ", ""},
		{"\x89PNG", ""},
		{"", ""},
	} {
		if got, _ := Sniff([]byte(tc.head)); got != tc.want {
			t.Errorf("Sniff(%q) = %q, want %q", tc.head, got, tc.want)
		}
	}
}

// FuzzSniff: whatever the bytes, Sniff names one of the three types with
// its extension, or nothing.
func FuzzSniff(f *testing.F) {
	f.Add([]byte("\xff\xd8\xff"))
	f.Add([]byte("RIFF0000WEBP"))
	f.Fuzz(func(t *testing.T, b []byte) {
		ct, ext := Sniff(b)
		ok := map[string]string{"": "", "image/jpeg": ".jpg", "image/png": ".png", "image/webp": ".webp"}
		if want, known := ok[ct]; !known || want != ext {
			t.Fatalf("Sniff = %q %q", ct, ext)
		}
	})
}
