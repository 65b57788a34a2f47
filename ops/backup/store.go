package backup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/isis-project/isis/ops/config"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// backupStore is where dumps and their manifests live.
type backupStore interface {
	Where() string
	Put(ctx context.Context, name string, r io.Reader, size int64) error
	Get(ctx context.Context, name string) (io.ReadCloser, int64, error)
	List(ctx context.Context) ([]string, error)
	Delete(ctx context.Context, name string) error
}

// NoBackupTargetError: neither backup.dir nor backup.s3_prefix is set.
func noBackupTarget(c *config.Config) error {
	return &config.Error{File: c.File, Key: "backup.dir", Msg: "no backup target: set backup.dir (a directory) or backup.s3_prefix (e.g. backups/ in the S3/R2 bucket)"}
}

func openStore(c *config.Config) (backupStore, error) {
	b := c.Backup
	switch {
	case b.Dir != "":
		return dirStore(b.Dir), nil
	case b.S3Prefix != "":
		return openS3(c)
	}
	return nil, noBackupTarget(c)
}

// dirStore keeps backups as files in a directory.
type dirStore string

func (d dirStore) Where() string { return string(d) }

func (d dirStore) Put(ctx context.Context, name string, r io.Reader, size int64) error {
	if err := os.MkdirAll(string(d), 0o700); err != nil {
		return fmt.Errorf("backup directory: %w", err)
	}
	f, err := os.CreateTemp(string(d), ".partial-"+name+"-*")
	if err != nil {
		return fmt.Errorf("backup directory: %w", err)
	}
	defer os.Remove(f.Name())
	n, err := io.Copy(f, r)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && size >= 0 && n != size {
		err = fmt.Errorf("wrote %d bytes, want %d", n, size)
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", filepath.Join(string(d), name), err)
	}
	if err := os.Chmod(f.Name(), 0o600); err != nil { // dumps hold password hashes
		return err
	}
	return os.Rename(f.Name(), filepath.Join(string(d), name))
}

func (d dirStore) Get(ctx context.Context, name string) (io.ReadCloser, int64, error) {
	f, err := os.Open(filepath.Join(string(d), name))
	if err != nil {
		return nil, 0, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	return f, st.Size(), nil
}

func (d dirStore) List(ctx context.Context) ([]string, error) {
	ents, err := os.ReadDir(string(d))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if e.Type().IsRegular() {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

func (d dirStore) Delete(ctx context.Context, name string) error {
	if err := os.Remove(filepath.Join(string(d), name)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// s3Store keeps backups in the deployment's bucket under a prefix of their own.
type s3Store struct {
	client         *minio.Client
	bucket, prefix string
}

func openS3(c *config.Config) (backupStore, error) {
	env := c.Backend.Env
	bad := func(key, msg string) error { return &config.Error{File: c.File, Key: key, Msg: msg} }
	bucket := env["AWS_STORAGE_BUCKET_NAME"]
	if bucket == "" {
		return nil, bad("backend.env.AWS_STORAGE_BUCKET_NAME", "backup.s3_prefix needs the bucket: set backend.env.AWS_STORAGE_BUCKET_NAME")
	}
	access := env["AWS_ACCESS_KEY_ID"]
	if access == "" {
		return nil, bad("backend.env.AWS_ACCESS_KEY_ID", "backup.s3_prefix needs the access key: set backend.env.AWS_ACCESS_KEY_ID and secrets.aws_secret_access_key")
	}
	secrets, err := awsSecret(c)
	if err != nil {
		return nil, err
	}
	endpoint, secure := "s3.amazonaws.com", true
	if e := env["AWS_S3_ENDPOINT_URL"]; e != "" {
		u, err := url.Parse(e)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, bad("backend.env.AWS_S3_ENDPOINT_URL", "not an http(s) URL")
		}
		endpoint, secure = u.Host, u.Scheme == "https"
	}
	lookup := minio.BucketLookupAuto
	switch strings.ToLower(env["AWS_S3_ADDRESSING_STYLE"]) {
	case "path":
		lookup = minio.BucketLookupPath
	case "virtual":
		lookup = minio.BucketLookupDNS
	}
	if env["AWS_S3_ENDPOINT_URL"] != "" && env["AWS_S3_ADDRESSING_STYLE"] == "" {
		lookup = minio.BucketLookupPath // R2, MinIO and friends
	}
	cl, err := minio.New(endpoint, &minio.Options{Creds: credentials.NewStaticV4(access, secrets, ""), Secure: secure,
		Region: env["AWS_S3_REGION_NAME"], BucketLookup: lookup})
	if err != nil {
		return nil, fmt.Errorf("S3 client: %w", err)
	}
	prefix := strings.TrimSuffix(c.Backup.S3Prefix, "/") + "/"
	return &s3Store{client: cl, bucket: bucket, prefix: prefix}, nil
}

// awsSecret is secrets.aws_secret_access_key (value or file).
func awsSecret(c *config.Config) (string, error) {
	v := c.Secrets.AWSSecretAccessKey
	if f := c.Secrets.AWSSecretAccessKeyFile; f != "" {
		b, err := config.ReadSecretFile(f)
		if err != nil {
			return "", &config.Error{File: c.File, Key: "secrets.aws_secret_access_key_file", Msg: err.Error()}
		}
		v = b
	}
	if v == "" {
		return "", &config.Error{File: c.File, Key: "secrets.aws_secret_access_key", Msg: "backup.s3_prefix needs the S3/R2 secret key"}
	}
	return v, nil
}

func (s *s3Store) Where() string { return "s3://" + s.bucket + "/" + s.prefix }

func (s *s3Store) Put(ctx context.Context, name string, r io.Reader, size int64) error {
	_, err := s.client.PutObject(ctx, s.bucket, s.prefix+name, r, size, minio.PutObjectOptions{ContentType: "application/octet-stream"})
	if err != nil {
		return fmt.Errorf("upload %s%s: %w", s.Where(), name, err)
	}
	return nil
}

func (s *s3Store) Get(ctx context.Context, name string) (io.ReadCloser, int64, error) {
	obj, err := s.client.GetObject(ctx, s.bucket, s.prefix+name, minio.GetObjectOptions{})
	if err != nil {
		return nil, 0, err
	}
	st, err := obj.Stat()
	if err != nil {
		obj.Close()
		if minio.ToErrorResponse(err).Code == "NoSuchKey" {
			return nil, 0, fmt.Errorf("%s%s: %w", s.Where(), name, os.ErrNotExist)
		}
		return nil, 0, err
	}
	return obj, st.Size, nil
}

func (s *s3Store) List(ctx context.Context) ([]string, error) {
	var out []string
	for o := range s.client.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: s.prefix}) {
		if o.Err != nil {
			return nil, fmt.Errorf("list %s: %w", s.Where(), o.Err)
		}
		if name := strings.TrimPrefix(o.Key, s.prefix); name != "" && !strings.Contains(name, "/") {
			out = append(out, path.Base(name))
		}
	}
	sort.Strings(out)
	return out, nil
}

func (s *s3Store) Delete(ctx context.Context, name string) error {
	return s.client.RemoveObject(ctx, s.bucket, s.prefix+name, minio.RemoveObjectOptions{})
}
