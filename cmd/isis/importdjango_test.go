package main

import (
	"bufio"
	"bytes"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/isis-project/isis/api/djangoimport"
	"github.com/isis-project/isis/internal/djangotest"
	"github.com/isis-project/isis/internal/pgtest"
	"github.com/isis-project/isis/internal/testdb"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// reference is the Django system isis replaces, running (../shared/django-reference).
type reference struct {
	dir, url, dsn string
	env           []string // what run.sh exports, for manage.py
	db            *sqlx.DB
}

// startReference starts the reference Django with isis's test SECRET_KEY
// (as a real cutover shares it). It fails when CI=true and the reference is
// missing; elsewhere it skips.
func startReference(t *testing.T) *reference {
	t.Helper()
	dir, err := filepath.Abs("../../../shared/django-reference")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "run.sh")); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("the reference Django is missing at %s (../shared/django-reference next to the clone): %v", dir, err)
		}
		t.Skipf("the reference Django is not at %s", dir)
	}
	envFile := filepath.Join(t.TempDir(), "env")
	cmd := exec.Command(filepath.Join(dir, "run.sh"), "/bin/sh", "-c", `env > "$0.tmp" && mv "$0.tmp" "$0" && cat > /dev/null`, envFile)
	// The reference's settings read DATABASE_URL before run.sh's DATABASE_*:
	// keep the tests' own database settings away from it.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DATABASE_") && !strings.HasPrefix(kv, "SECRET_KEY") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "SECRET_KEY="+testKey, "GUNICORN_WORKERS=2")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuf
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		stdin.Close()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
		}
	})
	deadline := time.Now().Add(3 * time.Minute)
	for {
		if b, err := os.ReadFile(envFile); err == nil {
			r := &reference{dir: dir}
			for _, l := range strings.Split(string(b), "\n") {
				if k, v, ok := strings.Cut(l, "="); ok {
					r.env = append(r.env, l)
					switch k {
					case "REFERENCE_URL":
						r.url = v
					case "REFERENCE_DATABASE_URL":
						r.dsn = v
					}
				}
			}
			r.db, err = sqlx.Open("postgres", r.dsn)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { r.db.Close() })
			return r
		}
		select {
		case err := <-done:
			t.Fatalf("the reference Django stopped: %v\n%s", err, logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the reference Django did not start:\n%s", logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// shell runs Python in Django's manage.py shell and returns its output.
func (r *reference) shell(t *testing.T, code string) string {
	t.Helper()
	cmd := exec.Command("/usr/bin/python3", "manage.py", "shell", "-c", code)
	cmd.Dir, cmd.Env = r.dir, r.env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("manage.py shell: %v\n%s", err, out)
	}
	return string(out)
}

// jsonCall sends a JSON request to base and decodes the JSON answer.
func jsonCall(t *testing.T, method, url, bearer string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, url, rd)
	req.Host = "localhost"
	req.Header.Set("Content-Type", "application/json")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var m map[string]any
	b, _ := io.ReadAll(res.Body)
	json.Unmarshal(b, &m)
	return res.StatusCode, m
}

func obtainPair(t *testing.T, base, email, password string) (access, refresh string, code int) {
	t.Helper()
	code, m := jsonCall(t, "POST", base+"/api/token/", "", map[string]string{"email": email, "password": password})
	a, _ := m["access"].(string)
	r, _ := m["refresh"].(string)
	return a, r, code
}

// importDjango runs isis import-django and decodes its JSON summary.
func importDjango(t *testing.T, isisDSN string, args ...string) (*djangoimport.Summary, string, int) {
	t.Helper()
	stdout, stderr, code := isis(t, map[string]string{"DATABASE_URL": isisDSN}, append([]string{"import-django", "--output", "json"}, args...)...)
	var s djangoimport.Summary
	if err := json.Unmarshal([]byte(stdout), &s); err != nil {
		t.Fatalf("import-django: exit %d, no JSON summary: %v\nstdout: %s\nstderr: %s", code, err, stdout, stderr)
	}
	return &s, stderr, code
}

type userRow struct {
	ID          int64        `db:"id"`
	Email       string       `db:"email"`
	Password    string       `db:"password"`
	FirstName   string       `db:"first_name"`
	LastName    string       `db:"last_name"`
	IsStaff     bool         `db:"is_staff"`
	IsSuperuser bool         `db:"is_superuser"`
	IsActive    bool         `db:"is_active"`
	DateJoined  time.Time    `db:"date_joined"`
	LastLogin   sql.NullTime `db:"last_login"`
}

