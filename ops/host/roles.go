package host

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/isis-project/isis/ops/spec"

	"github.com/isis-project/isis/ops/config"
	"github.com/isis-project/isis/ops/podman"
)

// roleSecretPath is where a role's password is mounted in the PGHelper.
func roleSecretPath(name string) string { return "/run/secrets/" + name }

// rolesSQL is the psql script (run as the bootstrap superuser on the
// maintenance database) that creates the two roles or brings them back to
// their attributes and passwords (read from the mounted secrets by psql
// itself: no password on any command line), and gives the database to the
// owner role.
func rolesSQL(c *config.Config) string {
	owner, app, db := c.OwnerRole(), c.AppRole(), c.Postgres.Database
	var b strings.Builder
	fmt.Fprintf(&b, "\\set ON_ERROR_STOP 1\nSET search_path = pg_catalog, pg_temp;\n")
	// The passwords go to the server in ALTER ROLE: keep that statement out
	// of the server's log whatever log_statement says, failed or not.
	fmt.Fprintf(&b, "SET log_statement = 'none';\nSET log_min_error_statement = 'panic';\nSET log_min_duration_statement = -1;\n")
	fmt.Fprintf(&b, "\\set owner_pw `cat %s`\n\\set app_pw `cat %s`\n", roleSecretPath(config.OwnerPasswordName), roleSecretPath(config.AppPasswordName))
	for _, r := range []string{owner, app} {
		fmt.Fprintf(&b, "SELECT NOT EXISTS (SELECT FROM pg_roles WHERE rolname = %s) AS missing \\gset\n\\if :missing\nCREATE ROLE %s;\n\\endif\n",
			QuoteLiteral(r), QuoteIdent(r))
	}
	const attrs = "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS"
	fmt.Fprintf(&b, "ALTER ROLE %s %s INHERIT CONNECTION LIMIT -1 PASSWORD :'owner_pw';\n", QuoteIdent(owner), attrs)
	fmt.Fprintf(&b, "ALTER ROLE %s %s NOINHERIT CONNECTION LIMIT -1 PASSWORD :'app_pw';\n", QuoteIdent(app), attrs)
	// Neither may be a member of another role (pg_execute_server_program,
	// pg_read_server_files, a superuser…): memberships granted by hand go.
	fmt.Fprintf(&b, `DO $members$ DECLARE r record; BEGIN
  FOR r IN SELECT m.roleid::regrole AS role, m.member::regrole AS member FROM pg_auth_members m
      WHERE m.member IN (%s::regrole, %s::regrole) LOOP
    EXECUTE format('REVOKE %%s FROM %%s', r.role, r.member);
  END LOOP;
END $members$;
`, QuoteLiteral(owner), QuoteLiteral(app))
	fmt.Fprintf(&b, "ALTER DATABASE %s OWNER TO %s;\n", QuoteIdent(db), QuoteIdent(owner))
	return b.String()
}

// reownSQL is the script (run as the superuser on database db) that gives
// every object of schema public still owned by the superuser to the owner
// role (the upgrade from the single role: REASSIGN OWNED BY the bootstrap
// superuser is refused, so one ALTER … OWNER per object) and lets only the
// owner create in schema public. It reads the catalogs only: nothing of the
// database's own code runs.
func reownSQL(c *config.Config) string {
	return `DO $reown$
DECLARE r record; su oid := ` + QuoteLiteral(c.Postgres.User) + `::regrole; o text := ` + QuoteLiteral(c.OwnerRole()) + `;
BEGIN
  -- Tables, views, materialized views, foreign tables first: their indexes,
  -- row types and owned sequences follow them.
  FOR r IN SELECT cl.oid::regclass AS n, cl.relkind FROM pg_class cl JOIN pg_namespace ns ON ns.oid = cl.relnamespace
      WHERE ns.nspname = 'public' AND cl.relowner = su AND cl.relkind IN ('r', 'p', 'v', 'm', 'f') LOOP
    EXECUTE format('ALTER %s %s OWNER TO %I', CASE r.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
      WHEN 'f' THEN 'FOREIGN TABLE' ELSE 'TABLE' END, r.n, o);
  END LOOP;
  FOR r IN SELECT cl.oid::regclass AS n FROM pg_class cl JOIN pg_namespace ns ON ns.oid = cl.relnamespace
      WHERE ns.nspname = 'public' AND cl.relowner = su AND cl.relkind = 'S' LOOP
    EXECUTE format('ALTER SEQUENCE %s OWNER TO %I', r.n, o);
  END LOOP;
  FOR r IN SELECT p.oid::regprocedure AS n, p.prokind FROM pg_proc p JOIN pg_namespace ns ON ns.oid = p.pronamespace
      WHERE ns.nspname = 'public' AND p.proowner = su LOOP
    EXECUTE format('ALTER %s %s OWNER TO %I', CASE r.prokind WHEN 'p' THEN 'PROCEDURE' WHEN 'a' THEN 'AGGREGATE' ELSE 'FUNCTION' END, r.n, o);
  END LOOP;
  FOR r IN SELECT t.oid::regtype AS n, t.typtype FROM pg_type t JOIN pg_namespace ns ON ns.oid = t.typnamespace
      WHERE ns.nspname = 'public' AND t.typowner = su AND t.typelem = 0
        AND (t.typtype IN ('e', 'd', 'r', 'm') OR (t.typtype = 'c' AND (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c')) LOOP
    EXECUTE format('ALTER %s %s OWNER TO %I', CASE r.typtype WHEN 'd' THEN 'DOMAIN' ELSE 'TYPE' END, r.n, o);
  END LOOP;
END
$reown$;
` + SchemaSQL(c)
}

