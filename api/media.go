package api

import (
	"context"
	"io"
)

// MediaStore keeps uploaded files (avatars): on S3/R2 or on disk.
type MediaStore interface {
	// Put stores size bytes from r under key.
	Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) error
	// Delete removes key; a missing key is not an error.
	Delete(ctx context.Context, key string) error
	// URL returns where a client can fetch key: absolute, presigned, or a
	// path on this server ("/media/…").
	URL(ctx context.Context, key string) (string, error)
	// Check reports whether the store is reachable (for /api/ready/).
	Check(ctx context.Context) error
}
