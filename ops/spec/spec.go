package spec

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/isis-project/isis/ops/config"
	"github.com/isis-project/isis/ops/podman"
)

// The backend container's port and user, labels and restart policy.
const (
	BackendPort = 3003
	BackendUID  = 65532

	// Labels on everything isisctl creates.
	LabelManaged  = "io.isis.managed"
	LabelSpecHash = podman.LabelSpecHash
	LabelRole     = "io.isis.role"
	LabelSlot     = "io.isis.slot"

	// shutdownDelay is the backend's lame duck on SIGTERM (isis's SHUTDOWN_DELAY).
	// It must end, and isis close its listener, well inside the fail_timeout
	// (2 s) for which nginx skips slot A once A's 503s have marked it down:
	// when that window runs out first, nginx sends A a request again, a POST
	// served by the lame duck clears the mark, and the next POSTs go to A
	// while it closes (a reset POST is not resent: a 502). The lame duck runs
	// this long whenever a client other than nginx (Caddy's, a direct one,
	// monitoring) keeps it busy. TestLameDuckInsideFailTimeout.
	shutdownDelay = time.Second

	// RestartAlways is the restart policy of the long-running containers.
	RestartAlways = "always"
)

// Backend is the isis-backend container running image.
func Backend(c *config.Config, image string) *podman.ContainerSpec {
	ap, _ := c.PublishAddr()
	drain, _ := c.Drain()
	env := map[string]string{
		"DEBUG":            "0",
		"PORT":             strconv.Itoa(BackendPort),
		"ALLOWED_HOSTS":    c.Domain,
		"DATABASE_HOST":    c.Postgres.Name,
		"DATABASE_PORT":    "5432",
		"DATABASE_NAME":    c.Postgres.Database,
		"DATABASE_USER":    c.AppRole(), // no superuser, owns nothing: see roles.go
		"DATABASE_SSLMODE": "disable",   // the internal network never leaves the host
		// The one forwarding header the rendered nginx and Caddy configs
		// write; no other a client sends can speak for it.
		"CLIENT_IP_HEADER": "X-Forwarded-For",
		// On SIGTERM, serve on as a lame duck until the proxies have moved
		// to the other slot (at most this long; see isis serve).
		"SHUTDOWN_DELAY": shutdownDelay.String(),
		// Then finish the requests it has, for at most this long.
		"SHUTDOWN_TIMEOUT": drain.String(),
	}
	own := func(name string) podman.SecretRef {
		return podman.SecretRef{Name: name, Target: name, UID: BackendUID, GID: BackendUID}
	}
	var secrets []podman.SecretRef
	for _, s := range config.SecretTable {
		if s.Optional && !s.Configured(c) {
			continue
		}
		name := s.Name
		if name == config.DatabasePasswordName {
			name = config.AppPasswordName // the superuser's password stays out
		}
		secrets = append(secrets, own(name))
		env[s.Setting+"_FILE"] = "/run/secrets/" + name
	}
	var mounts []podman.Mount
	if c.Backend.LogDir != "" {
		env["LOG_DIR"] = "/var/log/isis"
		mounts = append(mounts, podman.Mount{Source: c.Backend.LogDir, Dest: "/var/log/isis", Options: []string{"Z"}})
	}
	if c.Backend.StaticDir != "" {
		env["STATIC_ROOT"] = "/var/lib/isis/static"
		mounts = append(mounts, podman.Mount{Source: c.Backend.StaticDir, Dest: "/var/lib/isis/static", Options: []string{"Z"}})
	}
	for k, v := range c.Backend.Env {
		env[k] = v
	}
	return &podman.ContainerSpec{
		Name:     c.Backend.Name,
		Image:    image,
		Networks: []string{c.Network, c.EgressNetwork},
		Publish:  []string{fmt.Sprintf("%s:%d:%d", ap.Addr(), ap.Port(), BackendPort)},
		Env:      env,
		Secrets:  secrets,
		Mounts:   mounts,
		// Podman 4 with runc cannot mount a secret file into a read-only root
		// unless /run/secrets is writable itself: a tmpfs makes it so.
		Tmpfs:           []string{"/run/secrets"},
		User:            fmt.Sprintf("%d:%d", BackendUID, BackendUID),
		ReadOnly:        true,
		NoNewPrivileges: true,
		DropCaps:        []string{"ALL"},
		Health: &podman.Health{Cmd: []string{"/isis", "healthcheck"}, Interval: 10 * time.Second, Timeout: 3 * time.Second,
			StartPeriod: 5 * time.Second, Retries: 3},
		// Podman's SIGKILL comes only after the lame duck and the drain.
		StopTimeout: uint((shutdownDelay + drain).Seconds()) + 3,
		Restart:     RestartAlways,
		Labels:      map[string]string{LabelManaged: "true", LabelRole: "backend"},
	}
}

