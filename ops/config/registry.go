package config

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"regexp"
	"strings"

	"go.podman.io/image/v5/docker/reference"
)

// RegistryConfig names the image registry isisctl build --push sends the
// backend image to, and other hosts pull it from by digest.
type RegistryConfig struct {
	Server       string `yaml:"server"`        // host[:port], no scheme
	Repository   string `yaml:"repository"`    // e.g. isis/backend (default: the last part of backend.image)
	TLSVerify    bool   `yaml:"tls_verify"`    // default true
	CAFile       string `yaml:"ca_file"`       // the registry's CA, installed for a local Podman service
	AuthFile     string `yaml:"auth_file"`     // a containers-auth.json / docker config.json
	Username     string `yaml:"username"`      // with password or password_file
	Password     string `yaml:"password"`      // better: ISISCTL_REGISTRY_PASSWORD or password_file
	PasswordFile string `yaml:"password_file"` // first line is the password
}

var (
	registryServerRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]{1,5})?$|^\[[0-9a-f:]+\](:[0-9]{1,5})?$`)
	repositoryRE     = regexp.MustCompile(`^[a-z0-9]+([._-][a-z0-9]+)*(/[a-z0-9]+([._-][a-z0-9]+)*)*$`)
)

// validate checks the registry section; it returns the bad key and why.
func (r *RegistryConfig) validate() (key, msg string) {
	if r.Server == "" {
		for k, v := range map[string]string{"registry.repository": r.Repository, "registry.ca_file": r.CAFile, "registry.auth_file": r.AuthFile,
			"registry.username": r.Username, "registry.password": r.Password, "registry.password_file": r.PasswordFile} {
			if v != "" {
				return k, "set registry.server too (the registry's host[:port])"
			}
		}
		return "", ""
	}
	if strings.Contains(r.Server, "://") {
		return "registry.server", fmt.Sprintf("%q: give host[:port] without a scheme (the registry is always spoken to over HTTPS)", r.Server)
	}
	if !registryServerRE.MatchString(r.Server) {
		return "registry.server", fmt.Sprintf("%q is not a registry host[:port] (lowercase)", r.Server)
	}
	if r.Repository != "" && !repositoryRE.MatchString(r.Repository) {
		return "registry.repository", fmt.Sprintf("%q is not a repository path like isis/backend (lowercase letters, digits, . _ - and /)", r.Repository)
	}
	if r.Password != "" && r.PasswordFile != "" {
		return "registry.password", "set either the value or registry.password_file, not both"
	}
	if (r.Password != "" || r.PasswordFile != "") && r.Username == "" {
		return "registry.username", "required with a registry password"
	}
	if r.AuthFile != "" && r.Username != "" {
		return "registry.auth_file", "set either auth_file or username and password, not both"
	}
	if r.CAFile != "" {
		if _, err := ReadCA(r.CAFile); err != nil {
			return "registry.ca_file", err.Error()
		}
	}
	return "", ""
}

// ReadCA reads a PEM file holding at least one certificate.
func ReadCA(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", path, UnwrapPath(err))
	}
	rest, n := b, 0
	for {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		if blk.Type == "CERTIFICATE" {
			if _, err := x509.ParseCertificate(blk.Bytes); err != nil {
				return nil, fmt.Errorf("%s: %v", path, err)
			}
			n++
		}
	}
	if n == 0 {
		return nil, fmt.Errorf("%s holds no PEM certificate", path)
	}
	return b, nil
}

// validBackendImage accepts a name without tag (localhost/isis-backend) or
// a pushed digest reference (registry/repo@sha256:...).
func ValidBackendImage(s string) bool {
	if s == "" || strings.ContainsAny(s, " \t\n") {
		return false
	}
	named, err := reference.ParseNormalizedNamed(s)
	if err != nil || named.String() != s && reference.FamiliarString(named) != s {
		return false
	}
	if _, ok := named.(reference.Tagged); ok {
		return false
	}
	return true
}

// IsDigestRef reports whether ref names an image by its digest
// (name@sha256:...).
func IsDigestRef(ref string) bool {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return false
	}
	_, ok := named.(reference.Digested)
	return ok
}

// PullsImage reports whether this host runs a pushed image (backend.image
// is a digest reference) instead of building one.
func (c *Config) PullsImage() bool { return IsDigestRef(c.Backend.Image) }

// repository is registry.repository, else the last part of backend.image.
func (c *Config) Repository() string {
	if c.Registry.Repository != "" {
		return c.Registry.Repository
	}
	name := c.Backend.Image
	if i := strings.IndexByte(name, '@'); i >= 0 {
		name = name[:i]
	}
	return name[strings.LastIndexByte(name, '/')+1:]
}

// RegistryImage is the pushed name of the backend image with tag.
func (c *Config) RegistryImage(tag string) string {
	return c.Registry.Server + "/" + c.Repository() + ":" + tag
}

// DigestReference is registry/repository@digest, the reference other hosts
// and the Kubernetes manifests pull.
func (c *Config) DigestReference(digest string) string {
	return c.Registry.Server + "/" + c.Repository() + "@" + digest
}