type profileRow struct {
	ID           int64          `db:"id"`
	UserID       int64          `db:"user_id"`
	Phone        string         `db:"phone"`
	Bio          string         `db:"bio"`
	BirthDate    sql.NullString `db:"birth_date"`
	Department   sql.NullString `db:"department"`
	Municipality sql.NullString `db:"municipality"`
	Avatar       string         `db:"avatar"`
	UpdatedAt    time.Time      `db:"updated_at"`
}

func selectAll[T any](t *testing.T, db *sqlx.DB, q string) []T {
	t.Helper()
	var out []T
	if err := db.Select(&out, q); err != nil {
		t.Fatal(err)
	}
	return out
}

const (
	djangoUsers    = `SELECT id, email, password, first_name, last_name, is_staff, is_superuser, is_active, date_joined, last_login FROM accounts_user ORDER BY id`
	isisUsers      = `SELECT id, email, password, first_name, last_name, is_staff, is_superuser, is_active, date_joined, last_login FROM users ORDER BY id`
	djangoProfiles = `SELECT id, user_id, phone, bio, birth_date::text, department_id AS department, municipality_id AS municipality, avatar, updated_at FROM accounts_profile ORDER BY id`
	isisProfiles   = `SELECT id, user_id, phone, bio, birth_date::text, department_code AS department, municipality_code AS municipality, avatar, updated_at FROM profiles ORDER BY id`
	djangoTokens   = `SELECT o.jti || CASE WHEN b.id IS NULL THEN '' ELSE ' blacklisted' END FROM token_blacklist_outstandingtoken o LEFT JOIN token_blacklist_blacklistedtoken b ON b.token_id = o.id ORDER BY 1`
	isisTokens     = `SELECT o.jti || CASE WHEN b.id IS NULL THEN '' ELSE ' blacklisted' END FROM token_outstanding o LEFT JOIN token_blacklisted b ON b.token_id = o.id ORDER BY 1`
)

func sameRows[T any](t *testing.T, what string, django, isis []T) {
	t.Helper()
	if len(django) != len(isis) {
		t.Errorf("%s: %d in Django, %d in isis", what, len(django), len(isis))
	}
	for i := range min(len(django), len(isis)) {
		if !reflect.DeepEqual(utcRow(django[i]), utcRow(isis[i])) {
			t.Errorf("%s row %d:\n django %+v\n isis   %+v", what, i, django[i], isis[i])
		}
	}
}

// utcRow puts times in UTC so DeepEqual compares instants.
func utcRow(v any) any {
	switch r := v.(type) {
	case userRow:
		r.DateJoined = r.DateJoined.UTC()
		r.LastLogin.Time = r.LastLogin.Time.UTC()
		return r
	case profileRow:
		r.UpdatedAt = r.UpdatedAt.UTC()
		return r
	}
	return v
}

