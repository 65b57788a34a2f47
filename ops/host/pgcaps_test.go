package host

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/isis-project/isis/internal/opstest"

	"github.com/containers/podman/v5/pkg/bindings/containers"
	"github.com/containers/podman/v5/pkg/bindings/network"
	"github.com/containers/podman/v5/pkg/bindings/volumes"
	"github.com/isis-project/isis/ops/podman"
	"github.com/isis-project/isis/ops/spec"
)

// capBits are the capability numbers of linux/capability.h that matter here.
var capBits = map[string]uint{"CHOWN": 0, "DAC_OVERRIDE": 1, "DAC_READ_SEARCH": 2, "FOWNER": 3, "FSETID": 4, "KILL": 5,
	"SETGID": 6, "SETUID": 7, "SETPCAP": 8, "NET_BIND_SERVICE": 10, "NET_RAW": 13, "SYS_CHROOT": 18, "MKNOD": 27,
	"AUDIT_WRITE": 29, "SETFCAP": 31}

// TestPostgresCapabilities: the PostgreSQL container, as isisctl creates it
// on a fresh volume with the PostgreSQL test image (whose entrypoint does
// what the official image's does as root: mkdir, chown and chmod the data
// directory, read the password file, then drop to the postgres user), keeps
// only CHOWN, DAC_OVERRIDE, FOWNER, SETGID and SETUID of Podman's eleven
// default capabilities, its server runs with none, and it initialises,
// turns healthy and answers queries.
func TestPostgresCapabilities(t *testing.T) {
	conn := opstest.PodmanConn(t)
	c := opstest.ExampleConfig()
	c.Network = "pgcaps"
	c.Postgres.Name, c.Postgres.Data = "pgcaps-pg", "pgcaps-pgdata"
	c.Postgres.Image = "localhost/isis-postgres-test:15"
	c.Secrets.SecretKey, c.Secrets.DatabasePassword = "pgcaps-secret-key-0123456789-abcdefghijklmnop", "pgcaps-db-password"
	if _, err := EnsureNetwork(conn, c.Network, true); err != nil {
		t.Fatal(err)
	}
	if _, err := EnsureSecrets(conn, c, false); err != nil {
		t.Fatal(err)
	}
	cleanup := func() {
		conn.Remove(c.Postgres.Name, 0)
		volumes.Remove(conn.Context(), c.Postgres.Data, new(volumes.RemoveOptions).WithForce(true))
	}
	cleanup()
	t.Cleanup(func() {
		cleanup()
		network.Remove(conn.Context(), c.Network, nil)
	})

	cs := spec.Postgres(c)
	if err := conn.Create(cs); err != nil {
		t.Fatal(err)
	}
	if err := conn.Start(cs.Name); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := conn.WaitHealthy(ctx, cs.Name, 2*time.Minute, cs.Health); err != nil {
		t.Fatal(err)
	}

	want := []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_SETGID", "CAP_SETUID"}
	d, err := containers.Inspect(conn.Context(), cs.Name, nil)
	if err != nil {
		t.Fatal(err)
	}
	eff := slices.Clone(d.EffectiveCaps)
	sort.Strings(eff)
	if !slices.Equal(eff, want) {
		t.Errorf("podman inspect EffectiveCaps = %v, want %v", eff, want)
	}

	// The kernel's view: the bounding set of PID 1 (the postgres server,
	// after the entrypoint dropped to the postgres user) is those five, and
	// the server itself holds none.
	status := execOut(t, conn, cs.Name, "cat", "/proc/1/status")
	var wantBnd uint64
	for _, cp := range want {
		wantBnd |= 1 << capBits[strings.TrimPrefix(cp, "CAP_")]
	}
	if got := procCaps(t, status, "CapBnd"); got != wantBnd {
		t.Errorf("PID 1 CapBnd = %#x (%s), want %#x", got, capNames(got), wantBnd)
	}
	if got := procCaps(t, status, "CapEff"); got != 0 {
		t.Errorf("PID 1 (the server) CapEff = %#x (%s), want none", got, capNames(got))
	}
	if uid := procField(t, status, "Uid"); strings.Fields(uid)[0] == "0" {
		t.Errorf("PID 1 runs as root (Uid %s): the entrypoint did not drop to postgres", uid)
	}

	// The server works: the entrypoint made the role and the database.
	out := execOut(t, conn, cs.Name, "psql", "-U", c.Postgres.User, "-d", c.Postgres.Database, "-tAc",
		"SELECT current_user || ' ' || current_database()")
	if got := strings.TrimSpace(out); got != c.Postgres.User+" "+c.Postgres.Database {
		t.Errorf("query in the container: %q", out)
	}
	// A restart on the initialised volume (the entrypoint's chown and chmod
	// again, on a directory postgres owns) comes back healthy.
	if err := conn.Stop(cs.Name, 30); err != nil {
		t.Fatal(err)
	}
	if err := conn.Start(cs.Name); err != nil {
		t.Fatal(err)
	}
	if err := conn.WaitHealthy(ctx, cs.Name, 2*time.Minute, cs.Health); err != nil {
		t.Fatalf("after a restart: %v", err)
	}
}

func execOut(t *testing.T, conn podman.Engine, name string, cmd ...string) string {
	t.Helper()
	var out bytes.Buffer
	code, err := podman.Exec(conn, name, cmd, &out)
	if err != nil || code != 0 {
		t.Fatalf("%v in %s: exit %d, %v: %s", cmd, name, code, err, out.String())
	}
	return out.String()
}

func procField(t *testing.T, status, key string) string {
	t.Helper()
	for _, l := range strings.Split(status, "\n") {
		if v, ok := strings.CutPrefix(l, key+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("no %s in /proc/1/status:\n%s", key, status)
	return ""
}

func procCaps(t *testing.T, status, key string) uint64 {
	t.Helper()
	v, err := strconv.ParseUint(procField(t, status, key), 16, 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func capNames(mask uint64) string {
	var out []string
	for name, bit := range capBits {
		if mask&(1<<bit) != 0 {
			out = append(out, name)
			mask &^= 1 << bit
		}
	}
	sort.Strings(out)
	if mask != 0 {
		out = append(out, fmt.Sprintf("others %#x", mask))
	}
	return strings.Join(out, ",")
}
