package image

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/isis-project/isis/ops/audit"
	"github.com/isis-project/isis/ops/config"
	"github.com/isis-project/isis/ops/podman"
	"go.podman.io/image/v5/docker"
	"go.podman.io/image/v5/docker/reference"
	dockerconfig "go.podman.io/image/v5/pkg/docker/config"
	imagetypes "go.podman.io/image/v5/types"
)

// registryAuth is the user name and password for the configured registry
// ("" when none is configured: Podman then uses the host's own auth files).
func registryAuth(c *config.Config) (user, pass string, err error) {
	r := c.Registry
	switch {
	case r.Username != "" && r.PasswordFile != "":
		b, err := os.ReadFile(r.PasswordFile)
		if err != nil {
			return "", "", &config.Error{File: c.File, Key: "registry.password_file", Msg: fmt.Sprintf("%s: %v", r.PasswordFile, config.UnwrapPath(err))}
		}
		pass, _, _ = strings.Cut(string(b), "\n")
		pass = strings.TrimSuffix(pass, "\r")
		if pass == "" {
			return "", "", &config.Error{File: c.File, Key: "registry.password_file", Msg: r.PasswordFile + " is empty"}
		}
		return r.Username, pass, nil
	case r.Username != "":
		if r.Password == "" {
			return "", "", &config.Error{File: c.File, Key: "registry.password", Msg: "required with registry.username (set ISISCTL_REGISTRY_PASSWORD or registry.password_file)"}
		}
		return r.Username, r.Password, nil
	case r.AuthFile != "":
		if _, err := os.Stat(r.AuthFile); err != nil {
			return "", "", &config.Error{File: c.File, Key: "registry.auth_file", Msg: fmt.Sprintf("%s: %v", r.AuthFile, config.UnwrapPath(err))}
		}
		// Only this registry's entry is sent to the Podman service.
		a, err := dockerconfig.GetCredentials(&imagetypes.SystemContext{AuthFilePath: r.AuthFile}, r.Server)
		if err != nil {
			return "", "", &config.Error{File: c.File, Key: "registry.auth_file", Msg: fmt.Sprintf("%s: cannot read credentials: %v", r.AuthFile, redact(err.Error()))}
		}
		if a.Username == "" && a.IdentityToken == "" {
			return "", "", &config.Error{File: c.File, Key: "registry.auth_file", Msg: fmt.Sprintf("%s has no credentials for %s", r.AuthFile, r.Server)}
		}
		if a.IdentityToken != "" {
			return "", "", &config.Error{File: c.File, Key: "registry.auth_file", Msg: fmt.Sprintf("%s holds an identity token for %s; give a user name and password", r.AuthFile, r.Server)}
		}
		return a.Username, a.Password, nil
	}
	return "", "", nil
}

// redact drops the parts of a message that may hold a base64 or JSON auth blob.
func redact(s string) string {
	return regexp.MustCompile(`"auth"\s*:\s*"[^"]*"`).ReplaceAllString(s, `"auth":"…"`)
}

// RegistryError is a push or pull that the registry refused, in one line
// that names the registry and never holds a credential.
type RegistryError struct {
	Op, Server, Reason string
}

func (e *RegistryError) Error() string {
	return fmt.Sprintf("%s: registry %s: %s", e.Op, e.Server, e.Reason)
}

// registryFailure turns a Podman push/pull error into a RegistryError.
func registryFailure(c *config.Config, op, server string, err error, secrets ...string) error {
	msg := err.Error()
	low := strings.ToLower(msg)
	certsHint := filepath.Join("/etc/containers/certs.d", server, "ca.crt")
	reason := ""
	switch {
	case strings.Contains(low, "unauthorized") || strings.Contains(low, "authentication required") ||
		strings.Contains(low, "incorrect username or password") || strings.Contains(low, "invalid username/password") ||
		strings.Contains(low, "status 401") || strings.Contains(low, "authenticating creds"):
		reason = "authentication failed (check registry.username and the password, or registry.auth_file)"
	case strings.Contains(low, "denied"):
		reason = "access denied: the account may not push or pull " + c.Repository()
	case strings.Contains(low, "x509:") || strings.Contains(low, "certificate"):
		reason = fmt.Sprintf("the Podman host does not trust the registry's TLS certificate (set registry.ca_file, or put the CA at %s on the Podman host)", certsHint)
	case strings.Contains(low, "server gave http response to https client"):
		reason = "the registry speaks plain HTTP; isisctl only uses HTTPS registries"
	case strings.Contains(low, "connection refused") || strings.Contains(low, "no such host") || strings.Contains(low, "i/o timeout"):
		reason = "unreachable from the Podman host: " + lastClause(msg)
	case strings.Contains(low, "manifest unknown") || strings.Contains(low, "not found"):
		reason = "no such image: " + lastClause(msg)
	default:
		reason = lastClause(msg)
	}
	for _, s := range secrets {
		if s != "" {
			reason = strings.ReplaceAll(reason, s, "…")
		}
	}
	return &RegistryError{Op: op, Server: server, Reason: reason}
}

