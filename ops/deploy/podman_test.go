package deploy

import (
	"encoding/json"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/isis-project/isis/internal/opstest"

	"github.com/containers/podman/v5/pkg/bindings/containers"
	"github.com/containers/podman/v5/pkg/bindings/network"
	"github.com/containers/podman/v5/pkg/systemd/parser"
	"github.com/isis-project/isis/ops/host"
	"github.com/isis-project/isis/ops/podman"
	"github.com/isis-project/isis/ops/render"
	"github.com/isis-project/isis/ops/spec"
)

// runSpec is the part of a container's specification both sides must agree on.
type runSpec struct {
	Networks  []string
	Publish   []string
	Secrets   []string // name:uid:gid:mode
	Mounts    []string // source:dest
	Tmpfs     []string
	Env       []string
	User      string
	ReadOnly  bool
	NoNewPriv bool
	Caps      string // the effective capabilities: "none", "default" or a list
	Health    string
}

func (r *runSpec) sort() {
	for _, l := range [][]string{r.Networks, r.Publish, r.Secrets, r.Mounts, r.Tmpfs, r.Env} {
		sort.Strings(l)
	}
}

// fromExecStart reads `podman run` arguments as quadlet generated them.
func fromExecStart(t *testing.T, args []string) runSpec {
	var r runSpec
	var adds []string
	next := func(i *int) string { *i++; return args[*i] }
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--network":
			r.Networks = append(r.Networks, next(&i))
		case a == "--publish":
			r.Publish = append(r.Publish, next(&i))
		case a == "--secret":
			parts := strings.Split(next(&i), ",")
			kv := map[string]string{}
			for _, p := range parts[1:] {
				k, v, _ := strings.Cut(p, "=")
				kv[k] = v
			}
			mode := kv["mode"]
			if mode == "" {
				mode = "0444"
			}
			r.Secrets = append(r.Secrets, parts[0]+":"+firstOr(kv["uid"], "0")+":"+firstOr(kv["gid"], "0")+":"+strings.TrimPrefix(mode, "0"))
		case a == "-v":
			v := strings.Split(next(&i), ":")
			r.Mounts = append(r.Mounts, v[0]+":"+v[1])
		case a == "--tmpfs":
			r.Tmpfs = append(r.Tmpfs, next(&i))
		case a == "--env":
			r.Env = append(r.Env, next(&i))
		case a == "--user":
			r.User = next(&i)
		case a == "--read-only":
			r.ReadOnly = true
		case a == "--security-opt=no-new-privileges":
			r.NoNewPriv = true
		case a == "--cap-drop":
			if strings.EqualFold(next(&i), "all") {
				r.Caps = "none"
			}
		case a == "--cap-add":
			adds = append(adds, "CAP_"+strings.TrimPrefix(strings.ToUpper(next(&i)), "CAP_"))
		case a == "--health-cmd":
			var cmd []string
			if err := json.Unmarshal([]byte(next(&i)), &cmd); err != nil {
				t.Fatalf("health cmd is not a JSON array (it would need a shell): %v", err)
			}
			r.Health = strings.Join(append([]string{"CMD"}, cmd...), " ")
		}
	}
	if r.Caps == "" {
		r.Caps = "default"
	}
	if r.Caps == "none" && len(adds) > 0 {
		sort.Strings(adds)
		r.Caps = strings.Join(adds, ",")
	}
	r.sort()
	return r
}

func firstOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// fromInspect reads the same from a container created through the API.
func fromInspect(t *testing.T, conn podman.Engine, name string, envKeys map[string]bool) runSpec {
	d, err := containers.Inspect(conn.Context(), name, nil)
	if err != nil {
		t.Fatal(err)
	}
	var r runSpec
	for n := range d.NetworkSettings.Networks {
		r.Networks = append(r.Networks, n)
	}
	for port, binds := range d.HostConfig.PortBindings {
		for _, b := range binds {
			r.Publish = append(r.Publish, b.HostIP+":"+b.HostPort+":"+strings.TrimSuffix(port, "/tcp"))
		}
	}
	for _, s := range d.Config.Secrets {
		r.Secrets = append(r.Secrets, s.Name+":"+strconv.Itoa(int(s.UID))+":"+strconv.Itoa(int(s.GID))+":"+strconv.FormatUint(uint64(s.Mode), 8))
	}
	for _, m := range d.Mounts {
		src := m.Source
		if m.Type == "volume" {
			src = m.Name
		}
		r.Mounts = append(r.Mounts, src+":"+m.Destination)
	}
	for p := range d.HostConfig.Tmpfs {
		r.Tmpfs = append(r.Tmpfs, p)
	}
	for _, kv := range d.Config.Env {
		k, _, _ := strings.Cut(kv, "=")
		if envKeys[k] {
			r.Env = append(r.Env, kv)
		}
	}
	r.User = d.Config.User
	r.ReadOnly = d.HostConfig.ReadonlyRootfs
	r.NoNewPriv = slices.Contains(d.HostConfig.SecurityOpt, "no-new-privileges")
	// Podman's default set (containers.conf default_capabilities).
	defaults := []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_NET_BIND_SERVICE",
		"CAP_SETFCAP", "CAP_SETGID", "CAP_SETPCAP", "CAP_SETUID", "CAP_SYS_CHROOT"}
	eff := slices.Clone(d.EffectiveCaps)
	sort.Strings(eff)
	switch {
	case len(eff) == 0:
		r.Caps = "none"
	case slices.Equal(eff, defaults):
		r.Caps = "default"
	default:
		r.Caps = strings.Join(eff, ",")
	}
	if d.Config.Healthcheck != nil {
		r.Health = strings.Join(d.Config.Healthcheck.Test, " ")
	}
	r.sort()
	return r
}

