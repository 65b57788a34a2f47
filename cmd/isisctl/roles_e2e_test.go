package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/isis-project/isis/internal/opstest"
)

// singleRoleCommit is isisctl before the database roles: its deployments
// run everything as postgres.user, the server's bootstrap superuser.
const singleRoleCommit = "ac120a8ab84fc3c719dc71df5c7115cf664aa5f9"

// oldIsisctl builds isisctl at singleRoleCommit from this repository
// (-trimpath: from the build cache when it did before), before the test
// takes its turn, and puts the e2e isis binary (isisBin) beside it for its
// image builds.
func oldIsisctl(t *testing.T, isisBin string) string {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin", "isisctl")
	if b, err := exec.Command("sh", "-c", `cd "$(git rev-parse --show-toplevel)" && git archive "$1" | tar -x -C "$2"`, "sh", singleRoleCommit, dir).CombinedOutput(); err != nil {
		t.Fatalf("the single-role isisctl (%s) is not in this repository's history: %v\n%s", singleRoleCommit, err, b)
	}
	os.MkdirAll(filepath.Dir(bin), 0o755)
	cmd := exec.Command("go", "build", "-trimpath", "-tags", opstest.BuildTags, "-o", bin, "./cmd/isisctl")
	cmd.Dir, cmd.Env = dir, append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build the single-role isisctl: %v\n%s", err, b)
	}
	if b, err := exec.Command("cp", isisBin, filepath.Join(dir, "bin", "isis")).CombinedOutput(); err != nil {
		t.Fatalf("cp isis: %v %s", err, b)
	}
	return bin
}