// TestImportDjango: users, profiles, geography and tokens made by the
// reference Django itself are imported; every password logs in on isis (and
// is upgraded), every token Django minted still works and the blacklisted one
// does not; every field matches row by row; a second import changes nothing;
// a later one brings only what changed on Django; conflicts stop it before
// anything is written.
func TestImportDjango(t *testing.T) {
	ref := startReference(t)
	if out, err := exec.Command("/usr/bin/python3", "-c", "import argon2, bcrypt").CombinedOutput(); err != nil {
		t.Fatalf("Django's argon2 and bcrypt hashers need python3-argon2 and python3-bcrypt (scripts/setup.sh test): %s", out)
	}
	// Users with the hashers Django 3.2 has by default (python3-argon2 and
	// python3-bcrypt installed), a staff user, a superuser, an inactive user, a
	// Google-only user (unusable password), profiles with geography and avatars,
	// a department and a municipality Django added, an official one renamed.
	out := ref.shell(t, `
import datetime, json
from django.contrib.auth.hashers import make_password
from accounts.models import User, Profile
from geo.models import Department, Municipality
Department.objects.create(code="98", name="Departamento Nuevo")
Municipality.objects.create(code="98001", name="Pueblo Nuevo", department_id="98")
d = Department.objects.get(code="05"); d.name = "Antioquia (renombrado)"; d.save()
ids = {}
ids["ana"] = User.objects.create_user("ana@example.com", "pw-ana-pbkdf2-1", first_name="Ana", last_name="Pérez").id
ids["staff"] = User.objects.create_user("staff@example.com", "pw-staff-1", is_staff=True, first_name="Sam").id
ids["root"] = User.objects.create_superuser("root@example.com", "pw-root-1").id
ids["off"] = User.objects.create_user("off@example.com", "pw-off-1", is_active=False).id
ids["google"] = User.objects.create_user("google@example.com", None).id
ids["argon"] = User.objects.create_user("argon@example.com", None).id
User.objects.filter(id=ids["argon"]).update(password=make_password("pw-argon-1", hasher="argon2"))
ids["bcrypt"] = User.objects.create_user("bcrypt@example.com", None).id
User.objects.filter(id=ids["bcrypt"]).update(password=make_password("pw-bcrypt-1", hasher="bcrypt_sha256"))
ids["sha1"] = User.objects.create_user("sha1@example.com", None).id
User.objects.filter(id=ids["sha1"]).update(password=make_password("pw-sha1-1", hasher="pbkdf2_sha1"))
Profile.objects.filter(user_id=ids["ana"]).update(phone="+57 300 1234567", bio="Hola, soy Ana.", birth_date=datetime.date(1990, 5, 17),
    department_id="05", municipality_id="05001", avatar="avatars/ana-1.jpg")
Profile.objects.filter(user_id=ids["staff"]).update(department_id="98", municipality_id="98001", avatar="avatars/sam.png")
# a deleted last user: isis must not hand its id out again
gone = User.objects.create_user("gone@example.com", "pw-gone-1"); gone.delete()
print(json.dumps(ids))
`)
	var ids map[string]int64
	if err := json.Unmarshal([]byte(out[strings.LastIndexByte(strings.TrimSpace(out), '\n')+1:]), &ids); err != nil {
		t.Fatalf("manage.py shell: %v: %s", err, out)
	}
	for _, h := range []struct{ user, prefix string }{{"ana", "pbkdf2_sha256$"}, {"argon", "argon2$argon2id$"}, {"bcrypt", "bcrypt_sha256$$2b$"}, {"sha1", "pbkdf2_sha1$"}, {"google", "!"}} {
		var pw string
		ref.db.Get(&pw, `SELECT password FROM accounts_user WHERE id = $1`, ids[h.user])
		if !strings.HasPrefix(pw, h.prefix) {
			t.Fatalf("Django made %s's hash %.20q, want %s…", h.user, pw, h.prefix)
		}
	}

	// Tokens minted by Django: logins (last_login set), one refresh token blacklisted.
	djAccess, djRefresh, code := obtainPair(t, ref.url, "ana@example.com", "pw-ana-pbkdf2-1")
	if code != 200 {
		t.Fatalf("Django login: %d", code)
	}
	_, revoked, _ := obtainPair(t, ref.url, "ana@example.com", "pw-ana-pbkdf2-1")
	if code, m := jsonCall(t, "POST", ref.url+"/api/token/blacklist/", "", map[string]string{"refresh": revoked}); code != 200 {
		t.Fatalf("Django blacklist: %d %v", code, m)
	}
	argonAccess, _, code := obtainPair(t, ref.url, "argon@example.com", "pw-argon-1")
	if code != 200 {
		t.Fatalf("Django argon2 login: %d", code)
	}

	isisDSN := testdb.DSN(t)
	isisDB := sqlx.MustOpen("postgres", isisDSN)
	defer isisDB.Close()

	// A dry run counts and writes nothing.
	s, _, code := importDjango(t, isisDSN, "--from", ref.dsn, "--dry-run")
	if code != 0 || !s.DryRun || s.Users.Created != 8 || s.Changes == 0 || s.Source.UserTable != "accounts_user" {
		t.Fatalf("dry run: exit %d, %+v", code, s)
	}
	var n int
	isisDB.Get(&n, `SELECT count(*) FROM users`)
	if n != 0 {
		t.Fatalf("the dry run wrote %d users", n)
	}

	s, stderr, code := importDjango(t, isisDSN, "--from", ref.dsn)
	if code != 0 {
		t.Fatalf("import: exit %d: %s", code, stderr)
	}
	if s.Users != (djangoimport.Counts{Source: 8, Created: 8}) || s.Profiles.Created != 8 ||
		s.Departments.Created != 1 || s.Departments.OfficialKept != 1 || s.Municipalities.Created != 1 ||
		s.OutstandingTokens.Created != 3 || s.BlacklistedTokens.Created != 1 || len(s.Conflicts) != 0 {
		t.Errorf("import summary: %+v", s)
	}
	if !strings.Contains(stderr, "import-django: read 8 users") {
		t.Errorf("no progress on stderr: %q", stderr)
	}

	// Every field, row by row.
	sameRows(t, "users", selectAll[userRow](t, ref.db, djangoUsers), selectAll[userRow](t, isisDB, isisUsers))
	sameRows(t, "profiles", selectAll[profileRow](t, ref.db, djangoProfiles), selectAll[profileRow](t, isisDB, isisProfiles))
	sameRows(t, "tokens", selectAll[string](t, ref.db, djangoTokens), selectAll[string](t, isisDB, isisTokens))
	var names []string
	isisDB.Select(&names, `SELECT code || ' ' || name FROM departments WHERE code IN ('05', '98') ORDER BY code`)
	if !reflect.DeepEqual(names, []string{"05 Antioquia", "98 Departamento Nuevo"}) {
		t.Errorf("departments: %q (official name kept, Django's added one imported)", names)
	}

	// A second run is a no-op.
	s, _, code = importDjango(t, isisDSN, "--from", ref.dsn)
	if code != 0 || s.Changes != 0 || s.Users.Unchanged != 8 || s.Profiles.Unchanged != 8 {
		t.Errorf("second import: exit %d, %d changes: %+v", code, s.Changes, s)
	}

	srv := startServer(t, map[string]string{"DATABASE_URL": isisDSN, "MEDIA_ROOT": t.TempDir()})
	// Django's tokens work on isis; the blacklisted one does not.
	if code, m := jsonCall(t, "GET", srv.base+"/api/users/me/", djAccess, nil); code != 200 || m["email"] != "ana@example.com" {
		t.Errorf("Django's access token on isis: %d %v", code, m)
	}
	// Her profile, through isis's API, with Django's token: geography by DANE code, the avatar where it was.
	if code, m := jsonCall(t, "GET", srv.base+"/api/profiles/me/", djAccess, nil); code != 200 ||
		fmt.Sprint(m["department"]) != "map[code:05 name:Antioquia]" || fmt.Sprint(m["municipality"]) != "map[code:05001 name:Medellín]" ||
		!strings.HasSuffix(fmt.Sprint(m["avatar_url"]), "/media/avatars/ana-1.jpg") || m["birth_date"] != "1990-05-17" {
		t.Errorf("ana's profile on isis: %d %v", code, m)
	}
	if code, m := jsonCall(t, "GET", srv.base+"/api/users/me/", argonAccess, nil); code != 200 || m["email"] != "argon@example.com" {
		t.Errorf("Django's access token (argon) on isis: %d %v", code, m)
	}
	if code, m := jsonCall(t, "POST", srv.base+"/api/token/refresh/", "", map[string]string{"refresh": djRefresh}); code != 200 || m["access"] == nil {
		t.Errorf("Django's refresh token on isis: %d %v", code, m)
	}
	if code, m := jsonCall(t, "POST", srv.base+"/api/token/refresh/", "", map[string]string{"refresh": revoked}); code != 401 {
		t.Errorf("the refresh token blacklisted on Django, on isis: %d %v", code, m)
	}
	// Every password logs in, and is upgraded to isis's argon2id.
	for user, pw := range map[string]string{"ana": "pw-ana-pbkdf2-1", "staff": "pw-staff-1", "root": "pw-root-1",
		"argon": "pw-argon-1", "bcrypt": "pw-bcrypt-1", "sha1": "pw-sha1-1"} {
		if _, _, code := obtainPair(t, srv.base, user+"@example.com", pw); code != 200 {
			t.Errorf("%s's Django password on isis: %d", user, code)
			continue
		}
		var hash string
		isisDB.Get(&hash, `SELECT password FROM users WHERE id = $1`, ids[user])
		if !strings.HasPrefix(hash, "argon2$argon2id$v=19$m=19456,t=2,p=1$") {
			t.Errorf("%s's hash was not upgraded: %.30q", user, hash)
		}
	}
	if _, _, code := obtainPair(t, srv.base, "off@example.com", "pw-off-1"); code != 401 {
		t.Errorf("the inactive user logs in: %d", code)
	}
	var googleHash string
	isisDB.Get(&googleHash, `SELECT password FROM users WHERE id = $1`, ids["google"])
	if !strings.HasPrefix(googleHash, "!") {
		t.Errorf("the Google-only user's unusable password: %.10q", googleHash)
	}
	// New isis users never reuse an old id (the deleted one's included).
	if code, m := jsonCall(t, "POST", srv.base+"/api/auth/register/", "", map[string]string{"email": "new@example.com", "password": "a-new-isis-password-1"}); code != 201 || m["id"].(float64) < float64(ids["sha1"]+1+1000) {
		t.Errorf("register on isis: %d %v (want an id 1000 past %d, the deleted user's)", code, m, ids["sha1"]+1)
	}

	// Meanwhile on Django: a sign-up, a password change, a profile edit.
	if code, m := jsonCall(t, "POST", ref.url+"/api/auth/register/", "", map[string]string{"email": "late@example.com", "password": "pw-late-signup-1"}); code != 201 {
		t.Fatalf("Django register: %d %v", code, m)
	}
	ref.shell(t, `
from accounts.models import User, Profile
u = User.objects.get(email="staff@example.com"); u.set_password("pw-staff-2"); u.save()
Profile.objects.filter(user__email="ana@example.com").update(bio="Bio nueva", avatar="avatars/ana-2.jpg")
`)
	s, _, code = importDjango(t, isisDSN, "--from", ref.dsn)
	if code != 0 || s.Users.Created != 1 || s.Users.Updated != 1 || s.Profiles.Created != 1 || s.Profiles.Updated != 1 {
		t.Errorf("import after changes on Django: exit %d, users %+v, profiles %+v", code, s.Users, s.Profiles)
	}
	if _, _, code := obtainPair(t, srv.base, "staff@example.com", "pw-staff-2"); code != 200 {
		t.Errorf("the password changed on Django, on isis: %d", code)
	}
	if _, _, code := obtainPair(t, srv.base, "late@example.com", "pw-late-signup-1"); code != 200 {
		t.Errorf("the late Django sign-up on isis: %d", code)
	}
	var anaHash, anaAvatar string
	isisDB.Get(&anaHash, `SELECT password FROM users WHERE id = $1`, ids["ana"])
	isisDB.Get(&anaAvatar, `SELECT avatar FROM profiles WHERE user_id = $1`, ids["ana"])
	if !strings.HasPrefix(anaHash, "argon2$argon2id$") || anaAvatar != "avatars/ana-2.jpg" {
		t.Errorf("ana after the final import: hash %.20q (the upgrade on isis must stay), avatar %q", anaHash, anaAvatar)
	}

	// Conflicts stop the import before anything is written.
	var conflictIDs []int64
	ref.db.Select(&conflictIDs, `INSERT INTO accounts_user (email, password, first_name, last_name, is_staff, is_superuser, is_active, date_joined)
		VALUES ('ANA@example.com', 'pbkdf2_sha256$260000$salt$`+strings.Repeat("A", 43)+`=', '', '', false, false, true, now()),
		       ('md5@example.com', 'md5$salt$0123456789abcdef0123456789abcdef', '', '', false, false, true, now())
		RETURNING id`)
	ref.db.MustExec(`UPDATE accounts_profile SET department_id = '08', municipality_id = '05001' WHERE user_id = $1`, ids["root"])
	var rootProfile int64
	ref.db.Get(&rootProfile, `SELECT id FROM accounts_profile WHERE user_id = $1`, ids["root"])
	before := selectAll[userRow](t, isisDB, isisUsers)
	for _, dry := range []bool{true, false} {
		args := []string{"--from", ref.dsn}
		if dry {
			args = append(args, "--dry-run")
		}
		s, _, code := importDjango(t, isisDSN, args...)
		var got []string
		for _, c := range s.Conflicts {
			got = append(got, c.String())
		}
		sort.Strings(got)
		want := []string{
			fmt.Sprintf(`accounts_profile id=%d: municipality 05001 is not in department 08 (it is in 05)`, rootProfile),
			fmt.Sprintf(`accounts_user id=%d: email "ANA@example.com" is the same address as accounts_user id=%d ("ana@example.com") in isis's normal form`, conflictIDs[0], ids["ana"]),
			fmt.Sprintf(`accounts_user id=%d: password: password hash algorithm "md5" is not supported`, conflictIDs[1]),
		}
		sort.Strings(want)
		if code != 1 || !reflect.DeepEqual(got, want) {
			t.Errorf("conflicts (dry run %v): exit %d\n got %q\nwant %q", dry, code, got, want)
		}
	}
	// The text form: one conflict per line.
	stdout, _, code := isis(t, map[string]string{"DATABASE_URL": isisDSN}, "import-django", "--from", ref.dsn)
	lines := 0
	for sc := bufio.NewScanner(strings.NewReader(stdout)); sc.Scan(); {
		if strings.HasPrefix(sc.Text(), "conflict: ") {
			lines++
		}
	}
	if code != 1 || lines != 3 || !strings.Contains(stdout, "nothing was written") {
		t.Errorf("text conflicts: exit %d, %d lines:\n%s", code, lines, stdout)
	}
	if after := selectAll[userRow](t, isisDB, isisUsers); !reflect.DeepEqual(before, after) {
		t.Errorf("a stopped import changed the users")
	}
}

