package cutover

import (
	"context"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/isis-project/isis/ops/spec"

	"github.com/isis-project/isis/ops/audit"
	"github.com/isis-project/isis/ops/config"
	"github.com/isis-project/isis/ops/host"
	"github.com/isis-project/isis/ops/podman"
	"github.com/isis-project/isis/ops/steps"
)

// ImportSourceSecret holds the Django database's connection string while an
// import from elsewhere (--from) runs; it is removed when the import ends.
const ImportSourceSecret = "isis-import-django-source"

// ImportDjangoOptions say where the Django database is and how to import.
type ImportDjangoOptions struct {
	// FromDatabase is a database on the postgres container's own server,
	// read as ImportRole, a temporary read-only role made for the import
	// (never with the backend's own credentials).
	FromDatabase string `json:"from_database,omitempty"`
	// FromDSN is a connection string elsewhere; it travels in a temporary
	// Podman secret, never on a command line or in the environment.
	FromDSN   string `json:"-"`
	UserTable string `json:"user_table,omitempty"`
	DryRun    bool   `json:"dry_run"`
	// Merge imports into an isis that has users of its own.
	Merge bool `json:"merge,omitempty"`
}

// Validate checks the options before anything runs.
func (o ImportDjangoOptions) Validate() error {
	if (o.FromDatabase == "") == (o.FromDSN == "") {
		return errors.New("name the Django database with exactly one of --from-database NAME and --from DSN (or --from-file)")
	}
	if o.FromDatabase != "" && (len(o.FromDatabase) > 63 || strings.ContainsAny(o.FromDatabase, "\x00/?#'\\ ")) {
		return fmt.Errorf("--from-database %q is not a PostgreSQL database name", o.FromDatabase)
	}
	if o.UserTable != "" && (len(o.UserTable) > 63 || strings.ContainsRune(o.UserTable, 0)) {
		return fmt.Errorf("--user-table %q is not a table name", o.UserTable)
	}
	return nil
}

// importDjangoArgs are the arguments of `isis import-django` in the job.
func importDjangoArgs(o ImportDjangoOptions) []string {
	args := []string{"import-django", "--output", "json"} // the image's entrypoint is /isis
	// Either way the job reads a connection string from the secret: to a
	// database elsewhere, or (--from-database) to the postgres container's
	// server as the temporary read-only role, never as the backend's own.
	args = append(args, "--from-file", "/run/secrets/"+ImportSourceSecret)
	if o.UserTable != "" {
		args = append(args, "--user-table", o.UserTable)
	}
	if o.DryRun {
		args = append(args, "--dry-run")
	}
	if o.Merge {
		args = append(args, "--merge")
	}
	return args
}

// withImportSource mounts the secret holding the source's connection
// string and, for a Django database elsewhere, joins the egress network.
func withImportSource(cs *podman.ContainerSpec, c *config.Config, o ImportDjangoOptions) {
	if o.FromDSN != "" {
		cs.Networks = append(cs.Networks, c.EgressNetwork)
	}
	cs.Secrets = append(cs.Secrets, podman.SecretRef{Name: ImportSourceSecret, Target: ImportSourceSecret, UID: spec.BackendUID, GID: spec.BackendUID})
}

// ImportDjangoSpec is the one-off container that runs `isis import-django`:
// a job like `isisctl migrate`'s (the backend's container, with its secrets,
// settings, user and read-only root, on the private network where the
// postgres container is, nothing published, run once), which with FromDSN
// also joins the egress network and mounts the source secret.
func ImportDjangoSpec(conn podman.Engine, c *config.Config, image string, o ImportDjangoOptions) (*podman.ContainerSpec, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	spec, err := host.OneOff(conn, c, image, c.Backend.Name+"-import-django", importDjangoArgs(o)...)
	if err != nil {
		return nil, err
	}
	withImportSource(spec, c, o)
	return spec, nil
}

// ImportDjangoResult is what the import container reported.
type ImportDjangoResult struct {
	Image    string          `json:"image"`
	ExitCode int             `json:"exit_code"`
	Summary  json.RawMessage `json:"summary,omitempty"`
	Steps    []steps.Step    `json:"steps"`
}

// ImportRole is the temporary role an import from the postgres container's
// own server (--from-database) reads the Django database as.
const ImportRole = "isis_import_django"