// TestRolesUpgrade: a deployment made by the single-role isisctl (every
// table owned by the bootstrap superuser, the backend connected as it) is
// converted by the next deploy: the owner and application roles made, every
// object re-owned, the data intact, both slots connected as the application
// role, which is no superuser and can change no schema, and everything the
// server does at runtime (register, login, refresh, blacklist, throttles,
// LISTEN/NOTIFY, createsuperuser, flushexpiredtokens) works as it.
func TestRolesUpgrade(t *testing.T) {
	t.Parallel()
	e := newE2E(t, 3043, "")
	old := oldIsisctl(t, filepath.Join(e.bin, "isis")) // the build does not hold the turn
	takeTurn(t)
	e.cleanup()
	t.Cleanup(e.cleanup)
	exec.Command("podman", "--url", e.url, "secret", "rm", "isis-database-owner-password", "isis-database-app-password").Run()
	runOld := func(args ...string) {
		t.Helper()
		b, err := exec.Command(old, append([]string{"--config", e.config, "--url", e.url}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("single-role isisctl %s: %v\n%s", strings.Join(args, " "), err, b)
		}
	}
	runOld("secrets", "--rotate")
	runOld("deploy")
	if status, body := e.post("/api/auth/register/", `{"email":"before@example.com","password":"upgrade-pass-12345"}`); status != 201 {
		t.Fatalf("register: %d %s", status, body)
	}
	if got := e.psqlE2E("isis", "SELECT tableowner FROM pg_tables WHERE tablename = 'users'"); got != "isis" {
		t.Fatalf("the single-role deployment's users table is owned by %q, want isis", got)
	}
	users := e.psqlE2E("isis", "SELECT string_agg(u::text, ';' ORDER BY id) FROM users u")
	// The server logs every statement from now on: the roles' passwords
	// must not be in its log.
	e.psqlE2E("postgres", "ALTER SYSTEM SET log_statement = 'all'")
	e.psqlE2E("postgres", "SELECT pg_reload_conf()")

	start := time.Now()
	out, code := e.isisctl("deploy")
	if code != 0 {
		t.Fatalf("upgrade deploy: exit %d\n%s", code, out)
	}
	t.Logf("upgrade deploy: %s\n%s", time.Since(start).Round(time.Millisecond), out)
	if got := e.psqlE2E("isis", "SELECT string_agg(u::text, ';' ORDER BY id) FROM users u"); got != users {
		t.Errorf("users after the upgrade:\n%s\nwant\n%s", got, users)
	}
	// The application role's password (HMAC-SHA256 of the database
	// password) logs in, and is nowhere in the server's log, which logged
	// the statements around it.
	m := hmac.New(sha256.New, []byte("e2e-database-password"))
	m.Write([]byte("isis database application role password v1"))
	appPW := hex.EncodeToString(m.Sum(nil))
	if b, err := exec.Command("podman", "--url", e.url, "exec", "-e", "PGPASSWORD="+appPW, "pg-e2e", "psql", "-X", "-h", "127.0.0.1", "-U", "isis_app", "-d", "isis",
		"-Atc", "SELECT current_user").CombinedOutput(); err != nil || strings.TrimSpace(string(b)) != "isis_app" {
		t.Errorf("log in as isis_app with the derived password: %v %s", err, b)
	}
	logs, _ := exec.Command("podman", "--url", e.url, "logs", "pg-e2e").CombinedOutput()
	if !strings.Contains(string(logs), "statement: ") || strings.Contains(string(logs), appPW) || strings.Contains(string(logs), "PASSWORD") {
		t.Errorf("the server's log (statement logging on: %v) holds a role's password", strings.Contains(string(logs), "statement: "))
	}
	// The roles: no attribute beyond LOGIN, no membership.
	if got := e.psqlE2E("postgres", `SELECT string_agg(rolname || ':' || rolsuper || rolcreaterole || rolcreatedb || rolreplication || rolbypassrls || rolcanlogin, ' ' ORDER BY rolname)
		FROM pg_roles WHERE rolname IN ('isis_owner', 'isis_app')`); got != "isis_app:falsefalsefalsefalsefalsetrue isis_owner:falsefalsefalsefalsefalsetrue" {
		t.Errorf("roles: %s", got)
	}
	if got := e.psqlE2E("postgres", "SELECT count(*) FROM pg_auth_members WHERE member IN ('isis_owner'::regrole, 'isis_app'::regrole)"); got != "0" {
		t.Errorf("the roles are members of %s roles", got)
	}
	// Every object of schema public, and the database, owned by isis_owner.
	for what, q := range map[string]string{
		"relations": "SELECT string_agg(c.relname, ' ') FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relowner <> 'isis_owner'::regrole",
		"functions": "SELECT string_agg(p.proname, ' ') FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'public' AND p.proowner <> 'isis_owner'::regrole",
		"types":     "SELECT string_agg(t.typname, ' ') FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace WHERE n.nspname = 'public' AND t.typowner <> 'isis_owner'::regrole",
		"database":  "SELECT string_agg(datname, ' ') FROM pg_database WHERE datname = 'isis' AND datdba <> 'isis_owner'::regrole",
	} {
		if got := e.psqlE2E("isis", q); got != "" {
			t.Errorf("%s not owned by isis_owner: %s", what, got)
		}
	}
	// Both slots connect as the application role, without the superuser's password.
	for _, slot := range []string{"isis-e2e", "isis-e2e-b"} {
		b, err := exec.Command("podman", "--url", e.url, "inspect", slot, "--format", "{{json .Config.Env}} {{json .Config.Secrets}}").CombinedOutput()
		if err != nil {
			t.Fatalf("inspect %s: %v %s", slot, err, b)
		}
		s := string(b)
		if !strings.Contains(s, "DATABASE_USER=isis_app") || !strings.Contains(s, "isis-database-app-password") || strings.Contains(s, `"isis-database-password"`) {
			t.Errorf("%s: %s", slot, s)
		}
	}
	if got := e.psqlE2E("postgres", "SELECT string_agg(DISTINCT usename, ' ') FROM pg_stat_activity WHERE datname = 'isis' AND pid <> pg_backend_pid()"); got != "isis_app" {
		t.Errorf("the database's sessions belong to %q, want isis_app only", got)
	}
	// What the server does at runtime, as the application role.
	if status, body := e.post("/api/auth/register/", `{"email":"after@example.com","password":"upgrade-pass-12345"}`); status != 201 {
		t.Errorf("register after the upgrade: %d %s", status, body)
	}
	status, body := e.post("/api/token/", `{"email":"before@example.com","password":"upgrade-pass-12345"}`)
	var tok struct{ Access, Refresh string }
	if status != 200 || json.Unmarshal([]byte(body), &tok) != nil || tok.Refresh == "" {
		t.Fatalf("login after the upgrade: %d %s", status, body)
	}
	if status, body := e.doAuth("GET", "/api/users/me/", "", tok.Access); status != 200 || !strings.Contains(body, "before@example.com") {
		t.Errorf("users/me: %d %s", status, body)
	}
	if status, body := e.post("/api/token/refresh/", `{"refresh":"`+tok.Refresh+`"}`); status != 200 {
		t.Errorf("refresh: %d %s", status, body)
	}
	if status, body := e.post("/api/token/blacklist/", `{"refresh":"`+tok.Refresh+`"}`); status != 200 {
		t.Errorf("blacklist: %d %s", status, body)
	}
	for i := 0; i < 3; i++ { // the throttle table counts failed logins
		if status, body := e.post("/api/token/", `{"email":"before@example.com","password":"wrong-password-1"}`); status != 401 && status != 429 {
			t.Errorf("wrong password: %d %s", status, body)
		}
	}
	if got := e.psqlE2E("isis", "SELECT count(*) > 0 FROM throttles"); got != "t" {
		t.Errorf("no throttle rows written as isis_app: %s", got)
	}
	for _, args := range [][]string{{"-e", "ISIS_SUPERUSER_PASSWORD=upgrade-admin-pass-1", "isis-e2e", "/isis", "createsuperuser", "--email", "admin@example.com", "--no-input"},
		{"isis-e2e", "/isis", "flushexpiredtokens"}} {
		if b, err := exec.Command("podman", append([]string{"--url", e.url, "exec"}, args...)...).CombinedOutput(); err != nil {
			t.Errorf("%s as isis_app: %v\n%s", strings.Join(args, " "), err, b)
		}
	}
	// The application role changes rows, never the schema.
	for _, ddl := range []string{"CREATE TABLE public.x (i int)", "DROP TABLE users", "ALTER TABLE users ADD COLUMN x int", "TRUNCATE throttles",
		"CREATE FUNCTION public.f() RETURNS int LANGUAGE sql AS 'SELECT 1'"} {
		b, err := exec.Command("podman", "--url", e.url, "exec", "pg-e2e", "psql", "-X", "-v", "ON_ERROR_STOP=1", "-U", "isis", "-d", "isis",
			"-c", "SET ROLE isis_app", "-c", ddl).CombinedOutput()
		if err == nil || !strings.Contains(string(b), "ermission denied") && !strings.Contains(string(b), "must be owner") {
			t.Errorf("%s as isis_app: %v %s", ddl, err, b)
		}
	}
	// Again: nothing to convert, nothing restarted, and no helper started for
	// the roles (the marker of the last run matches): an attribute given by
	// hand stays until the marker goes, then the next deploy takes it back.
	e.psqlE2E("postgres", "ALTER ROLE isis_app CREATEDB")
	if out, code := e.isisctl("deploy"); code != 0 || !strings.Contains(out, "nothing restarted") {
		t.Errorf("deploy after the upgrade: exit %d\n%s", code, out)
	}
	if got := e.psqlE2E("postgres", "SELECT rolcreatedb FROM pg_roles WHERE rolname = 'isis_app'"); got != "t" {
		t.Errorf("a no-op deploy ran the roles' scripts (rolcreatedb %s): the marker was not used", got)
	}
	if b, err := exec.Command("podman", "--url", e.url, "volume", "rm", "isisctl-roles-pg-e2e").CombinedOutput(); err != nil {
		t.Fatalf("remove the roles' marker: %v %s", err, b)
	}
	if out, code := e.isisctl("deploy"); code != 0 {
		t.Errorf("deploy without the marker: exit %d\n%s", code, out)
	}
	if got := e.psqlE2E("postgres", "SELECT rolcreatedb FROM pg_roles WHERE rolname = 'isis_app'"); got != "f" {
		t.Errorf("a deploy without the marker left isis_app with CREATEDB (%s)", got)
	}
}