func TestWithDatabase(t *testing.T) {
	for _, dsn := range []string{
		"host=postgres18 port=5432 dbname=isis user=isis password='p w' sslmode=disable",
		"postgres://isis:p%20w@postgres18:5432/isis?sslmode=disable",
	} {
		got, err := withDatabase(dsn, "old django's")
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := pq.NewConfig(got)
		if err != nil {
			t.Fatalf("%q: %v", got, err)
		}
		if cfg.Database != "old django's" || cfg.Host != "postgres18" || cfg.User != "isis" || cfg.Password != "p w" {
			t.Errorf("withDatabase(%q) = %q: %+v", dsn, got, cfg)
		}
	}
}

// TestImportInterrupted: an import killed after it wrote the users, before
// it committed, leaves isis as it was; the next run does it all.
func TestImportInterrupted(t *testing.T) {
	src := sqlx.MustOpen("postgres", pgtest.NewDatabase(t, "", nil))
	defer src.Close()
	djangotest.Fill(t, src, 5000)
	isisDSN := testdb.DSN(t)
	cmd := exec.Command(isisBin, "import-django", "--from", pgDSNOf(t, src))
	cmd.Env = baseEnv(map[string]string{"DATABASE_URL": isisDSN})
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "import-django: users: 5000 created") {
			cmd.Process.Kill()
			killed = true
			break
		}
	}
	cmd.Wait()
	if !killed {
		t.Fatal("the import ended before it could be killed")
	}
	isisDB := sqlx.MustOpen("postgres", isisDSN)
	defer isisDB.Close()
	var users, ledger int
	isisDB.Get(&users, `SELECT count(*) FROM users`)
	isisDB.Get(&ledger, `SELECT count(*) FROM django_import`)
	if users != 0 || ledger != 0 {
		t.Fatalf("after the kill: %d users, %d ledger rows; want none", users, ledger)
	}
	s, _, code := importDjango(t, isisDSN, "--from", pgDSNOf(t, src))
	if code != 0 || s.Users.Created != 5000 {
		t.Errorf("the next run: exit %d, %+v", code, s.Users)
	}
}