// scramVerifier is PostgreSQL's SCRAM-SHA-256 verifier of password: the
// server stores it as given, so the password itself reaches neither the
// server's log nor a command line.
func scramVerifier(password string) string {
	salt := make([]byte, 16)
	_, _ = rand.Read(salt)
	const iter = 4096
	salted, _ := pbkdf2.Key(sha256.New, password, salt, iter, sha256.Size)
	mac := func(key []byte, msg string) []byte {
		m := hmac.New(sha256.New, key)
		m.Write([]byte(msg))
		return m.Sum(nil)
	}
	stored := sha256.Sum256(mac(salted, "Client Key"))
	b := base64.StdEncoding.EncodeToString
	return fmt.Sprintf("SCRAM-SHA-256$%d:%s$%s:%s", iter, b(salt), b(stored[:]), b(mac(salted, "Server Key")))
}

// createImportRole makes ImportRole, able to read db's tables and nothing
// else: no superuser, no CREATEDB or CREATEROLE, no inherited privileges,
// read-only transactions by default, CONNECT on db, USAGE on its public
// schema, SELECT on its tables and sequences; valid for a day at most. It
// returns the connection string the job uses.
func createImportRole(h *host.PGHelper, c *config.Config, db string) (string, error) {
	pw := host.RandomHex(24)
	r := host.QuoteIdent(ImportRole)
	_, err := h.Psql(c.Postgres.Database,
		`CREATE ROLE `+r+` LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOREPLICATION NOBYPASSRLS CONNECTION LIMIT 4 `+
			`PASSWORD `+host.QuoteLiteral(scramVerifier(pw))+` VALID UNTIL `+host.QuoteLiteral(time.Now().Add(24*time.Hour).UTC().Format(time.RFC3339)),
		`ALTER ROLE `+r+` SET default_transaction_read_only = on`,
		`COMMENT ON ROLE `+r+` IS `+host.QuoteLiteral("isisctl import-django: temporary read-only role for database "+db),
		`GRANT CONNECT ON DATABASE `+host.QuoteIdent(db)+` TO `+r)
	if err != nil {
		return "", fmt.Errorf("create the import's read-only role: %w", err)
	}
	if _, err := h.Psql(db, `GRANT USAGE ON SCHEMA public TO `+r,
		`GRANT SELECT ON ALL TABLES IN SCHEMA public TO `+r,
		`GRANT SELECT ON ALL SEQUENCES IN SCHEMA public TO `+r); err != nil {
		return "", fmt.Errorf("grant the import's role SELECT on %s: %w", db, err)
	}
	return fmt.Sprintf("host=%s port=5432 user=%s password=%s dbname='%s' sslmode=disable", c.Postgres.Name, ImportRole, pw, db), nil
}

// dropImportRole drops ImportRole if it exists (its privileges in db and in
// the database its comment names first); it reports whether it existed.
func dropImportRole(h *host.PGHelper, c *config.Config, db string) (bool, error) {
	out, err := h.Psql(c.Postgres.Database, `SELECT COALESCE(shobj_description(oid, 'pg_authid'), '') FROM pg_roles WHERE rolname = `+host.QuoteLiteral(ImportRole))
	if err != nil {
		return false, fmt.Errorf("look for the import's role: %w", err)
	}
	if out == "" { // no row: no role
		return false, nil
	}
	dbs := []string{db}
	if prev, ok := strings.CutPrefix(strings.TrimSpace(out), "isisctl import-django: temporary read-only role for database "); ok && prev != db {
		dbs = append(dbs, prev)
	}
	for _, d := range dbs {
		exists, err := h.Psql(c.Postgres.Database, `SELECT 1 FROM pg_database WHERE datname = `+host.QuoteLiteral(d))
		if err != nil {
			return true, err
		}
		if strings.TrimSpace(exists) == "1" {
			if _, err := h.Psql(d, `DROP OWNED BY `+host.QuoteIdent(ImportRole)); err != nil {
				return true, fmt.Errorf("drop the import's role's privileges in %s: %w", d, err)
			}
		}
	}
	if _, err := h.Psql(c.Postgres.Database, `DROP ROLE IF EXISTS `+host.QuoteIdent(ImportRole)); err != nil {
		return true, fmt.Errorf("drop the import's role: %w", err)
	}
	return true, nil
}

// ImportConflictError is an import stopped by conflicts (nothing written).
type ImportConflictError struct{ Conflicts []string }

