package config

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
)

// Podman secret names and where the containers read them.
const (
	SecretKeyName        = "isis-secret-key"
	DatabasePasswordName = "isis-database-password"
	AWSSecretName        = "isis-aws-secret-access-key"
)

// BackendImage is the image reference with tag.
// A pushed digest reference (backend.image: registry/repo@sha256:...) is
// used as it is.
func (c *Config) BackendImage(tag string) string {
	if c.PullsImage() {
		return c.Backend.Image
	}
	if tag == "" {
		tag = "latest"
	}
	return c.Backend.Image + ":" + tag
}

// HasAWSSecret reports whether an S3/R2 secret is configured.
func (c *Config) HasAWSSecret() bool {
	for _, s := range SecretTable {
		if s.Name == AWSSecretName {
			return s.Configured(c)
		}
	}
	return false
}

// TargetImageName picks the image for up, migrate and collectstatic: a
// pushed digest reference (backend.image or --image), else --tag, else
// backend.tag, else what the backend runs, else :latest.
func (c *Config) TargetImageName(tag, running string) string {
	switch {
	case c.PullsImage():
		return c.Backend.Image
	case tag != "":
		return c.BackendImage(tag)
	case c.Backend.Tag != "":
		return c.BackendImage(c.Backend.Tag)
	case running != "":
		return running
	}
	return c.BackendImage("latest")
}

// ServiceContainer maps a logs argument to a container: backend (default,
// slot A), standby (slot B) or postgres, or a container name.
func (c *Config) ServiceContainer(service string) (string, error) {
	switch service {
	case "", "backend", c.Backend.Name:
		return c.Backend.Name, nil
	case "standby", "backend-b", c.StandbyName():
		return c.StandbyName(), nil
	case "postgres", "db", c.Postgres.Name:
		return c.Postgres.Name, nil
	}
	return "", fmt.Errorf("unknown service %q: use backend, standby or postgres", service)
}

// IsisBinary locates the static isis binary to ship.
func (c *Config) IsisBinary() (string, error) {
	if c.Build.IsisBinary != "" {
		if _, err := os.Stat(c.Build.IsisBinary); err != nil {
			return "", &Error{File: c.File, Key: "build.isis_binary", Msg: fmt.Sprintf("%v", UnwrapPath(err))}
		}
		return c.Build.IsisBinary, nil
	}
	exe, err := os.Executable()
	if err == nil {
		p := filepath.Join(filepath.Dir(exe), "isis")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", &Error{File: c.File, Key: "build.isis_binary", Msg: "no isis binary next to isisctl; run make build or set build.isis_binary"}
}

// Slot is one of the two backend containers.
type Slot struct {
	Name string         `json:"name"`
	Addr netip.AddrPort `json:"addr"`
	ID   string         `json:"slot"` // "a" or "b"
}

// Slots are slot A (primary) and slot B (standby), in that order.
func (c *Config) Slots() []Slot {
	pa, _ := c.PublishAddr()
	sb, _ := c.StandbyAddr()
	return []Slot{{Name: c.Backend.Name, Addr: pa, ID: "a"}, {Name: c.StandbyName(), Addr: sb, ID: "b"}}
}

// StandbyName is slot B's container name.
func (c *Config) StandbyName() string { return c.Backend.Name + "-b" }

// Unit file names.
func (c *Config) NetworkUnit() string { return c.Network + ".network" }

func (c *Config) EgressUnit() string { return c.EgressNetwork + ".network" }

func (c *Config) VolumeUnit() string { return c.Postgres.Data + ".volume" }

func (c *Config) PostgresUnit() string { return c.Network + "-postgres.container" }

func (c *Config) BackendUnit() string { return c.Backend.Name + ".container" }

// containersConfigDir is sub of Podman's configuration directory for this
// user: /etc/containers as root, else $XDG_CONFIG_HOME/containers or
// ~/.config/containers.
func ContainersConfigDir(sub string) string {
	if os.Geteuid() == 0 {
		return filepath.Join("/etc/containers", sub)
	}
	if d := os.Getenv("XDG_CONFIG_HOME"); d != "" {
		return filepath.Join(d, "containers", sub)
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".config", "containers", sub)
}

// backupUnitNames are the timer's and the service's file names.
func (c *Config) BackupUnitNames() (service, timer string) {
	return c.Postgres.Database + "-backup.service", c.Postgres.Database + "-backup.timer"
}
