package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/isis-project/isis/ops/audit"
	"github.com/isis-project/isis/ops/backup"
	"github.com/isis-project/isis/ops/config"
	"github.com/isis-project/isis/ops/host"

	"github.com/isis-project/isis/internal/s3test"
	"github.com/minio/minio-go/v7"
)

// psqlE2E runs SQL in the e2e deployment's postgres container and returns
// its unaligned output.
func (e *e2e) psqlE2E(db, sql string) string {
	e.t.Helper()
	out, err := exec.Command("podman", "--url", e.url, "exec", "pg-e2e", "psql", "-X", "-v", "ON_ERROR_STOP=1", "-At", "-U", "isis", "-d", db, "-c", sql).CombinedOutput()
	if err != nil {
		e.t.Fatalf("psql %s: %v\n%s", sql, err, out)
	}
	return strings.TrimSpace(string(out))
}

// snapshot is the data a restore must bring back exactly.
func (e *e2e) snapshot() string {
	return e.psqlE2E("isis", "SELECT u::text FROM users u ORDER BY id") + "\n--\n" +
		e.psqlE2E("isis", "SELECT p::text FROM profiles p ORDER BY id") + "\n--\n" +
		e.psqlE2E("isis", "SELECT version FROM schema_migrations ORDER BY version")
}

func (e *e2e) databases() string {
	return e.psqlE2E("postgres", "SELECT string_agg(datname, ' ' ORDER BY datname) FROM pg_database WHERE datname LIKE 'isis%'")
}