// lastClause is the tail of a wrapped error chain, on one line.
func lastClause(msg string) string {
	msg = strings.Join(strings.Fields(msg), " ")
	parts := strings.Split(msg, ": ")
	if len(parts) > 3 {
		parts = parts[len(parts)-3:]
	}
	return strings.Join(parts, ": ")
}

// certsDir is where the Podman service on this machine looks for registry
// CAs: /etc/containers/certs.d as root, ~/.config/containers/certs.d rootless.
func certsDir() string { return config.ContainersConfigDir("certs.d") }

// TrustRegistryCA installs registry.ca_file as the registry's CA for a
// Podman service on this machine (certs.d/HOST:PORT/ca.crt), returning the
// path when it wrote it. A remote Podman host must be given the CA by its
// operator; the error of a failed push says where.
func TrustRegistryCA(c *config.Config, local bool) (string, error) {
	if c.Registry.CAFile == "" || !local {
		return "", nil
	}
	ca, err := config.ReadCA(c.Registry.CAFile)
	if err != nil {
		return "", &config.Error{File: c.File, Key: "registry.ca_file", Msg: err.Error()}
	}
	p := filepath.Join(certsDir(), c.Registry.Server, "ca.crt")
	if old, err := os.ReadFile(p); err == nil && bytes.Equal(old, ca) {
		return "", nil
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return "", fmt.Errorf("install the registry CA: %w", err)
	}
	if err := os.WriteFile(p, ca, 0o644); err != nil {
		return "", fmt.Errorf("install the registry CA: %w", err)
	}
	return p, nil
}

// PushResult reports a push.
type PushResult struct {
	Source      string `json:"source"`
	Destination string `json:"destination"`
	Digest      string `json:"digest"`
	Reference   string `json:"reference"` // registry/repository@sha256:..., what other hosts pull
	CAInstalled string `json:"ca_installed,omitempty"`
}

// needRegistry is the error when a push or pull needs registry.server.
func needRegistry(c *config.Config) error {
	if c.Registry.Server == "" {
		return &config.Error{File: c.File, Key: "registry.server", Msg: "required to push: the registry's host[:port] (and registry.repository)"}
	}
	return nil
}

// Push pushes source (a local image) through the Podman API to the
// configured registry as repository:tag, records the pushed digest in the
// host's audit trail and returns it. Credentials go to the Podman service
// in the X-Registry-Auth header only; they are never printed.
func Push(conn podman.Engine, c *config.Config, source, tag string, local bool, out io.Writer) (*PushResult, error) {
	if err := needRegistry(c); err != nil {
		return nil, err
	}
	user, pass, err := registryAuth(c)
	if err != nil {
		return nil, err
	}
	res := &PushResult{Source: source, Destination: c.RegistryImage(tag)}
	if res.CAInstalled, err = TrustRegistryCA(c, local); err != nil {
		return nil, err
	}
	start := time.Now()
	skip := !c.Registry.TLSVerify
	opts := &podman.TransferOptions{SkipTLSVerify: &skip, Format: "oci", Progress: out}
	if user != "" {
		opts.Username, opts.Password = user, pass
	}
	digest, err := conn.Push(source, res.Destination, opts)
	if err != nil {
		if podman.IsNotFound(err) {
			return nil, fmt.Errorf("push %s: image %s is missing on the host (run isisctl build)", source, source)
		}
		return nil, registryFailure(c, "push "+res.Destination, c.Registry.Server, err, pass, c.Registry.Password)
	}
	if digest != "" {
		res.Digest = digest
	} else {
		// Podman before 5 does not report the digest: ask the registry.
		d, err := registryDigest(c, conn.Context(), res.Destination, user, pass)
		if err != nil {
			return nil, registryFailure(c, "pushed "+res.Destination+", but reading its digest failed", c.Registry.Server, err, pass, c.Registry.Password)
		}
		res.Digest = d
	}
	res.Reference = c.DigestReference(res.Digest)
	id, _ := ID(conn, source)
	_ = audit.Append(conn, audit.Entry{Time: start.UTC(), User: audit.WhoAmI(), Action: "push", Image: res.Reference, ImageID: id,
		Result: "ok", Duration: time.Since(start).Round(time.Millisecond).String(), Detail: res.Destination})
	return res, nil
}

