// Package media stores uploaded files (avatars) on S3-compatible storage
// (AWS S3, Cloudflare R2, any endpoint; through minio-go) or on local disk,
// behind the one api.MediaStore interface.
package media

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/isis-project/isis/api"
	"github.com/isis-project/isis/api/config"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// ErrNotConfigured is returned when neither S3 nor MEDIA_ROOT is set.
var ErrNotConfigured = errors.New("media storage is not configured: set AWS_STORAGE_BUCKET_NAME or MEDIA_ROOT")

// New returns the store the settings choose: S3 when a bucket is set, else
// disk under MEDIA_ROOT, else nil.
func New(cfg *config.Config) (api.MediaStore, error) {
	if cfg.S3Enabled() {
		return NewS3(cfg)
	}
	if cfg.MediaRoot != "" {
		return &Disk{Root: cfg.MediaRoot, URLPrefix: cfg.MediaURL}, nil
	}
	return nil, nil
}

// cleanKey rejects keys that could leave the store's namespace.
func cleanKey(key string) (string, error) {
	k := path.Clean("/" + key)[1:]
	if k == "" || k != key || strings.Contains(key, "\\") || strings.HasPrefix(key, ".") {
		return "", fmt.Errorf("invalid media key %q", key)
	}
	return k, nil
}

// NewKey returns a unique key under prefix with the extension ext (".png").
func NewKey(prefix, ext string) string {
	b := make([]byte, 12)
	rand.Read(b)
	return strings.TrimSuffix(prefix, "/") + "/" + hex.EncodeToString(b) + ext
}

// Disk keeps files under Root, served by the API at URLPrefix ("/media/").
type Disk struct {
	Root      string
	URLPrefix string
}

// Put implements api.MediaStore: written to a temporary file, then renamed.
func (d *Disk) Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) error {
	k, err := cleanKey(key)
	if err != nil {
		return err
	}
	p := filepath.Join(d.Root, filepath.FromSlash(k))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("media: %w", err)
	}
	f, err := os.CreateTemp(filepath.Dir(p), ".upload-*")
	if err != nil {
		return fmt.Errorf("media: %w", err)
	}
	defer os.Remove(f.Name())
	n, err := io.Copy(f, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && size >= 0 && n != size {
		err = fmt.Errorf("wrote %d bytes, want %d", n, size)
	}
	if err != nil {
		return fmt.Errorf("media: %w", err)
	}
	if err := os.Chmod(f.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(f.Name(), p)
}

// Delete implements api.MediaStore.
func (d *Disk) Delete(ctx context.Context, key string) error {
	k, err := cleanKey(key)
	if err != nil {
		return err
	}
	if err := os.Remove(filepath.Join(d.Root, filepath.FromSlash(k))); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("media: %w", err)
	}
	return nil
}

// URL implements api.MediaStore.
func (d *Disk) URL(ctx context.Context, key string) (string, error) {
	k, err := cleanKey(key)
	if err != nil {
		return "", err
	}
	prefix := d.URLPrefix
	if prefix == "" {
		prefix = "/media/"
	}
	return strings.TrimSuffix(prefix, "/") + "/" + (&url.URL{Path: k}).EscapedPath(), nil
}

// Check implements api.MediaStore: the root must be a writable directory.
func (d *Disk) Check(ctx context.Context) error {
	if err := os.MkdirAll(d.Root, 0o755); err != nil {
		return fmt.Errorf("media root: %w", err)
	}
	f, err := os.CreateTemp(d.Root, ".check-*")
	if err != nil {
		return fmt.Errorf("media root not writable: %w", err)
	}
	f.Close()
	return os.Remove(f.Name())
}

// S3 keeps files in a bucket of any S3-compatible service.
type S3 struct {
	Client *minio.Client
	Bucket string
	// Prefix is prepended to every key ("media/"); static files use "static/".
	Prefix       string
	Presign      bool
	Expire       time.Duration
	CustomDomain string
	Endpoint     *url.URL
	PathStyle    bool
}