// fakeBackup writes a copy of backup src under another name, its dump
// changed by mangle; fix makes the manifest match the changed dump.
func fakeBackup(t *testing.T, dir, src, name string, mangle func([]byte) []byte, fix bool) {
	t.Helper()
	dump, err := os.ReadFile(filepath.Join(dir, src+".dump"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	b, _ := os.ReadFile(filepath.Join(dir, src+".json"))
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	dump = mangle(append([]byte(nil), dump...))
	m["name"], m["dump"] = name, name+".dump"
	if fix {
		sum := sha256.Sum256(dump)
		m["sha256"], m["size"] = hex.EncodeToString(sum[:]), len(dump)
	}
	b, _ = json.Marshal(m)
	os.WriteFile(filepath.Join(dir, name+".dump"), dump, 0o600)
	os.WriteFile(filepath.Join(dir, name+".json"), b, 0o600)
}

// stripHMAC removes the HMAC from backup name's manifest (one from before
// isisctl signed them).
func stripHMAC(t *testing.T, dir, name string) {
	editManifest(t, dir, name, func(m map[string]any) { delete(m, "hmac") })
}

// setTables rewrites the row counts of backup name's manifest.
func setTables(t *testing.T, dir, name string, tables map[string]int64) {
	editManifest(t, dir, name, func(m map[string]any) { m["tables"] = tables })
}

func editManifest(t *testing.T, dir, name string, edit func(map[string]any)) {
	t.Helper()
	p := filepath.Join(dir, name+".json")
	var m map[string]any
	b, _ := os.ReadFile(p)
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	b, _ = json.Marshal(m)
	os.WriteFile(p, b, 0o600)
}

func lastNonEmpty(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// TestBackupRestoreEndToEnd: on the real deployment, a backup taken while
// the API is under load drops no request; data changed and deleted after it
// comes back exactly with restore; corrupted and truncated dumps are refused
// before anything is touched; the replaced database is kept until dropped;
// backup.keep rotates.
func TestBackupRestoreEndToEnd(t *testing.T) {
	t.Parallel()
	takeTurn(t)
	bdir := filepath.Join(t.TempDir(), "backups")
	e := newE2E(t, 3021, "backup:\n  dir: "+bdir+"\n  keep: 2\n")
	e.cleanup()
	t.Cleanup(e.cleanup)
	t.Cleanup(func() {
		exec.Command("sh", "-c", "podman --url "+e.url+" ps -aq --filter name=pg-e2e- --filter name=isis-e2e-migrate-db | xargs -r podman --url "+e.url+" rm -f").Run()
	})
	// The secrets' names are global on the Podman service: make them ours.
	if out, code := e.isisctl("secrets", "--rotate"); code != 0 {
		t.Fatalf("secrets --rotate: exit %d\n%s", code, out)
	}
	if out, code := e.isisctl("deploy"); code != 0 {
		t.Fatalf("deploy: exit %d\n%s", code, out)
	}
	for _, u := range []string{"alice", "bob"} {
		if status, body := e.post("/api/auth/register/", `{"email":"`+u+`@example.com","password":"backup-restore-pass-1"}`); status != 201 {
			t.Fatalf("register %s: %d %s", u, status, body)
		}
	}
	before := e.snapshot()

	// A backup under load: a bounded loop of requests on loopback, none lost.
	var served, failed atomic.Int32
	var firstFail atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, path := range []string{"/api/ready/", "/api/municipalities/?search=medellin"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 3000; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if s, body := e.get(path); s == 200 {
					served.Add(1)
				} else {
					failed.Add(1)
					firstFail.CompareAndSwap(nil, fmt.Sprintf("%s: %d %s", path, s, body))
				}
				time.Sleep(10 * time.Millisecond)
			}
		}()
	}
	start := time.Now()
	out, code := e.isisctl("backup", "-o", "json")
	t.Logf("backup: %s", time.Since(start).Round(time.Millisecond))
	close(stop)
	wg.Wait()
	if code != 0 {
		t.Fatalf("backup: exit %d\n%s", code, out)
	}
	if failed.Load() != 0 || served.Load() < 10 {
		t.Errorf("during the backup the API answered %d requests and failed %d (first: %v)", served.Load(), failed.Load(), firstFail.Load())
	}
	var br backup.Result
	if err := json.Unmarshal([]byte(out[strings.Index(out, "{"):]), &br); err != nil {
		t.Fatalf("backup -o json: %v\n%s", err, out)
	}
	be := e.backendState()
	if br.Tables["public.users"] != 2 || br.Level == "" || br.ImageID != be.ImageID || br.Image != be.Image || len(br.SHA256) != 64 {
		t.Errorf("backup manifest = %+v", br.Manifest)
	}
	st, err := os.Stat(filepath.Join(bdir, br.Dump))
	if err != nil || st.Size() != br.Size || st.Mode().Perm() != 0o600 {
		t.Fatalf("dump file: %v %v", st, err)
	}
	if strings.Contains(out, "e2e-database-password") {
		t.Error("the backup printed the database password")
	}

	// Change and delete data after the backup.
	if status, body := e.post("/api/auth/register/", `{"email":"carol@example.com","password":"backup-restore-pass-1"}`); status != 201 {
		t.Fatalf("register carol: %d %s", status, body)
	}
	e.psqlE2E("isis", "UPDATE users SET first_name = 'Changed' WHERE email = 'alice@example.com'")
	e.psqlE2E("isis", "DELETE FROM profiles WHERE user_id = (SELECT id FROM users WHERE email = 'bob@example.com'); DELETE FROM users WHERE email = 'bob@example.com'")
	changed := e.snapshot()
	if changed == before {
		t.Fatal("the changes did not change the snapshot")
	}
	dbs := e.databases()
	started := e.backendState().StartedAt

	// Without --yes: exit 2, naming what it would replace; nothing changes.
	out, code = e.isisctl("restore", br.Name)
	if code != 2 || !strings.Contains(out, `database "isis" on pg-e2e`) || !strings.Contains(out, "--yes") || !strings.Contains(out, "isis_old_") {
		t.Errorf("restore without --yes: exit %d\n%s", code, out)
	}

	// Corrupted (checksum) and truncated (checksum made to match: pg_restore
	// catches it) dumps are refused before anything is touched.
	fakeBackup(t, bdir, br.Name, "isis-20200101T000000Z", func(b []byte) []byte {
		for i := len(b) / 2; i < len(b)/2+64; i++ {
			b[i] ^= 0x5a
		}
		return b
	}, false)
	fakeBackup(t, bdir, br.Name, "isis-20200101T000001Z", func(b []byte) []byte { return b[:len(b)*2/3] }, true)
	fakeBackup(t, bdir, br.Name, "isis-20200101T000002Z", func(b []byte) []byte {
		for i := len(b) * 3 / 4; i < len(b)*3/4+64; i++ {
			b[i] ^= 0x5a
		}
		return b
	}, true)
	// Their manifests (renamed, sha256 rewritten) no longer verify: refused
	// as foreign first; with --allow-foreign the dump's checks still refuse them.
	out, code = e.isisctl("restore", "isis-20200101T000001Z", "--yes")
	if code != 1 || !strings.Contains(out, "HMAC does not verify") || !strings.Contains(out, "--allow-foreign") || !strings.Contains(out, "nothing was changed") {
		t.Errorf("restore of a rewritten manifest: exit %d\n%s", code, out)
	}
	for name, want := range map[string]string{"isis-20200101T000000Z": "sha256", "isis-20200101T000001Z": "pg_restore",
		"isis-20200101T000002Z": "pg_restore"} {
		out, code := e.isisctl("restore", name, "--yes", "--allow-foreign")
		if code != 1 || !strings.Contains(out, "refused") || !strings.Contains(out, want) || !strings.Contains(out, "nothing was changed") {
			t.Errorf("restore of %s: exit %d, want 1 naming %s\n%s", name, code, want, out)
		}
	}
	// A backup from before the manifests were signed: refused, saying so.
	fakeBackup(t, bdir, br.Name, "old-unsigned", func(b []byte) []byte { return b }, true)
	stripHMAC(t, bdir, "old-unsigned")
	out, code = e.isisctl("restore", "old-unsigned", "--yes")
	if code != 1 || !strings.Contains(out, "no HMAC") || !strings.Contains(out, "before isisctl signed") || !strings.Contains(out, "--allow-foreign") {
		t.Errorf("restore of an unsigned backup: exit %d\n%s", code, out)
	}
	// Names are plain names: a path is refused before anything is read.
	os.MkdirAll(filepath.Join(filepath.Dir(bdir), "outside"), 0o700)
	fakeBackup(t, bdir, br.Name, "moved", func(b []byte) []byte { return b }, true)
	os.Rename(filepath.Join(bdir, "moved.json"), filepath.Join(filepath.Dir(bdir), "outside", "moved.json"))
	os.Rename(filepath.Join(bdir, "moved.dump"), filepath.Join(filepath.Dir(bdir), "outside", "moved.dump"))
	out, code = e.isisctl("restore", "../outside/moved", "--yes", "--allow-foreign")
	if code != 2 || !strings.Contains(out, "path separator") || strings.Contains(out, "pg_restore") {
		t.Errorf("restore ../outside/moved: exit %d, want 2 naming the path separator\n%s", code, out)
	}

	// Hostile dumps made elsewhere (a CHECK constraint calling a function
	// that creates a superuser, or runs a program on the server), their
	// manifests rewritten with a fresh sha256: refused without
	// --allow-foreign; with it, pg_restore runs as the owner role and the
	// payload can do nothing: no role, no program, nothing switched.
	for i, payload := range []string{`EXECUTE 'CREATE ROLE isis_evil SUPERUSER LOGIN'`,
		`EXECUTE 'COPY (SELECT 1) TO PROGRAM ''touch /tmp/isis-pwned'''`} {
		name := fmt.Sprintf("evil-%d", i)
		src := fmt.Sprintf("evil%d", i)
		e.psqlE2E("postgres", "DROP DATABASE IF EXISTS "+src)
		e.psqlE2E("postgres", "CREATE DATABASE "+src)
		e.psqlE2E(src, `CREATE FUNCTION public.pwn(i int) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN IF current_database() NOT LIKE 'evil%' THEN `+payload+`; END IF; RETURN true; END $$;
CREATE TABLE public.users (id int CHECK (public.pwn(id))); INSERT INTO public.users VALUES (1)`)
		if b, err := exec.Command("podman", "--url", e.url, "exec", "pg-e2e", "pg_dump", "-U", "isis", "-Fc", "-d", src, "-f", "/tmp/"+name+".dump").CombinedOutput(); err != nil {
			t.Fatalf("pg_dump %s: %v %s", src, err, b)
		}
		e.psqlE2E("postgres", "DROP DATABASE "+src)
		hostile := filepath.Join(filepath.Dir(bdir), name+".dump")
		if b, err := exec.Command("podman", "--url", e.url, "cp", "pg-e2e:/tmp/"+name+".dump", hostile).CombinedOutput(); err != nil {
			t.Fatalf("podman cp: %v %s", err, b)
		}
		fakeBackup(t, bdir, br.Name, name, func([]byte) []byte {
			b, _ := os.ReadFile(hostile)
			return b
		}, true)
		setTables(t, bdir, name, map[string]int64{"public.users": 1})
		out, code := e.isisctl("restore", name, "--yes")
		if code != 1 || !strings.Contains(out, "HMAC does not verify") || !strings.Contains(out, "--allow-foreign") {
			t.Errorf("restore of %s: exit %d, want refused as foreign\n%s", name, code, out)
		}
		out, code = e.isisctl("restore", name, "--yes", "--allow-foreign")
		if code != 1 || !strings.Contains(out, "pg_restore as isis_owner") || !strings.Contains(out, "isis is as it was") {
			t.Errorf("restore of %s --allow-foreign: exit %d, want pg_restore to fail as isis_owner\n%s", name, code, out)
		}
		t.Logf("%s --allow-foreign: %s", name, lastNonEmpty(out))
	}
	if got := e.psqlE2E("postgres", "SELECT count(*) FROM pg_roles WHERE rolname = 'isis_evil'"); got != "0" {
		t.Error("the hostile dump created its superuser")
	}
	if err := exec.Command("podman", "--url", e.url, "exec", "pg-e2e", "test", "-e", "/tmp/isis-pwned").Run(); err == nil {
		t.Error("the hostile dump ran a program on the database server")
	}
	// Every attempted restore is in the audit trail, refused ones too.
	conn, err := host.Connect(context.Background(), e.url)
	if err != nil {
		t.Fatal(err)
	}
	audit, err := audit.Read(conn, 20)
	if err != nil {
		t.Fatal(err)
	}
	var refused, failedForeign bool
	for _, a := range audit {
		if a.Action != "restore" {
			continue
		}
		refused = refused || (a.Result == "refused" && strings.Contains(a.Detail, "backup evil-1; allow-foreign false"))
		failedForeign = failedForeign || (a.Result == "failed" && strings.Contains(a.Detail, "backup evil-1; allow-foreign true") && a.Duration != "")
	}
	if !refused || !failedForeign {
		t.Errorf("the audit trail lacks the hostile restores: %+v", audit)
	}
	if got := e.snapshot(); got != changed {
		t.Error("a refused restore changed the data")
	}
	if got := e.databases(); got != dbs {
		t.Errorf("a refused restore left databases: %s (before: %s)", got, dbs)
	}
	if got := e.backendState().StartedAt; got != started {
		t.Error("a refused restore restarted the backend")
	}

	// The restore: everything back as it was.
	start = time.Now()
	out, code = e.isisctl("restore", br.Name, "--yes", "-o", "json")
	t.Logf("restore: %s", time.Since(start).Round(time.Millisecond))
	if code != 0 {
		t.Fatalf("restore: exit %d\n%s", code, out)
	}
	var rr backup.RestoreResult
	if err := json.Unmarshal([]byte(out[strings.Index(out, "{"):]), &rr); err != nil {
		t.Fatalf("restore -o json: %v\n%s", err, out)
	}
	if got := e.snapshot(); got != before {
		t.Errorf("after the restore the data is\n%s\nwant\n%s", got, before)
	}
	// Both backend slots were stopped for the switch and started again.
	if strings.Join(rr.Restarted, " ") != "isis-e2e isis-e2e-b" || !strings.HasPrefix(rr.Old, "isis_old_") || rr.Tables["public.users"] != 2 {
		t.Errorf("restore result = %+v", rr)
	}
	for _, u := range []string{"alice", "bob"} {
		if status, body := e.post("/api/token/", `{"email":"`+u+`@example.com","password":"backup-restore-pass-1"}`); status != 200 {
			t.Errorf("login %s after the restore: %d %s", u, status, body)
		}
	}
	if status, _ := e.post("/api/token/", `{"email":"carol@example.com","password":"backup-restore-pass-1"}`); status != 401 {
		t.Errorf("carol (registered after the backup) logs in after the restore: %d", status)
	}
	if out, code := e.isisctl("verify"); code != 0 {
		t.Errorf("verify after the restore: exit %d\n%s", code, out)
	}
	// The replaced database is kept, as it was, until dropped.
	if got := e.psqlE2E(rr.Old, "SELECT count(*) FROM users WHERE email = 'carol@example.com'"); got != "1" {
		t.Errorf("the kept database %s lacks carol: %s", rr.Old, got)
	}
	out, code = e.isisctl("backup", "list")
	if code != 0 || !strings.Contains(out, br.Name) || !strings.Contains(out, rr.Old) {
		t.Errorf("backup list: exit %d\n%s", code, out)
	}
	if out, code := e.isisctl("restore", "--drop-old", rr.Old); code != 2 || !strings.Contains(out, rr.Old) {
		t.Errorf("drop-old without --yes: exit %d\n%s", code, out)
	}
	if out, code := e.isisctl("restore", "--drop-old", "isis", "--yes"); code != 2 {
		t.Errorf("drop-old of the live database: exit %d\n%s", code, out)
	}
	if out, code := e.isisctl("restore", "--drop-old", rr.Old, "--yes"); code != 0 {
		t.Errorf("drop-old: exit %d\n%s", code, out)
	}
	if got := e.databases(); got != dbs {
		t.Errorf("databases after drop-old: %s, want %s", got, dbs)
	}

	// keep: 2 — the next backup leaves this one and itself.
	out, code = e.isisctl("backup")
	if code != 0 || !strings.Contains(out, "Kept 2 backup(s); removed isis-20200101T000000Z, isis-20200101T000001Z, isis-20200101T000002Z") {
		t.Errorf("second backup: exit %d\n%s", code, out)
	}
	out, code = e.isisctl("backup", "list", "-o", "json")
	var bl backup.Listing
	if code != 0 || json.Unmarshal([]byte(out), &bl) != nil || len(bl.Backups) != 2 || bl.Backups[1].Name != br.Name {
		t.Errorf("backup list -o json: exit %d\n%s", code, out)
	}

	// The S3/R2 bucket (a real versitygw on loopback): isisctl uploads from
	// the host what it streamed out of the helper container.
	s3 := s3test.Start(t)
	bucket := s3.Bucket(t, "isis-media")
	e.writeConfig("backup:\n  s3_prefix: backups/\n")
	cfg, _ := os.ReadFile(e.config)
	// The S3 settings join the backend's env (the base configuration has one).
	cfg = []byte(strings.Replace(string(cfg), "  env:\n", fmt.Sprintf("  env:\n    AWS_STORAGE_BUCKET_NAME: %s\n    AWS_S3_ENDPOINT_URL: %s\n    AWS_ACCESS_KEY_ID: %s\n",
		bucket, s3.Endpoint, s3test.AccessKey), 1))
	if !strings.Contains(string(cfg), "AWS_S3_ENDPOINT_URL") {
		t.Fatalf("the S3 settings did not go into the configuration:\n%s", cfg)
	}
	cfg = []byte(strings.Replace(string(cfg), "secrets:\n", "secrets:\n  aws_secret_access_key: "+s3test.SecretKey+"\n", 1))
	os.WriteFile(e.config, cfg, 0o600)
	out, code = e.isisctl("backup", "-o", "json")
	var sr backup.Result
	if code != 0 || json.Unmarshal([]byte(out[strings.Index(out, "{"):]), &sr) != nil || sr.Location != "s3://isis-media/backups/" {
		t.Fatalf("backup to S3: exit %d\n%s", code, out)
	}
	if _, err := s3.Client.StatObject(context.Background(), bucket, "backups/"+sr.Dump, minio.StatObjectOptions{}); err != nil {
		t.Errorf("the dump is not in the bucket: %v", err)
	}
	if strings.Contains(out, s3test.SecretKey) {
		t.Error("the S3 secret key was printed")
	}
	inS3 := e.snapshot()
	if status, body := e.post("/api/auth/register/", `{"email":"dave@example.com","password":"backup-restore-pass-1"}`); status != 201 {
		t.Fatalf("register dave: %d %s", status, body)
	}
	if out, code := e.isisctl("restore", sr.Name, "--yes"); code != 0 {
		t.Fatalf("restore from S3: exit %d\n%s", code, out)
	}
	if got := e.snapshot(); got != inS3 {
		t.Errorf("after the restore from S3 the data is\n%s\nwant\n%s", got, inS3)
	}

	// The deploy's backup step: none while no migration is pending, one when
	// the image brings a migration the database lacks.
	c, err := config.Load(e.config, true, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	image := e.backendState().Image
	if r, why, err := backup.BeforeMigrate(context.Background(), conn, c, image, nil); err != nil || r != nil || why != "no migration pending" {
		t.Errorf("backup before a deploy without migrations: %v %q %v", r, why, err)
	}
	last := e.psqlE2E("isis", "SELECT max(version) FROM schema_migrations")
	e.psqlE2E("isis", "DELETE FROM schema_migrations WHERE version = '"+last+"'")
	r, why, err := backup.BeforeMigrate(context.Background(), conn, c, image, nil)
	e.psqlE2E("isis", "INSERT INTO schema_migrations (version) VALUES ('"+last+"')")
	if err != nil || r == nil || !strings.Contains(why, last) || !strings.Contains(why, "isisctl restore "+r.Name) {
		t.Errorf("backup before a migration: %v %q %v", r, why, err)
	}

	// A backup from a newer schema than the backend image knows is refused
	// after the trial restore, which is dropped again.
	e.psqlE2E("isis", "INSERT INTO schema_migrations (version) VALUES ('9999_future')")
	out, code = e.isisctl("backup", "-o", "json")
	e.psqlE2E("isis", "DELETE FROM schema_migrations WHERE version = '9999_future'")
	var fr backup.Result
	if code != 0 || json.Unmarshal([]byte(out[strings.Index(out, "{"):]), &fr) != nil || fr.Level != "9999_future" {
		t.Fatalf("backup at 9999_future: exit %d\n%s", code, out)
	}
	dbs = e.databases()
	out, code = e.isisctl("restore", fr.Name, "--yes")
	if code != 1 || !strings.Contains(out, "9999_future") || !strings.Contains(out, "does not know") {
		t.Errorf("restore of a newer schema: exit %d\n%s", code, out)
	}
	if got := e.databases(); got != dbs {
		t.Errorf("databases after the refused restore: %s, want %s", got, dbs)
	}
	// No helper container is left behind.
	if left, _ := exec.Command("podman", "--url", e.url, "ps", "-a", "--format", "{{.Names}}", "--filter", "name=pg-e2e-").Output(); strings.TrimSpace(string(left)) != "" {
		t.Errorf("helper containers left: %s", left)
	}
}