// TestQuadletMatchesAPI: the service quadlet generates for each container
// runs the same specification that `isisctl up` creates through the API.
func TestQuadletMatchesAPI(t *testing.T) {
	conn := opstest.PodmanConn(t)
	c := opstest.ExampleConfig()
	c.Network, c.EgressNetwork = "qcmp", "qcmp-egress"
	c.Backend.Name, c.Postgres.Name, c.Postgres.Data = "qcmp-backend", "qcmp-pg", "qcmp-pgdata"
	c.Backend.Publish = "127.0.0.1:3023"
	c.Backend.LogDir, c.Backend.StaticDir = t.TempDir(), t.TempDir()
	c.Postgres.Image = "localhost/isis-postgres-test:15"
	image := "localhost/isis-postgres-test:15" // any local image: the backend is only created, never started
	for _, n := range []string{c.Network, c.EgressNetwork} {
		if _, err := host.EnsureNetwork(conn, n, n == c.Network); err != nil {
			t.Fatal(err)
		}
	}
	c.Secrets.SecretKey, c.Secrets.DatabasePassword = "qcmp-secret-key-0123456789-abcdefghijklmnop", "qcmp-db-password"
	if _, err := host.EnsureSecrets(conn, c, false); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Remove(c.Backend.Name, 0)
		conn.Remove(c.Postgres.Name, 0)
		for _, n := range []string{c.Network, c.EgressNetwork} {
			network.Remove(conn.Context(), n, nil) // what the test made, not left behind
		}
	})

	files, err := render.Render(c, render.Options{Image: image})
	if err != nil {
		t.Fatal(err)
	}
	unitDir := t.TempDir()
	if _, err := render.WriteFiles(unitDir, files); err != nil {
		t.Fatal(err)
	}
	out, err := opstest.RunQuadlet(t, unitDir, true)
	if err != nil {
		t.Fatalf("quadlet: %v\n%s", err, out)
	}
	for _, tc := range []struct {
		service string
		spec    *podman.ContainerSpec
	}{
		{c.Backend.Name + ".service", spec.Backend(c, image)},
		{c.Network + "-postgres.service", spec.Postgres(c)},
	} {
		unit := parser.NewUnitFile()
		body := out[strings.Index(out, "---"+tc.service+"---")+len(tc.service)+6:]
		if i := strings.Index(body, "\n---"); i >= 0 {
			body = body[:i]
		}
		if err := unit.Parse(body); err != nil {
			t.Fatal(err)
		}
		execStart, ok := unit.Lookup("Service", "ExecStart")
		if !ok {
			t.Fatalf("%s has no ExecStart", tc.service)
		}
		args, err := splitArgs(execStart)
		if err != nil {
			t.Fatal(err)
		}
		want := fromExecStart(t, args)

		conn.Remove(tc.spec.Name, 0)
		if err := conn.Create(tc.spec); err != nil {
			t.Fatal(err)
		}
		keys := map[string]bool{}
		for k := range tc.spec.Env {
			keys[k] = true
		}
		got := fromInspect(t, conn, tc.spec.Name, keys)
		wj, _ := json.MarshalIndent(want, "", "  ")
		gj, _ := json.MarshalIndent(got, "", "  ")
		if string(wj) != string(gj) {
			t.Errorf("%s: quadlet and API differ\n--- quadlet\n%s\n--- API\n%s", tc.service, wj, gj)
		}
		if len(want.Networks) == 0 || len(want.Env) == 0 || want.Health == "" {
			t.Errorf("%s: parsed too little from ExecStart: %s", tc.service, wj)
		}
	}
}

// splitArgs splits an ExecStart line the way systemd does (quotes, escapes).
func splitArgs(s string) ([]string, error) {
	var out []string
	var cur strings.Builder
	inQ, esc, have := byte(0), false, false
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case esc:
			cur.WriteByte(ch)
			esc = false
		case ch == '\\':
			esc = true
		case inQ != 0:
			if ch == inQ {
				inQ = 0
			} else {
				cur.WriteByte(ch)
			}
		case ch == '"' || ch == '\'':
			inQ, have = ch, true
		case ch == ' ' || ch == '\t':
			if cur.Len() > 0 || have {
				out = append(out, cur.String())
				cur.Reset()
				have = false
			}
		default:
			cur.WriteByte(ch)
		}
	}
	if cur.Len() > 0 || have {
		out = append(out, cur.String())
	}
	return out, nil
}
