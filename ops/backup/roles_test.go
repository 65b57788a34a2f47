package backup

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/isis-project/isis/internal/opstest"

	"github.com/isis-project/isis/ops/config"
	"github.com/isis-project/isis/ops/podman"
	"github.com/isis-project/isis/ops/podman/podmantest"
	"github.com/isis-project/isis/ops/spec"
)

// TestBackendConnectsAsAppRole: every serving container connects as the
// application role with its own password secret; the superuser's password
// is not mounted in it. (On the single-role code it connected as
// postgres.user with secrets.database_password.)
func TestBackendConnectsAsAppRole(t *testing.T) {
	c := opstest.CustomConfig()
	for _, cs := range []*podman.ContainerSpec{spec.Backend(c, "img"), spec.ForSlot(c, c.Slots()[0], "img"), spec.ForSlot(c, c.Slots()[1], "img")} {
		if got := cs.Env["DATABASE_USER"]; got != "isis_app" {
			t.Errorf("%s: DATABASE_USER=%s, want isis_app", cs.Name, got)
		}
		if got := cs.Env["DATABASE_PASSWORD_FILE"]; got != "/run/secrets/"+config.AppPasswordName {
			t.Errorf("%s: DATABASE_PASSWORD_FILE=%s", cs.Name, got)
		}
		for _, s := range cs.Secrets {
			if s.Name == config.DatabasePasswordName || s.Name == config.OwnerPasswordName {
				t.Errorf("%s mounts %s", cs.Name, s.Name)
			}
		}
	}
	// Jobs run as the owner role.
	job := spec.Backend(c, "img")
	spec.WithDatabaseRole(job, c.OwnerRole(), config.OwnerPasswordName)
	if job.Env["DATABASE_USER"] != "isis_owner" || job.Env["DATABASE_PASSWORD_FILE"] != "/run/secrets/"+config.OwnerPasswordName {
		t.Errorf("job env: %v", job.Env)
	}
	// The postgres container keeps the superuser's password only.
	for _, s := range spec.Postgres(c).Secrets {
		if s.Name != config.DatabasePasswordName {
			t.Errorf("postgres mounts %s", s.Name)
		}
	}
}

// TestDerivedKeysDistinct: the roles' passwords and the manifest key differ
// from each other and from the database password, and change with it.
func TestDerivedKeysDistinct(t *testing.T) {
	seen := map[string]string{"pw": "the password"}
	labels := []string{config.ManifestKeyLabel}
	for _, d := range config.DerivedSecrets {
		labels = append(labels, d.Label)
	}
	for _, l := range labels {
		k := config.DeriveKey("pw", l)
		if len(k) != 64 {
			t.Errorf("%s: %q", l, k)
		}
		if prev, ok := seen[k]; ok {
			t.Errorf("%s derives the same value as %s", l, prev)
		}
		seen[k] = l
		if config.DeriveKey("pw2", l) == k {
			t.Errorf("%s does not depend on the password", l)
		}
	}
}

// TestManifestHMAC: a manifest signed by Backup verifies; a change to any
// field it covers, a missing HMAC or another deployment's key does not.
func TestManifestHMAC(t *testing.T) {
	key := config.DeriveKey("e2e-database-password", config.ManifestKeyLabel)
	base := func() *Manifest {
		m := &Manifest{Name: "isis-20261206T120000Z", Created: time.Date(2026, 12, 6, 12, 0, 0, 123456789, time.UTC), Database: "isis",
			Server: "pg", PgDump: "pg_dump 15", Image: "img:1", ImageID: "abc", Level: "0008", Applied: []string{"0001", "0008"},
			Tables: map[string]int64{"public.users": 2}, Dump: "isis-20261206T120000Z.dump", Size: 1234, SHA256: strings.Repeat("a", 64), ServerID: "7351"}
		m.HMAC = m.manifestMAC(key)
		return m
	}
	if why := base().authenticate(key); why != "" {
		t.Fatalf("a signed manifest: %s", why)
	}
	for _, tc := range []struct {
		name   string
		change func(m *Manifest)
		want   string
	}{
		{"no hmac", func(m *Manifest) { m.HMAC = "" }, "carries no HMAC"},
		{"sha256 rewritten", func(m *Manifest) { m.SHA256 = strings.Repeat("b", 64) }, "does not verify"},
		{"size", func(m *Manifest) { m.Size++ }, "does not verify"},
		{"tables", func(m *Manifest) { m.Tables["public.users"] = 3 }, "does not verify"},
		{"created", func(m *Manifest) { m.Created = m.Created.Add(time.Second) }, "does not verify"},
		{"server id", func(m *Manifest) { m.ServerID = "1" }, "does not verify"},
		{"another key", func(m *Manifest) { m.HMAC = m.manifestMAC(config.DeriveKey("other", config.ManifestKeyLabel)) }, "does not verify"},
		{"garbage", func(m *Manifest) { m.HMAC = "zz" }, "does not verify"},
	} {
		m := base()
		tc.change(m)
		if why := m.authenticate(key); !strings.Contains(why, tc.want) {
			t.Errorf("%s: %q, want %q", tc.name, why, tc.want)
		}
	}
}

// TestRestoreRefusesPathNames: isisctl restore takes plain backup names
// only; a path (../outside/NAME) is refused with one error naming the
// problem before anything is read (the single-role code read
// backup.dir/../outside/NAME.json).
func TestRestoreRefusesPathNames(t *testing.T) {
	root := t.TempDir()
	c := config.Default()
	c.Backup.Dir = filepath.Join(root, "backups")
	os.MkdirAll(c.Backup.Dir, 0o700)
	os.MkdirAll(filepath.Join(root, "outside"), 0o700)
	os.WriteFile(filepath.Join(root, "outside", "NAME.json"), []byte(`{"name":"../outside/NAME"}`), 0o600)
	for _, tc := range []struct{ name, want string }{
		{"../outside/NAME", "path separator"},
		{"..", `".."`},
		{"isis-1..2", `".."`},
		{`..\outside\NAME`, "path separator"},
		{"/etc/passwd", "path separator"},
		{"", "empty"},
		{".partial-isis", "starts with a dot"},
		{"isis\x00x", "control character"},
		{"isis\nx", "control character"},
		{strings.Repeat("a", 201), "longer than 200"},
	} {
		_, err := Restore(context.Background(), podmantest.New(), c, tc.name, RestoreOptions{Yes: true})
		var be *BadBackupNameError
		if !errors.As(err, &be) || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("restore %q: %v, want one BadBackupNameError naming %s", tc.name, err, tc.want)
		}
	}
	for _, ok := range []string{"isis-20261206T120000Z", "isis-20261206T120000Z.dump", "my.db-x_1"} {
		if err := checkBackupName(strings.TrimSuffix(ok, ".dump")); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
}

// FuzzBackupName: a name checkBackupName accepts is one file directly in
// backup.dir (or one key directly under the prefix).
func FuzzBackupName(f *testing.F) {
	for _, s := range []string{"../outside/NAME", "isis-20261206T120000Z", "..", "a/b", `a\b`, ".", "x..y", "\x00", "..%2f"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if checkBackupName(name) != nil {
			return
		}
		dir := "/var/backups/isis"
		for _, file := range []string{name + ".json", name + ".dump"} {
			p := filepath.Join(dir, file)
			if filepath.Dir(p) != dir || filepath.Base(p) != file {
				t.Fatalf("%q: %s is not a file directly in %s", name, p, dir)
			}
		}
		if strings.Contains(name, "/") || strings.Contains(name, "..") {
			t.Fatalf("%q accepted", name)
		}
	})
}