func (e *ImportConflictError) Error() string {
	return fmt.Sprintf("import stopped by %d conflict(s); nothing was written:\n%s", len(e.Conflicts), strings.Join(e.Conflicts, "\n"))
}

// printable is s as it is when every character is printable (spaces
// included), else quoted with Go's escapes: a conflict's parts come from the
// Django database and must not reach a terminal raw.
func printable(s string) string {
	for _, r := range s {
		if r != ' ' && !unicode.IsPrint(r) {
			return strconv.Quote(s)
		}
	}
	return s
}

// conflictError is the conflicts of an import's JSON summary, each on one
// line, escaped (nil when there are none).
func conflictError(summary json.RawMessage) *ImportConflictError {
	var s struct {
		Conflicts []struct{ Table, ID, Problem string }
	}
	if json.Unmarshal(summary, &s) != nil || len(s.Conflicts) == 0 {
		return nil
	}
	ce := &ImportConflictError{}
	for _, c := range s.Conflicts {
		ce.Conflicts = append(ce.Conflicts, printable(c.Table)+" id="+printable(c.ID)+": "+printable(c.Problem))
	}
	return ce
}

// ImportDjango runs `isis import-django` in a one-off container of image
// (ImportSteps): progress (nil: none) gets each step as it ends, out the
// import's progress lines; it returns the import's JSON summary.
func ImportDjango(ctx context.Context, conn podman.Engine, c *config.Config, image string, o ImportDjangoOptions,
	progress func(steps.Step), out func(string)) (*ImportDjangoResult, error) {
	cs, err := ImportDjangoSpec(conn, c, image, o)
	if err != nil {
		return nil, err
	}
	if out == nil {
		out = func(string) {}
	}
	ir := &importRun{ctx: ctx, conn: conn, c: c, o: o, cs: cs, out: out, res: &ImportDjangoResult{Image: image, ExitCode: -1}}
	run := &steps.Runner[*importRun]{Table: ImportSteps, State: ir, Rec: &ir.res.Steps, Progress: progress}
	return ir.res, run.Run(0, len(ImportSteps)-1)
}

// importSummaryDetail is an import summary's counts, for the audit trail.
func importSummaryDetail(summary json.RawMessage) string {
	var s struct {
		Users, Profiles struct{ Created, Updated int }
		Outstanding     struct{ Created int } `json:"outstanding_tokens"`
		Blacklisted     struct{ Created int } `json:"blacklisted_tokens"`
		Changes         int
		Conflicts       []json.RawMessage
	}
	if json.Unmarshal(summary, &s) != nil {
		return "no summary"
	}
	return fmt.Sprintf("users %d created %d updated, profiles %d created %d updated, refresh tokens %d, blacklisted %d: %d change(s), %d conflict(s)",
		s.Users.Created, s.Users.Updated, s.Profiles.Created, s.Profiles.Updated, s.Outstanding.Created, s.Blacklisted.Created, s.Changes, len(s.Conflicts))
}

// importSourceDetail names the source for the audit trail (never a DSN).
func importSourceDetail(o ImportDjangoOptions) string {
	if o.FromDatabase != "" {
		return "from database " + o.FromDatabase + " as " + ImportRole
	}
	return "from a connection string (--from/--from-file)"
}

// AuditImport records an isisctl import-django in the host's audit trail:
// action import-django, the result (ok, conflicts, failed), and in the
// detail the dry run, the source and the counts.
func AuditImport(conn podman.Engine, start time.Time, image string, o ImportDjangoOptions, r *ImportDjangoResult, err error) {
	res := "ok"
	var ce *ImportConflictError
	switch {
	case errors.As(err, &ce):
		res = "conflicts"
	case err != nil:
		res = "failed"
	}
	detail := importSourceDetail(o)
	if o.DryRun {
		detail = "dry run, " + detail
	}
	if r != nil && len(r.Summary) > 0 {
		detail += "; " + importSummaryDetail(r.Summary)
	}
	if err != nil && ce == nil {
		msg, _, _ := strings.Cut(err.Error(), "\n")
		detail += "; " + printable(msg)
	}
	_ = audit.Append(conn.WithoutCancel(), audit.Entry{Time: start.UTC(), User: audit.WhoAmI(), Action: "import-django", Image: image,
		Result: res, Duration: time.Since(start).Round(time.Millisecond).String(), Detail: detail})
}