// NewS3 connects (lazily: no request is made) to the configured bucket.
func NewS3(cfg *config.Config) (*S3, error) {
	endpoint := cfg.AWSEndpointURL
	if endpoint == "" {
		region := cfg.AWSRegion
		if region == "" {
			region = "us-east-1"
		}
		endpoint = "https://s3." + region + ".amazonaws.com"
	}
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" {
		return nil, &config.Error{Name: "AWS_S3_ENDPOINT_URL", Msg: "not an http(s) URL"}
	}
	lookup := map[string]minio.BucketLookupType{"auto": minio.BucketLookupAuto, "path": minio.BucketLookupPath,
		"virtual": minio.BucketLookupDNS}[cfg.AWSAddressingStyle]
	var creds *credentials.Credentials
	if cfg.AWSAccessKeyID != "" {
		creds = credentials.NewStaticV4(cfg.AWSAccessKeyID, cfg.AWSSecretAccessKey, "")
	} else {
		creds = credentials.NewIAM("")
	}
	client, err := minio.New(u.Host, &minio.Options{
		Creds:        creds,
		Secure:       u.Scheme == "https",
		Region:       cfg.AWSRegion,
		BucketLookup: lookup,
	})
	if err != nil {
		return nil, fmt.Errorf("S3 client: %w", err)
	}
	return &S3{Client: client, Bucket: cfg.AWSBucket, Prefix: "media/", Presign: cfg.AWSQuerystringAuth,
		Expire: cfg.AWSQuerystringExpire, CustomDomain: cfg.AWSCustomDomain, Endpoint: u,
		PathStyle: cfg.AWSAddressingStyle != "virtual"}, nil
}

// WithPrefix returns a copy of s that keeps keys under prefix.
func (s *S3) WithPrefix(prefix string) *S3 {
	c := *s
	c.Prefix = prefix
	return &c
}

func (s *S3) object(key string) (string, error) {
	k, err := cleanKey(key)
	if err != nil {
		return "", err
	}
	return s.Prefix + k, nil
}

// Put implements api.MediaStore.
func (s *S3) Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) error {
	obj, err := s.object(key)
	if err != nil {
		return err
	}
	_, err = s.Client.PutObject(ctx, s.Bucket, obj, r, size, minio.PutObjectOptions{ContentType: contentType,
		CacheControl: "public, max-age=31536000, immutable"})
	if err != nil {
		return unavailable("store "+obj, err)
	}
	return nil
}

// Delete implements api.MediaStore.
func (s *S3) Delete(ctx context.Context, key string) error {
	obj, err := s.object(key)
	if err != nil {
		return err
	}
	if err := s.Client.RemoveObject(ctx, s.Bucket, obj, minio.RemoveObjectOptions{}); err != nil {
		return unavailable("delete "+obj, err)
	}
	return nil
}

// URL implements api.MediaStore: the custom domain, a presigned GET (private
// bucket, AWS_QUERYSTRING_AUTH) or the plain object URL.
func (s *S3) URL(ctx context.Context, key string) (string, error) {
	obj, err := s.object(key)
	if err != nil {
		return "", err
	}
	esc := (&url.URL{Path: obj}).EscapedPath()
	switch {
	case s.CustomDomain != "":
		return "https://" + strings.TrimSuffix(s.CustomDomain, "/") + "/" + esc, nil
	case s.Presign:
		u, err := s.Client.PresignedGetObject(ctx, s.Bucket, obj, s.Expire, nil)
		if err != nil {
			return "", unavailable("presign "+obj, err)
		}
		return u.String(), nil
	case s.PathStyle:
		return s.Endpoint.Scheme + "://" + s.Endpoint.Host + "/" + s.Bucket + "/" + esc, nil
	default:
		return s.Endpoint.Scheme + "://" + s.Bucket + "." + s.Endpoint.Host + "/" + esc, nil
	}
}

