package host

import (
	"archive/tar"
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/isis-project/isis/ops/spec"

	"github.com/isis-project/isis/ops/config"
	"github.com/isis-project/isis/ops/podman"
)

// PGHelper is a one-off container of the PostgreSQL server's own image on the
// private network (nothing published, all capabilities dropped) in which
// isisctl runs pg_dump, pg_restore and psql against the postgres container.
// The password stays in its Podman secret: each command reads it from the
// mounted file inside the container, so it is never in a container's
// specification, on a command line isisctl sees, or in a log.
type PGHelper struct {
	Conn podman.Engine
	name string
	// owner is the owner role (its password mounted), "" when its secret
	// is missing (a deployment the roles' deploy has not converted yet).
	Owner string
}

const helperSecret = "/run/secrets/" + config.DatabasePasswordName

// StartPGHelper starts the helper (named after the postgres container and
// role), idle until isisctl runs commands in it.
func StartPGHelper(conn podman.Engine, c *config.Config, role string) (*PGHelper, error) {
	pg, err := conn.Inspect(c.Postgres.Name)
	if err != nil {
		return nil, err
	}
	if !pg.Exists || !pg.Running {
		return nil, fmt.Errorf("the database container %s is not running (isisctl up starts it)", c.Postgres.Name)
	}
	image := pg.ImageID // the server's own image: pg_dump and pg_restore of its major version
	if image == "" {
		image = c.Postgres.Image
	}
	// The server's address rather than its name: stopping and starting
	// containers on the network reloads Podman's DNS, which then fails
	// lookups for a moment.
	host := c.Postgres.Name
	if st, err := conn.Inspect(c.Postgres.Name); err == nil && st.IPs[c.Network] != "" {
		host = st.IPs[c.Network]
	}
	cs := &podman.ContainerSpec{
		// A name of its own: a backup the timer starts may meet one by hand.
		Name:     c.Postgres.Name + "-" + role + "-" + RandomHex(3),
		Image:    image,
		Networks: []string{c.Network},
		Env: map[string]string{"PGHOST": host, "PGPORT": "5432", "PGUSER": c.Postgres.User,
			"PGDATABASE": c.Postgres.Database, "PGCONNECT_TIMEOUT": "10", "PGAPPNAME": "isisctl-" + role},
		Secrets:         []podman.SecretRef{{Name: config.DatabasePasswordName, Target: config.DatabasePasswordName}},
		NoNewPrivileges: true,
		DropCaps:        []string{"ALL"},
		// Not the image's entrypoint (which may set up a server): just wait.
		Entrypoint:  []string{"sleep"},
		Command:     []string{"604800"},
		StopTimeout: 1,
		Labels:      map[string]string{spec.LabelManaged: "true", spec.LabelRole: "job"},
	}
	// The roles' passwords, for the role setup and for what runs as the
	// owner role (pg_dump, pg_restore, counting rows).
	owner := ""
	for _, d := range config.DerivedSecrets {
		if ok, err := secretExists(conn, d.Name); err != nil {
			return nil, err
		} else if ok {
			cs.Secrets = append(cs.Secrets, podman.SecretRef{Name: d.Name, Target: d.Name})
			if d.Name == config.OwnerPasswordName {
				owner = c.OwnerRole()
			}
		}
	}
	if err := conn.Create(cs); err != nil {
		return nil, err
	}
	h := &PGHelper{Conn: conn, name: cs.Name, Owner: owner}
	if err := conn.Start(cs.Name); err != nil {
		h.Remove()
		return nil, err
	}
	return h, nil
}

func RandomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func (h *PGHelper) Remove() { _ = h.Conn.WithoutCancel().Remove(h.name, 0) }

// helperError is a command in the helper that exited non-zero.
type helperError struct {
	Code   int
	Stderr string
}

func (e *helperError) Error() string {
	msg := strings.TrimSpace(e.Stderr)
	if msg == "" {
		msg = "no message"
	}
	return fmt.Sprintf("exit code %d: %s", e.Code, msg)
}

