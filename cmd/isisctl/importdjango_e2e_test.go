package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/isis-project/isis/ops/audit"
	"github.com/isis-project/isis/ops/cutover"
	"github.com/isis-project/isis/ops/host"

	"github.com/containers/podman/v5/pkg/bindings/secrets"
	"github.com/isis-project/isis/internal/djangotest"
)

// djangoDB is a Django-shaped database (the reference's tables, trimmed)
// with hashes Django 3.2 made: "lètmein" under pbkdf2_sha256 (Django's own
// test vector) and bcrypt_sha256, a profile with geography and an avatar,
// and a live refresh token that was blacklisted.
var djangoDB = djangotest.Schema + `
INSERT INTO geo_department VALUES ('05', 'Antioquia');
INSERT INTO geo_municipality VALUES ('05001', 'Medellín', '05');
INSERT INTO accounts_user (password, is_superuser, email, first_name, last_name, is_staff, is_active, date_joined) VALUES
	('pbkdf2_sha256$260000$seasalt$YlZ2Vggtqdc61YjArZuoApoBh9JNGYoDRBUGu6tcJQo=', false, 'ana@example.com', 'Ana', 'Pérez', false, true, now()),
	('bcrypt_sha256$$2b$12$.lwUQh592dPxsj92VHWK2uhOGImGnOM7gTmC4HoydP8ZgpRVPuHMi', true, 'root@example.com', '', '', true, true, now());
INSERT INTO accounts_profile (phone, bio, avatar, updated_at, user_id, department_id, municipality_id)
	VALUES ('+57 300 1234567', 'Hola', 'avatars/ana.jpg', now(), 1, '05', '05001');
INSERT INTO token_blacklist_outstandingtoken (token, created_at, expires_at, user_id, jti) VALUES ('x', now(), now() + interval '1 day', 1, 'jti-revoked');
INSERT INTO token_blacklist_blacklistedtoken (blacklisted_at, token_id) VALUES (now(), 1);
`

