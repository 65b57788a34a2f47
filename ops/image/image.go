package image

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"

	"github.com/isis-project/isis/api"
	"github.com/isis-project/isis/ops/config"
	"github.com/isis-project/isis/ops/podman"
	"github.com/isis-project/isis/ops/spec"
	"github.com/isis-project/isis/templates"
)

// caBundles are tried in order for the image's CA certificates.
var caBundles = []string{"/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/cert.pem"}

// BuildResult reports a build.
type BuildResult struct {
	Image   string `json:"image"`
	ID      string `json:"id"`
	Size    int64  `json:"size_bytes"`
	Built   bool   `json:"built"`            // false when the same content was already built
	Tagged  bool   `json:"tagged,omitempty"` // a new tag given to content built before
	Pulled  bool   `json:"pulled,omitempty"` // a pushed image pulled from the registry instead
	Context string `json:"-"`
}

// ContentTag is the tag of the build context's content, nothing written.
// The binary is hashed once: the tag is kept in the user's cache under the
// binary's identity (see tagcache.go), so a deploy of a binary hashed
// before reads only the context's small files.
func ContentTag(c *config.Config) (string, error) {
	files, bin, err := smallFiles(c)
	if err != nil {
		return "", err
	}
	key := cacheKey(files, bin)
	if tag := cachedTag(bin, key); tag != "" {
		return tag, nil
	}
	if files["isis"], err = os.ReadFile(bin); err != nil {
		return "", fmt.Errorf("read isis binary: %w", err)
	}
	tag := tagOf(files)
	storeTag(bin, key, tag)
	return tag, nil
}

// contextFiles are the build context's files by name, and their content
// tag: the same binary and template give the same tag.
func contextFiles(c *config.Config) (files map[string][]byte, tag string, err error) {
	files, bin, err := smallFiles(c)
	if err != nil {
		return nil, "", err
	}
	if files["isis"], err = os.ReadFile(bin); err != nil {
		return nil, "", fmt.Errorf("read isis binary: %w", err)
	}
	return files, tagOf(files), nil
}

// smallFiles are the build context's files but the isis binary, and the
// binary's path.
func smallFiles(c *config.Config) (files map[string][]byte, bin string, err error) {
	if bin, err = c.IsisBinary(); err != nil {
		return nil, "", err
	}
	cf, err := templates.Execute("Containerfile.tmpl", struct {
		UID, GID, Port int
		Version        string
	}{spec.BackendUID, spec.BackendUID, spec.BackendPort, api.Version})
	if err != nil {
		return nil, "", err
	}
	files = map[string][]byte{
		"Containerfile": []byte(cf),
		"passwd":        []byte(fmt.Sprintf("root:x:0:0:root:/:/sbin/nologin\nisis:x:%d:%d:isis:/nonexistent:/sbin/nologin\n", spec.BackendUID, spec.BackendUID)),
		"group":         []byte(fmt.Sprintf("root:x:0:\nisis:x:%d:\n", spec.BackendUID)),
	}
	for _, ca := range caBundles {
		if b, err := os.ReadFile(ca); err == nil {
			files["ca-certificates.crt"] = b
			break
		}
	}
	if files["ca-certificates.crt"] == nil {
		return nil, "", fmt.Errorf("no CA bundle found (looked in %v); install ca-certificates", caBundles)
	}
	return files, bin, nil
}

// tagOf is the content tag of the context's files.
func tagOf(files map[string][]byte) string {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	h := sha256.New()
	for _, n := range names {
		fmt.Fprintf(h, "%s\x00%d\x00", n, len(files[n]))
		h.Write(files[n])
	}
	return "c" + hex.EncodeToString(h.Sum(nil))[:12]
}

// writeContext writes files to a new directory (isis executable).
func writeContext(files map[string][]byte) (dir string, err error) {
	dir, err = os.MkdirTemp("", "isisctl-build-")
	if err != nil {
		return "", err
	}
	for n, b := range files {
		mode := os.FileMode(0o644)
		if n == "isis" {
			mode = 0o755
		}
		if err := os.WriteFile(filepath.Join(dir, n), b, mode); err != nil {
			os.RemoveAll(dir)
			return "", err
		}
	}
	return dir, nil
}

// Build builds the backend image through the API, tagged by content:
// the same binary and template give the same tag, and no rebuild.
func Build(conn podman.Engine, c *config.Config, tag string, out io.Writer) (*BuildResult, error) {
	if c.PullsImage() {
		return nil, &config.Error{File: c.File, Key: "backend.image", Msg: "is a pushed digest reference: this host pulls it (isisctl up/deploy); build where backend.image is a name"}
	}
	// The context is read and written out only for a build: a deploy whose
	// content was built before only needs its tag.
	ctag, err := ContentTag(c)
	if err != nil {
		return nil, err
	}
	if tag == "" {
		tag = ctag
	}
	ref, cref := c.BackendImage(tag), c.BackendImage(ctag)
	// The same content was built before (it carries its content tag): no
	// build; a new tag for it is only a name.
	if ok, _ := conn.ImageExists(cref); ok {
		if img, err := conn.Image(cref); err == nil {
			if tag == ctag {
				return &BuildResult{Image: ref, ID: img.ID, Size: img.Size}, nil
			}
			if cur, err := conn.Image(ref); err == nil && cur.ID == img.ID {
				return &BuildResult{Image: ref, ID: img.ID, Size: img.Size}, nil
			}
			if err := conn.ImageTag(img.ID, tag, c.Backend.Image); err == nil {
				return &BuildResult{Image: ref, ID: img.ID, Size: img.Size, Tagged: true}, nil
			}
		}
	}
	if out == nil {
		out = io.Discard
	}
	files, hashed, err := contextFiles(c)
	if err != nil {
		return nil, err
	}
	if tag == ctag { // the content tag, as hashed now
		tag = hashed
	}
	ctag = hashed
	ref, cref = c.BackendImage(tag), c.BackendImage(ctag)
	dir, err := writeContext(files)
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	tags := []string{c.BackendImage("latest")}
	if tag != ctag {
		tags = append(tags, cref) // found by content next time
	}
	id, err := conn.Build(&podman.BuildOptions{Dir: dir, Ref: ref, Tags: tags, Labels: []string{spec.LabelManaged + "=true"}, Out: out})
	if err != nil {
		return nil, fmt.Errorf("build %s: %w", ref, err)
	}
	img, err := conn.Image(ref)
	if err != nil {
		return nil, fmt.Errorf("inspect built image %s: %w", ref, err)
	}
	return &BuildResult{Image: ref, ID: id, Size: img.Size, Built: true}, nil
}

// Exists reports whether ref is present on the host.
func Exists(conn podman.Engine, ref string) (bool, error) {
	return conn.ImageExists(ref)
}

// ImageID returns the ID of ref.
func ID(conn podman.Engine, ref string) (string, error) {
	img, err := conn.Image(ref)
	if err != nil {
		if podman.IsNotFound(err) {
			return "", fmt.Errorf("image %s is missing on the host (run isisctl build)", ref)
		}
		return "", err
	}
	return img.ID, nil
}