// pgDSNOf is the DSN of the database db is connected to.
func pgDSNOf(t *testing.T, db *sqlx.DB) string {
	var name string
	var port int
	if err := db.QueryRow(`SELECT current_database(), current_setting('port')::int`).Scan(&name, &port); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("host=127.0.0.1 port=%d user=postgres dbname=%s sslmode=disable", port, name)
}

// TestImportDjangoBadSource: a bad or unreachable Django database is one
// line naming the problem, never the password.
func TestImportDjangoBadSource(t *testing.T) {
	isisDSN := testdb.DSN(t)
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--from", "postgres://django:hunter2@127.0.0.1:1/django?sslmode=disable"}, 1, "read the Django database:"},
		{[]string{"--from", "postgres://django:hunter2@[bad"}, 2, "not a valid PostgreSQL URL"},
		{[]string{"--from", "x", "--from-database", "y"}, 2, "exactly one of --from, --from-file, --from-database"},
		{nil, 2, "exactly one of"},
		{[]string{"--from-file", "/nonexistent/dsn"}, 2, "--from-file"},
	} {
		stdout, stderr, code := isis(t, map[string]string{"DATABASE_URL": isisDSN}, append([]string{"import-django"}, tc.args...)...)
		last := strings.TrimSpace(stderr)
		if i := strings.LastIndexByte(last, '\n'); i >= 0 {
			last = last[i+1:]
		}
		if code != tc.code || !strings.Contains(last, tc.want) || strings.Contains(stdout+stderr, "hunter2") {
			t.Errorf("%v: exit %d, stderr %q", tc.args, code, stderr)
		}
	}
}