// TestImportDjangoEndToEnd: isisctl import-django on the real Podman
// service, against a Django database on the deployment's own PostgreSQL
// (--from-database) and through a DSN (--from-file), then a conflict.
func TestImportDjangoEndToEnd(t *testing.T) {
	t.Parallel()
	takeTurn(t)
	e := newE2E(t, 3017, "")
	e.cleanup()
	t.Cleanup(e.cleanup)
	// The secrets' names are global on the Podman service, and the test reads
	// pg-e2e with this configuration's password: make them ours.
	if out, code := e.isisctl("secrets", "--rotate"); code != 0 {
		t.Fatalf("secrets --rotate: exit %d\n%s", code, out)
	}
	if out, code := e.isisctl("deploy"); code != 0 {
		t.Fatalf("deploy: exit %d\n%s", code, out)
	}
	psql := func(db, sql string) {
		t.Helper()
		cmd := exec.Command("podman", "--url", e.url, "exec", "-i", "pg-e2e", "psql", "-v", "ON_ERROR_STOP=1", "-q", "-U", "isis", "-d", db)
		cmd.Stdin = strings.NewReader(sql)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("psql: %v\n%s", err, out)
		}
	}
	psql("isis", "CREATE DATABASE django")
	psql("django", djangoDB)
	psqlOut := func(db, sql string) string {
		t.Helper()
		out, err := exec.Command("podman", "--url", e.url, "exec", "pg-e2e", "psql", "-X", "-At", "-v", "ON_ERROR_STOP=1", "-U", "isis", "-d", db, "-c", sql).CombinedOutput()
		if err != nil {
			t.Fatalf("psql: %v\n%s", err, out)
		}
		return strings.TrimSpace(string(out))
	}
	// What an isisctl killed mid-import (SIGKILL) leaves behind: the job's
	// container, the DSN's secret, the read-only role.
	psql("django", `CREATE ROLE isis_import_django LOGIN; GRANT SELECT ON ALL TABLES IN SCHEMA public TO isis_import_django`)
	if out, err := exec.Command("podman", "--url", e.url, "create", "--name", "isis-e2e-import-django", "localhost/isis-postgres-test:15", "sleep", "600").CombinedOutput(); err != nil {
		t.Fatalf("podman create: %v\n%s", err, out)
	}
	leftSecret := exec.Command("podman", "--url", e.url, "secret", "create", cutover.ImportSourceSecret, "-")
	leftSecret.Stdin = strings.NewReader("host=elsewhere password=old")
	if out, err := leftSecret.CombinedOutput(); err != nil {
		t.Fatalf("podman secret create: %v\n%s", err, out)
	}

	// JSON: the summary alone on standard output, progress on standard error.
	cmd := exec.Command(filepath.Join(e.bin, "isisctl"), "--config", e.config, "--url", e.url, "import-django", "--from-database", "django", "--dry-run", "-o", "json")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("dry run: %v\n%s%s", err, stdout.String(), stderr.String())
	}
	var r struct {
		Summary struct {
			DryRun bool `json:"dry_run"`
			Users  struct{ Created int }
		}
	}
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil || !r.Summary.DryRun || r.Summary.Users.Created != 2 {
		t.Errorf("dry run JSON: %v %s", err, stdout.String())
	}
	for _, want := range []string{"import-django: read 2 users",
		"isisctl: removed the container isis-e2e-import-django an interrupted import left behind",
		"isisctl: removed the secret " + cutover.ImportSourceSecret + " an interrupted import left behind",
		"isisctl: dropped the role isis_import_django an interrupted import left behind",
		// The job read Django's database as the temporary role, not as isis's superuser.
		"import-django: source: schema public, read-only, as role isis_import_django\n",
	} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("dry run progress: no %q in\n%s", want, stderr.String())
		}
	}
	if n := psqlOut("isis", "SELECT count(*) FROM pg_roles WHERE rolname = 'isis_import_django'"); n != "0" {
		t.Errorf("the import's role is still there after the dry run: %s", n)
	}
	if status, body := e.post("/api/token/", `{"email":"ana@example.com","password":"lètmein"}`); status != 401 {
		t.Errorf("the dry run imported: login %d %s", status, body)
	}

	out, code := e.isisctl("import-django", "--from-database", "django")
	if code != 0 || !strings.Contains(out, "Users: 2 in Django, 2 created") || !strings.Contains(out, "Refresh tokens: 1 live, 1 created; blacklisted: 1, 1 created") {
		t.Fatalf("import: exit %d\n%s", code, out)
	}
	for _, email := range []string{"ana@example.com", "root@example.com"} {
		if status, body := e.post("/api/token/", `{"email":"`+email+`","password":"lètmein"}`); status != 200 {
			t.Errorf("%s's Django password on the deployed isis: %d %s", email, status, body)
		}
	}

	dsn := filepath.Join(e.dir, "django-dsn")
	os.WriteFile(dsn, []byte("host=pg-e2e user=isis password=e2e-database-password dbname=django sslmode=disable\n"), 0o600)
	out, code = e.isisctl("import-django", "--from-file", dsn)
	if code != 0 || !strings.Contains(out, "0 change(s)") || strings.Contains(out, "e2e-database-password") {
		t.Errorf("second import through --from-file: exit %d\n%s", code, out)
	}
	conn, err := host.Connect(context.Background(), e.url)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := secrets.Inspect(conn.Context(), cutover.ImportSourceSecret, nil); err == nil {
		t.Errorf("secret %s left behind", cutover.ImportSourceSecret)
	}
	if n := psqlOut("isis", "SELECT count(*) FROM pg_roles WHERE rolname = 'isis_import_django'"); n != "0" {
		t.Errorf("the import's role left behind: %s", n)
	}
	if st, _ := conn.Inspect("isis-e2e-import-django"); st != nil && st.Exists {
		t.Errorf("the import container was left behind")
	}

	// The cutover as one command. The --switch command stands for the
	// proxy's reload, and a user signs up on Django while it runs: the final
	// import brings that user, who then logs in on isis.
	signup := filepath.Join(e.dir, "signup.sql")
	os.WriteFile(signup, []byte(`INSERT INTO accounts_user (password, is_superuser, email, first_name, last_name, is_staff, is_active, date_joined)
		VALUES ('pbkdf2_sha256$260000$seasalt$YlZ2Vggtqdc61YjArZuoApoBh9JNGYoDRBUGu6tcJQo=', false, 'late@example.com', 'Late', '', false, true, now());`), 0o644)
	switchCmd := fmt.Sprintf("echo reloading the proxy; podman --url %s exec -i pg-e2e psql -q -v ON_ERROR_STOP=1 -U isis -d django < %s", e.url, signup)
	out, code = e.isisctl("cutover", "--from-database", "django", "--switch", switchCmd)
	if code != 0 || !strings.Contains(out, "[3/5] switch") || !strings.Contains(out, "reloading the proxy") ||
		!strings.Contains(out, "[4/5] final import") || !strings.Contains(out, "Switched to isis") {
		t.Fatalf("cutover: exit %d\n%s", code, out)
	}
	t.Logf("isisctl cutover:\n%s", out)
	if status, body := e.post("/api/token/", `{"email":"late@example.com","password":"lètmein"}`); status != 200 {
		t.Errorf("the user who signed up on Django during the switch, on isis: %d %s\n%s", status, body, out)
	}
	// A switch command that fails stops the cutover, saying where the proxy is.
	out, code = e.isisctl("cutover", "--from-database", "django", "--switch", "echo no proxy here >&2; exit 3")
	if code != 1 || !strings.Contains(out, "the switch command failed") || !strings.Contains(out, "no proxy here") ||
		strings.Contains(out, "[4/5]") {
		t.Errorf("cutover with a failing switch: exit %d\n%s", code, out)
	}
	if out, code = e.isisctl("cutover", "--from-database", "django"); code != 2 || !strings.Contains(out, "--switch is required") {
		t.Errorf("cutover without --switch: exit %d\n%s", code, out)
	}

	// A SIGHUP (the terminal closed) while the job waits on Django's users
	// table: isisctl stops, and removes the job, the secret and the role.
	locker := exec.Command("podman", "--url", e.url, "exec", "pg-e2e", "psql", "-U", "isis", "-d", "django",
		"-c", "BEGIN; LOCK TABLE accounts_user IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(120)")
	if err := locker.Start(); err != nil {
		t.Fatal(err)
	}
	defer locker.Process.Kill()
	for i := 0; psqlOut("django", "SELECT count(*) FROM pg_locks WHERE mode = 'AccessExclusiveLock' AND relation = 'accounts_user'::regclass") != "1"; i++ {
		if i == 100 {
			t.Fatal("the lock was not taken")
		}
		time.Sleep(100 * time.Millisecond)
	}
	hup := exec.Command(filepath.Join(e.bin, "isisctl"), "--config", e.config, "--url", e.url, "import-django", "--from-database", "django", "--dry-run")
	pr, pw := io.Pipe()
	hup.Stdout, hup.Stderr = pw, pw
	if err := hup.Start(); err != nil {
		t.Fatal(err)
	}
	var hupOut strings.Builder
	reading, outDone := make(chan bool, 1), make(chan bool)
	go func() {
		defer close(outDone)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			hupOut.WriteString(sc.Text() + "\n")
			if strings.Contains(sc.Text(), "import-django: source: users in accounts_user") {
				select {
				case reading <- true:
				default:
				}
			}
		}
	}()
	select {
	case <-reading:
	case <-time.After(2 * time.Minute):
		t.Fatal("the import never started reading")
	}
	time.Sleep(500 * time.Millisecond)
	hup.Process.Signal(syscall.SIGHUP)
	hupErr := hup.Wait()
	pw.Close()
	<-outDone
	locker.Process.Kill()
	psqlOut("django", "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(120)%' AND pid <> pg_backend_pid()")
	if hupErr == nil || !strings.Contains(hupOut.String(), "import-django interrupted") {
		t.Errorf("SIGHUP: %v\n%s", hupErr, hupOut.String())
	}
	if _, err := secrets.Inspect(conn.Context(), cutover.ImportSourceSecret, nil); err == nil {
		t.Errorf("SIGHUP: secret %s left behind", cutover.ImportSourceSecret)
	}
	if st, _ := conn.Inspect("isis-e2e-import-django"); st != nil && st.Exists {
		t.Errorf("SIGHUP: the import container was left behind")
	}
	if n := psqlOut("isis", "SELECT count(*) FROM pg_roles WHERE rolname = 'isis_import_django'"); n != "0" {
		t.Errorf("SIGHUP: the import's role left behind: %s", n)
	}

	psql("django", `INSERT INTO accounts_user (password, is_superuser, email, first_name, last_name, is_staff, is_active, date_joined)
		VALUES ('md5$salt$0123456789abcdef0123456789abcdef', false, 'md5@example.com', '', '', false, true, now())`)
	out, code = e.isisctl("import-django", "--from-database", "django")
	if code != 1 || !strings.Contains(out, `accounts_user id=4: password: password hash algorithm "md5" is not supported`) {
		t.Errorf("conflict: exit %d\n%s", code, out)
	}

	// Every import and cutover is in the audit trail, with its result.
	audit, err := audit.Read(conn, 50)
	if err != nil {
		t.Fatal(err)
	}
	var trail []string
	for _, a := range audit {
		if a.Action == "import-django" || a.Action == "cutover" {
			trail = append(trail, a.Action+" "+a.Result+": "+a.Detail)
		}
	}
	all := strings.Join(trail, "\n")
	for _, want := range []string{
		"import-django ok: dry run, from database django as isis_import_django; users 2 created 0 updated",
		"import-django ok: from database django as isis_import_django; users 2 created 0 updated, profiles 1 created 0 updated, refresh tokens 1, blacklisted 1: ",
		"import-django ok: from a connection string (--from/--from-file); users 0 created 0 updated",
		"cutover ok: from database django as isis_import_django; ",
		"cutover failed: from database django as isis_import_django; ",
		"import-django conflicts: from database django as isis_import_django; ",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("audit trail: no %q in\n%s", want, all)
		}
	}
}