// Check implements api.MediaStore: the bucket must exist and answer.
func (s *S3) Check(ctx context.Context) error {
	ok, err := s.Client.BucketExists(ctx, s.Bucket)
	if err != nil {
		return unavailable("bucket "+s.Bucket, err)
	}
	if !ok {
		return api.Errorf(api.EUNAVAILABLE, "Bucket %s does not exist.", s.Bucket)
	}
	return nil
}

// SameContent reports whether the object key already holds b (ETag = MD5
// for single-part uploads).
func (s *S3) SameContent(ctx context.Context, key string, b []byte) (bool, error) {
	obj, err := s.object(key)
	if err != nil {
		return false, err
	}
	st, err := s.Client.StatObject(ctx, s.Bucket, obj, minio.StatObjectOptions{})
	if err != nil {
		if minio.ToErrorResponse(err).StatusCode == http.StatusNotFound {
			return false, nil
		}
		return false, unavailable("stat "+obj, err)
	}
	sum := md5.Sum(b)
	return strings.Trim(st.ETag, `"`) == hex.EncodeToString(sum[:]), nil
}

// List returns the keys (without Prefix) under the store's prefix.
func (s *S3) List(ctx context.Context) ([]string, error) {
	var out []string
	for o := range s.Client.ListObjects(ctx, s.Bucket, minio.ListObjectsOptions{Prefix: s.Prefix, Recursive: true}) {
		if o.Err != nil {
			return nil, unavailable("list "+s.Prefix, o.Err)
		}
		out = append(out, strings.TrimPrefix(o.Key, s.Prefix))
	}
	return out, nil
}

// PutBytes stores b under key.
func (s *S3) PutBytes(ctx context.Context, key string, b []byte, contentType string) error {
	return s.Put(ctx, key, bytes.NewReader(b), int64(len(b)), contentType)
}

func unavailable(what string, err error) error {
	return api.WrapError(api.EUNAVAILABLE, "Media storage is unavailable; try again shortly.", fmt.Errorf("%s: %w", what, err))
}

// Sniff returns the image type of the first bytes of a file: JPEG, PNG or
// WebP (by content, never by name), or "".
func Sniff(head []byte) (contentType, ext string) {
	switch {
	case len(head) >= 3 && head[0] == 0xFF && head[1] == 0xD8 && head[2] == 0xFF:
		return "image/jpeg", ".jpg"
	case len(head) >= 8 && bytes.Equal(head[:8], []byte("\x89PNG\r\n\x1a\n")):
		return "image/png", ".png"
	case len(head) >= 12 && bytes.Equal(head[:4], []byte("RIFF")) && bytes.Equal(head[8:12], []byte("WEBP")):
		return "image/webp", ".webp"
	}
	return "", ""
}

// StaticTarget writes collectstatic's files to the bucket under static/.
type StaticTarget struct{ S3 *S3 }

// NewStaticTarget is the bucket's static/ prefix.
func NewStaticTarget(s *S3) *StaticTarget { return &StaticTarget{S3: s.WithPrefix("static/")} }

// Same implements static.Target.
func (t *StaticTarget) Same(ctx context.Context, name string, b []byte) (bool, error) {
	return t.S3.SameContent(ctx, name, b)
}

// Put implements static.Target.
func (t *StaticTarget) Put(ctx context.Context, name string, b []byte, ctype string) error {
	return t.S3.PutBytes(ctx, name, b, ctype)
}

// Previous implements static.Target: everything under static/.
func (t *StaticTarget) Previous(ctx context.Context) ([]string, error) { return t.S3.List(ctx) }

// Remove implements static.Target.
func (t *StaticTarget) Remove(ctx context.Context, name string) error { return t.S3.Delete(ctx, name) }

// Done implements static.Target.
func (t *StaticTarget) Done(context.Context, []string) error { return nil }
