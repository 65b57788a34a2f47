// Package static embeds the static assets isis serves under /static/ and
// writes with `isis collectstatic`.
package static

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
)

//go:embed files
var files embed.FS

// FS is the asset tree (paths like "docs/index.html").
var FS, _ = fs.Sub(files, "files")

// manifestName records what collectstatic wrote, so that files removed from
// the binary are removed from the destination too (and nothing else is).
const manifestName = ".isis-static.json"

// CollectResult lists what collectstatic did.
type CollectResult struct {
	Copied  []string `json:"copied"`
	Skipped []string `json:"skipped"`
	Removed []string `json:"removed"`
}

// Collect writes every asset under dest, skipping files whose checksum
// already matches and removing files an earlier run wrote that are gone now.
func Collect(dest string) (*CollectResult, error) {
	if dest == "" {
		return nil, errors.New("no destination: set STATIC_ROOT or pass --dest")
	}
	if err := os.MkdirAll(dest, 0o755); err != nil {
		return nil, err
	}
	r := &CollectResult{Copied: []string{}, Skipped: []string{}, Removed: []string{}}
	written := map[string]string{}
	err := fs.WalkDir(FS, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(FS, p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		written[p] = hex.EncodeToString(sum[:])
		target := filepath.Join(dest, filepath.FromSlash(p))
		if old, err := os.ReadFile(target); err == nil && sha256.Sum256(old) == sum {
			r.Skipped = append(r.Skipped, p)
			return nil
		}
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return err
		}
		tmp := target + ".tmp"
		if err := os.WriteFile(tmp, b, 0o644); err != nil {
			return err
		}
		if err := os.Rename(tmp, target); err != nil {
			return err
		}
		r.Copied = append(r.Copied, p)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("collectstatic: %w", err)
	}
	var before map[string]string
	if b, err := os.ReadFile(filepath.Join(dest, manifestName)); err == nil {
		_ = json.Unmarshal(b, &before)
	}
	for p := range before {
		if _, ok := written[p]; !ok {
			if err := os.Remove(filepath.Join(dest, filepath.FromSlash(p))); err == nil || errors.Is(err, os.ErrNotExist) {
				r.Removed = append(r.Removed, p)
			}
		}
	}
	sort.Strings(r.Removed)
	b, _ := json.MarshalIndent(written, "", "  ")
	if err := os.WriteFile(filepath.Join(dest, manifestName), b, 0o644); err != nil {
		return nil, err
	}
	return r, nil
}