// registryDigest asks the registry (from this machine) for the manifest
// digest of a tagged reference.
func registryDigest(c *config.Config, ctx context.Context, tagged, user, pass string) (string, error) {
	named, err := reference.ParseNormalizedNamed(tagged)
	if err != nil {
		return "", err
	}
	ref, err := docker.NewReference(reference.TagNameOnly(named))
	if err != nil {
		return "", err
	}
	sys := &imagetypes.SystemContext{DockerInsecureSkipTLSVerify: imagetypes.NewOptionalBool(!c.Registry.TLSVerify)}
	if user != "" {
		sys.DockerAuthConfig = &imagetypes.DockerAuthConfig{Username: user, Password: pass}
	}
	if c.Registry.CAFile != "" {
		ca, err := config.ReadCA(c.Registry.CAFile)
		if err != nil {
			return "", err
		}
		dir, err := os.MkdirTemp("", "isisctl-registry-ca-")
		if err != nil {
			return "", err
		}
		defer os.RemoveAll(dir)
		if err := os.WriteFile(filepath.Join(dir, "ca.crt"), ca, 0o600); err != nil {
			return "", err
		}
		sys.DockerCertPath = dir
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	d, err := docker.GetDigest(ctx, sys, ref)
	return d.String(), err
}

// Pushed is the newest digest reference pushed to the configured
// registry and repository from this Podman host (from its audit trail):
// what a Kubernetes manifest or another host should run. It is
// backend.image itself when that already is a digest reference.
func Pushed(conn podman.Engine, c *config.Config) (string, error) {
	if c.PullsImage() {
		return c.Backend.Image, nil
	}
	if err := needRegistry(c); err != nil {
		return "", err
	}
	entries, err := audit.Read(conn, audit.Keep)
	if err != nil {
		return "", err
	}
	prefix := c.Registry.Server + "/" + c.Repository() + "@"
	for i := len(entries) - 1; i >= 0; i-- {
		if e := entries[i]; e.Action == "push" && e.Result == "ok" && strings.HasPrefix(e.Image, prefix) {
			return e.Image, nil
		}
	}
	return "", fmt.Errorf("nothing was pushed to %s%s yet: run isisctl build --push", c.Registry.Server, "/"+c.Repository())
}

// Ensure makes ref present on the Podman host: nothing when it is
// there, else a pull through the API when it is a digest reference or
// comes from registry.server (with the configured credentials only for
// registry.server). A missing name of no registry is never looked for on
// Docker Hub: that is a build that did not happen.
func Ensure(conn podman.Engine, c *config.Config, ref string, out io.Writer) (pulled bool, err error) {
	ok, err := Exists(conn, ref)
	if err != nil {
		return false, err
	}
	if ok {
		return false, nil
	}
	named, perr := reference.ParseNormalizedNamed(ref)
	if perr != nil || reference.Domain(named) == "localhost" ||
		!config.IsDigestRef(ref) && (c.Registry.Server == "" || reference.Domain(named) != c.Registry.Server) {
		return false, fmt.Errorf("image %s is missing on the host: run isisctl build", ref)
	}
	return true, Pull(conn, c, ref, out)
}

// Pull pulls ref through the Podman API.
func Pull(conn podman.Engine, c *config.Config, ref string, out io.Writer) error {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return fmt.Errorf("pull %s: not an image reference: %v", ref, err)
	}
	server := reference.Domain(named)
	opts := &podman.TransferOptions{Progress: out}
	pass := ""
	if c.Registry.Server != "" && server == c.Registry.Server {
		var user string
		if user, pass, err = registryAuth(c); err != nil {
			return err
		}
		if user != "" {
			opts.Username, opts.Password = user, pass
		}
		skip := !c.Registry.TLSVerify
		opts.SkipTLSVerify = &skip
	}
	if err := conn.Pull(ref, opts); err != nil {
		return registryFailure(c, "pull "+ref, server, err, pass, c.Registry.Password)
	}
	return nil
}

// BuildOrPull is the deploy's image step: build here, or, when
// backend.image is a pushed digest reference, pull it from the registry.
func BuildOrPull(conn podman.Engine, c *config.Config, tag string, local bool, out io.Writer) (*BuildResult, error) {
	if !c.PullsImage() {
		return Build(conn, c, tag, out)
	}
	if _, err := TrustRegistryCA(c, local); err != nil {
		return nil, err
	}
	pulled, err := Ensure(conn, c, c.Backend.Image, out)
	if err != nil {
		return nil, err
	}
	img, err := conn.Image(c.Backend.Image)
	if err != nil {
		return nil, fmt.Errorf("inspect %s: %w", c.Backend.Image, err)
	}
	return &BuildResult{Image: c.Backend.Image, ID: img.ID, Size: img.Size, Pulled: pulled}, nil
}

// Use points the configuration at a pushed image (--image): a digest
// reference registry/repo@sha256:....
func Use(c *config.Config, ref string) error {
	if ref == "" {
		return nil
	}
	if !config.IsDigestRef(ref) || !config.ValidBackendImage(ref) {
		return &config.Error{Key: "--image", Msg: fmt.Sprintf("%q is not a digest reference like registry.example.com/isis/backend@sha256:<64 hex> (isisctl build --push prints it)", ref)}
	}
	c.Backend.Image = ref
	return nil
}