// sh runs script with sh -c in the helper (args are $1…) as the bootstrap
// superuser, PGPASSWORD read from the secret file first; it returns standard
// output. Only cluster administration runs this way.
func (h *PGHelper) Sh(script string, args ...string) (string, error) {
	return h.run(`PGPASSWORD="$(cat `+helperSecret+`)" || exit 97; export PGPASSWORD; `, script, args...)
}

// errNoOwnerRole: the owner role's password secret is missing.
var ErrNoOwnerRole = fmt.Errorf("its password secret %s is missing", config.OwnerPasswordName)

// shOwner is sh as the owner role: everything that reads or runs the
// application database's content (pg_dump, pg_restore, counting rows).
func (h *PGHelper) ShOwner(script string, args ...string) (string, error) {
	if h.Owner == "" {
		return "", ErrNoOwnerRole
	}
	return h.run(`PGUSER=`+shQuote(h.Owner)+`; PGPASSWORD="$(cat `+roleSecretPath(config.OwnerPasswordName)+`)" || exit 97; export PGUSER PGPASSWORD; `, script, args...)
}

// shQuote quotes s for sh.
func shQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

func (h *PGHelper) run(prefix, script string, args ...string) (string, error) {
	cmd := append([]string{"sh", "-c", prefix + script, "sh"}, args...)
	for attempt := 1; ; attempt++ {
		var out, errb bytes.Buffer
		code, err := execSplit(h.Conn, h.name, cmd, &out, &errb)
		if err != nil {
			return "", err
		}
		if code == 0 {
			return out.String(), nil
		}
		// Connecting failed (nothing ran): try again, briefly.
		if attempt < 4 && (strings.Contains(errb.String(), "could not translate host name") || strings.Contains(errb.String(), "Connection refused")) {
			time.Sleep(time.Duration(attempt) * 500 * time.Millisecond)
			continue
		}
		return out.String(), &helperError{Code: code, Stderr: lastLines(errb.String(), 5)}
	}
}

// execSplit runs cmd in a running container, standard output and error apart.
func execSplit(conn podman.Engine, name string, cmd []string, stdout, stderr io.Writer) (int, error) {
	return conn.Exec(name, cmd, stdout, stderr)
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

// copyOut streams the file at path out of the helper (through the API, as a
// tar stream) into w and returns its size.
func (h *PGHelper) CopyOut(path string, w io.Writer) (int64, error) {
	pr, pw := io.Pipe()
	copyFn, err := h.Conn.CopyOut(h.name, path, pw)
	if err != nil {
		return 0, fmt.Errorf("copy %s out of %s: %w", path, h.name, err)
	}
	go func() { pw.CloseWithError(copyFn()) }()
	defer pr.Close()
	tr := tar.NewReader(pr)
	hdr, err := tr.Next()
	if err != nil {
		return 0, fmt.Errorf("copy %s out of %s: %w", path, h.name, err)
	}
	n, err := io.Copy(w, tr)
	if err != nil {
		pr.CloseWithError(err)
		return n, err
	}
	if n != hdr.Size {
		return n, fmt.Errorf("copy %s out of %s: %d bytes of %d", path, h.name, n, hdr.Size)
	}
	_, _ = io.Copy(io.Discard, pr)
	return n, nil
}

// copyIn streams size bytes of r into the helper as dir/name.
func (h *PGHelper) CopyIn(dir, name string, r io.Reader, size int64) error {
	pr, pw := io.Pipe()
	go func() {
		tw := tar.NewWriter(pw)
		err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: size, ModTime: time.Now(), Typeflag: tar.TypeReg})
		if err == nil {
			_, err = io.CopyN(tw, r, size)
		}
		if err == nil {
			err = tw.Close()
		}
		pw.CloseWithError(err)
	}()
	copyFn, err := h.Conn.CopyIn(h.name, dir, pr)
	if err != nil {
		pr.CloseWithError(err)
		return fmt.Errorf("copy %s into %s: %w", name, h.name, err)
	}
	if err := copyFn(); err != nil {
		pr.CloseWithError(err)
		return fmt.Errorf("copy %s into %s: %w", name, h.name, err)
	}
	return nil
}

// dumpContents is what a full read of a dump found: the rows of each table
// and the applied migrations (schema_migrations' rows).
type DumpContents struct {
	Tables     map[string]int64
	Migrations []string
}

