// Package static embeds the static assets isis serves under /static/ and
// writes with `isis collectstatic`.
package static

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"mime"
	"os"
	"path"
	"path/filepath"
	"sort"
)

//go:embed files
var files embed.FS

// FS is the asset tree (paths like "docs/index.html").
var FS, _ = fs.Sub(files, "files")

// Target is where collectstatic writes.
type Target interface {
	// Same reports whether name already holds exactly b.
	Same(ctx context.Context, name string, b []byte) (bool, error)
	Put(ctx context.Context, name string, b []byte, contentType string) error
	// Previous lists what an earlier collectstatic wrote there.
	Previous(ctx context.Context) ([]string, error)
	Remove(ctx context.Context, name string) error
	// Done records what this run wrote.
	Done(ctx context.Context, names []string) error
}

// CollectResult lists what collectstatic did.
type CollectResult struct {
	Copied  []string `json:"copied"`
	Skipped []string `json:"skipped"`
	Removed []string `json:"removed"`
}

// Collect writes every asset to t, skipping those whose content already
// matches and removing those an earlier run wrote that are gone now.
func Collect(ctx context.Context, t Target) (*CollectResult, error) {
	r := &CollectResult{Copied: []string{}, Skipped: []string{}, Removed: []string{}}
	var names []string
	err := fs.WalkDir(FS, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		names = append(names, p)
		b, err := fs.ReadFile(FS, p)
		if err != nil {
			return err
		}
		same, err := t.Same(ctx, p, b)
		if err != nil {
			return err
		}
		if same {
			r.Skipped = append(r.Skipped, p)
			return nil
		}
		ctype := mime.TypeByExtension(path.Ext(p))
		if ctype == "" {
			ctype = "application/octet-stream"
		}
		if err := t.Put(ctx, p, b, ctype); err != nil {
			return err
		}
		r.Copied = append(r.Copied, p)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("collectstatic: %w", err)
	}
	prev, err := t.Previous(ctx)
	if err != nil {
		return nil, fmt.Errorf("collectstatic: %w", err)
	}
	current := map[string]bool{}
	for _, n := range names {
		current[n] = true
	}
	for _, p := range prev {
		if !current[p] {
			if err := t.Remove(ctx, p); err != nil {
				return nil, fmt.Errorf("collectstatic: remove %s: %w", p, err)
			}
			r.Removed = append(r.Removed, p)
		}
	}
	sort.Strings(r.Removed)
	return r, t.Done(ctx, names)
}

// manifestName records what collectstatic wrote to a directory, so files
// dropped from the binary are removed too (and nothing else is).
const manifestName = ".isis-static.json"

// Dir is a directory target (STATIC_ROOT).
type Dir string

func (d Dir) path(name string) string { return filepath.Join(string(d), filepath.FromSlash(name)) }

// Same implements Target.
func (d Dir) Same(_ context.Context, name string, b []byte) (bool, error) {
	old, err := os.ReadFile(d.path(name))
	if err != nil {
		return false, nil
	}
	return sha256.Sum256(old) == sha256.Sum256(b), nil
}

// Put implements Target (atomically: a temporary file, then a rename).
func (d Dir) Put(_ context.Context, name string, b []byte, _ string) error {
	p := d.path(name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, p)
}

// Previous implements Target.
func (d Dir) Previous(context.Context) ([]string, error) {
	b, err := os.ReadFile(d.path(manifestName))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var m map[string]string
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, nil // a damaged manifest: remove nothing
	}
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out, nil
}

// Remove implements Target.
func (d Dir) Remove(_ context.Context, name string) error {
	if err := os.Remove(d.path(name)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// Done implements Target.
func (d Dir) Done(_ context.Context, names []string) error {
	m := map[string]string{}
	for _, n := range names {
		b, _ := fs.ReadFile(FS, n)
		sum := sha256.Sum256(b)
		m[n] = hex.EncodeToString(sum[:])
	}
	b, _ := json.MarshalIndent(m, "", "  ")
	return os.WriteFile(d.path(manifestName), b, 0o644)
}