// withDatabaseRole makes the container connect as user with the password
// in the Podman secret secret instead of the application role.
func WithDatabaseRole(s *podman.ContainerSpec, user, secret string) {
	s.Env["DATABASE_USER"] = user
	for i, ref := range s.Secrets {
		if ref.Name == config.AppPasswordName {
			s.Secrets[i].Name, s.Secrets[i].Target = secret, secret
			s.Env["DATABASE_PASSWORD_FILE"] = "/run/secrets/" + secret
		}
	}
}

// postgresCaps are the only capabilities the PostgreSQL container keeps of
// Podman's eleven defaults: the official image's docker-entrypoint.sh starts
// as root, creates and chmods the data and socket directories (owned by
// postgres: FOWNER; searching and writing into them: DAC_OVERRIDE), chowns
// what postgres does not own (CHOWN) and drops to the postgres user with
// gosu (SETGID for its groups, SETUID); the server itself then runs with
// none. Lost: FSETID (its chmod 03775 of /var/run/postgresql keeps the bit
// only when it is already set, as in the image), KILL, NET_BIND_SERVICE,
// SETFCAP, SETPCAP, SYS_CHROOT. The Kubernetes StatefulSet keeps the same.
var postgresCaps = []string{"CHOWN", "DAC_OVERRIDE", "FOWNER", "SETGID", "SETUID"}

// Postgres is the postgres18 container. It speaks the official image's
// interface (POSTGRES_* variables, data under /var/lib/postgresql).
func Postgres(c *config.Config) *podman.ContainerSpec {
	pgEnv := map[string]string{"POSTGRES_USER": c.Postgres.User, "POSTGRES_DB": c.Postgres.Database}
	var pgSecrets []podman.SecretRef
	for _, s := range config.SecretTable {
		if s.Postgres != "" {
			pgEnv[s.Postgres+"_FILE"] = "/run/secrets/" + s.Name
			pgSecrets = append(pgSecrets, podman.SecretRef{Name: s.Name, Target: s.Name})
		}
	}
	return &podman.ContainerSpec{
		Name:            c.Postgres.Name,
		Image:           c.Postgres.Image,
		Networks:        []string{c.Network},
		Env:             pgEnv,
		Secrets:         pgSecrets,
		Mounts:          []podman.Mount{{Source: c.Postgres.Data, Dest: "/var/lib/postgresql", Options: mountOpts(c.Postgres.Data)}},
		NoNewPrivileges: true,
		DropCaps:        []string{"ALL"},
		AddCaps:         postgresCaps,
		Health: &podman.Health{Cmd: []string{"pg_isready", "-U", c.Postgres.User, "-d", c.Postgres.Database},
			Interval: 5 * time.Second, Timeout: 3 * time.Second, StartPeriod: 10 * time.Second, Retries: 5},
		StopTimeout: 60,
		Restart:     RestartAlways,
		Labels:      map[string]string{LabelManaged: "true", LabelRole: "postgres"},
	}
}

func mountOpts(src string) []string {
	if strings.HasPrefix(src, "/") {
		return []string{"Z"}
	}
	return nil
}

// sortedEnv returns KEY=value lines in key order.
func SortedEnv(env map[string]string) []string {
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = k + "=" + env[k]
	}
	return out
}