// schemaSQL lets the owner role, and only it, create in schema public
// (PostgreSQL before 15 lets every role).
func SchemaSQL(c *config.Config) string {
	return "GRANT CREATE, USAGE ON SCHEMA public TO " + QuoteIdent(c.OwnerRole()) + ";\nREVOKE CREATE ON SCHEMA public FROM PUBLIC;\n"
}

// appGrantSQL grants the application role what the server needs at runtime
// on database db (psql variable db): the rows of every table, the sequences,
// and the same on what the owner creates later (default privileges are per
// database: a restored database gets them again). The owner role may run it.
func AppGrantSQL(c *config.Config) string {
	owner, app := QuoteIdent(c.OwnerRole()), QuoteIdent(c.AppRole())
	return `GRANT CONNECT, TEMPORARY ON DATABASE :"db" TO ` + app + `;
GRANT USAGE ON SCHEMA public TO ` + app + `;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO ` + app + `;
GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO ` + app + `;
ALTER DEFAULT PRIVILEGES FOR ROLE ` + owner + ` IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO ` + app + `;
ALTER DEFAULT PRIVILEGES FOR ROLE ` + owner + ` IN SCHEMA public GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO ` + app + `;
`
}

// RolesResult reports EnsureRoles.
type RolesResult struct {
	Owner, App string
	// Unchanged: nothing to do since the last EnsureRoles on this host (its
	// marker's fingerprint still matches), no helper started.
	Unchanged bool
}

// rolesMarker names the empty, labelled volume that records the last
// EnsureRoles that succeeded on this host.
func rolesMarker(c *config.Config) string { return "isisctl-roles-" + c.Postgres.Name }

const rolesFingerprintLabel = "io.isis.roles-fingerprint"

// rolesFingerprint covers everything EnsureRoles sets: the scripts (so a
// newer isisctl applies its own), the derived passwords (keyed by the
// database password: a rotation changes it, and the label reveals nothing)
// and the postgres container (a new one may hold a new server).
func rolesFingerprint(conn podman.Engine, c *config.Config) (string, error) {
	pg, err := conn.Inspect(c.Postgres.Name)
	if err != nil {
		return "", err
	}
	if !pg.Exists {
		return "", fmt.Errorf("inspect container %q: no such container", c.Postgres.Name)
	}
	v, err := c.SecretValues()
	if err != nil {
		return "", err
	}
	m := hmac.New(sha256.New, []byte(v[config.DatabasePasswordName]))
	for _, part := range []string{"isis roles fingerprint v1", pg.ID, rolesSQL(c), reownSQL(c), AppGrantSQL(c)} {
		m.Write([]byte(part))
		m.Write([]byte{0})
	}
	return hex.EncodeToString(m.Sum(nil)), nil
}

func rolesMarked(conn podman.Engine, c *config.Config, fingerprint string) bool {
	labels, err := conn.VolumeLabels(rolesMarker(c))
	return err == nil && hmac.Equal([]byte(labels[rolesFingerprintLabel]), []byte(fingerprint))
}

func markRoles(conn podman.Engine, c *config.Config, fingerprint string) {
	_ = conn.VolumeRemove(rolesMarker(c), false)
	_ = conn.VolumeCreate(rolesMarker(c), map[string]string{rolesFingerprintLabel: fingerprint, spec.LabelManaged: "true"})
}

// EnsureRoles creates or maintains the owner and application roles and the
// application database's ownership and grants (idempotent; a deployment from
// before the roles is converted). It runs as the bootstrap superuser through
// the PGHelper.
//
// A deploy that changes nothing starts no helper: when the marker of the
// last run matches (same scripts, passwords and postgres container), the
// roles are as that run left them. A change made to them by hand outside
// isisctl is not looked for: a new secrets.database_password, a new
// postgres container or removing the marker volume (podman volume rm
// isisctl-roles-POSTGRES_NAME) makes the next deploy apply them again.
func EnsureRoles(conn podman.Engine, c *config.Config) (*RolesResult, error) {
	fp, fpErr := rolesFingerprint(conn, c)
	if fpErr == nil && rolesMarked(conn, c, fp) {
		return &RolesResult{Owner: c.OwnerRole(), App: c.AppRole(), Unchanged: true}, nil
	}
	h, err := StartPGHelper(conn, c, "roles")
	if err != nil {
		return nil, err
	}
	defer h.Remove()
	if err := ensureRoles(h, c); err != nil {
		return nil, err
	}
	script := "SET search_path = pg_catalog, pg_temp;\nBEGIN;\n" + reownSQL(c) + AppGrantSQL(c) + "COMMIT;\n"
	if _, err := h.Sh(RunScript, c.Postgres.Database, script); err != nil {
		return nil, fmt.Errorf("give database %s to %s and grant %s: %w", c.Postgres.Database, c.OwnerRole(), c.AppRole(), err)
	}
	if fpErr == nil {
		markRoles(conn, c, fp)
	}
	return &RolesResult{Owner: c.OwnerRole(), App: c.AppRole()}, nil
}

func ensureRoles(h *PGHelper, c *config.Config) error {
	if _, err := h.Sh(RunScript, "postgres", rolesSQL(c)); err != nil {
		return fmt.Errorf("create the database roles %s and %s: %w", c.OwnerRole(), c.AppRole(), err)
	}
	return nil
}

// runScript runs the psql script $2 on database $1 (psql variable db).
const RunScript = `printf '%s' "$2" | psql -X -q -v ON_ERROR_STOP=1 -v db="$1" -d "$1" -f -`

// rolesMissing: the owner role's secret is missing (an isisctl from before
// the roles deployed this database): the next deploy creates it.
func RolesMissing(c *config.Config, err error) error {
	return fmt.Errorf("the database roles %s and %s are not set up (%v): isisctl deploy or isisctl up creates them", c.OwnerRole(), c.AppRole(), err)
}