// dumpAWK counts the rows of each COPY block of pg_restore's data-only SQL
// (one line per row: COPY's text format escapes newlines) and prints the
// versions in schema_migrations.
const dumpAWK = `inb && $0 == "\\." { print "count\t" t "\t" n; inb = 0; next }
inb { n++; if (t == "public.schema_migrations") { split($0, f, "\t"); print "migration\t" f[1] }; next }
/^COPY / { t = $2; n = 0; inb = 1; next }
END { if (inb) { print "unterminated\t" t; exit 6 } }`

// inspectDump reads the whole dump at path with pg_restore in the helper: its
// table of contents, then every row, so a corrupted or truncated dump fails
// here, before anything is touched.
func (h *PGHelper) InspectDump(path string) (*DumpContents, error) {
	out, err := h.Sh(`pg_restore --list "$1" >/dev/null || exit 3
{ pg_restore --data-only --file=- "$1"; echo "$?" >/tmp/isis-pg-restore-rc; } | awk "$2" || exit 4
rc=$(cat /tmp/isis-pg-restore-rc); [ "$rc" = 0 ] || exit 5`, path, dumpAWK)
	if err != nil {
		if he, ok := err.(*helperError); ok {
			switch he.Code {
			case 3:
				return nil, fmt.Errorf("pg_restore cannot read its table of contents: %s", he.Stderr)
			case 4, 5:
				if strings.Contains(out, "unterminated\t") {
					return nil, fmt.Errorf("its data is cut short (%s)", he.Stderr)
				}
				return nil, fmt.Errorf("pg_restore cannot read its data: %s", he.Stderr)
			}
		}
		return nil, err
	}
	dc := &DumpContents{Tables: map[string]int64{}}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		f := strings.Split(sc.Text(), "\t")
		switch {
		case len(f) == 3 && f[0] == "count":
			n, _ := strconv.ParseInt(f[2], 10, 64)
			dc.Tables[f[1]] = n
		case len(f) == 2 && f[0] == "migration":
			dc.Migrations = append(dc.Migrations, f[1])
		}
	}
	if len(dc.Tables) == 0 {
		return nil, fmt.Errorf("it holds no table data")
	}
	return dc, nil
}

// quoteIdent quotes a PostgreSQL identifier.
func QuoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// quoteLiteral quotes a PostgreSQL string literal.
func QuoteLiteral(s string) string { return `'` + strings.ReplaceAll(s, `'`, `''`) + `'` }

// psql runs SQL on database db (ON_ERROR_STOP; each -c its own transaction)
// and returns the unaligned, tab-separated rows.
func (h *PGHelper) Psql(db string, sql ...string) (string, error) {
	return h.Sh(psqlScript, psqlArgs(db, sql)...)
}

// psqlOwner is psql as the owner role.
func (h *PGHelper) PsqlOwner(db string, sql ...string) (string, error) {
	return h.ShOwner(psqlScript, psqlArgs(db, sql)...)
}

const psqlScript = `db=$1; shift; set -- psql -X -q -v ON_ERROR_STOP=1 -At -F "$(printf '\t')" -d "$db" "$@"; "$@"`

func psqlArgs(db string, sql []string) []string {
	args := []string{db}
	for _, s := range sql {
		args = append(args, "-c", s)
	}
	return args
}

// countRows counts the rows of the given tables (names as pg_dump wrote
// them, already quoted where needed) in database db.
func (h *PGHelper) CountRows(db string, tables []string) (map[string]int64, error) {
	if len(tables) == 0 {
		return map[string]int64{}, nil
	}
	var parts []string
	for _, t := range tables {
		parts = append(parts, fmt.Sprintf("SELECT %s, count(*) FROM %s", QuoteLiteral(t), t))
	}
	out, err := h.PsqlOwner(db, strings.Join(parts, " UNION ALL "))
	if err != nil {
		return nil, err
	}
	got := map[string]int64{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if t, n, ok := strings.Cut(l, "\t"); ok {
			got[t], _ = strconv.ParseInt(n, 10, 64)
		}
	}
	return got, nil
}
