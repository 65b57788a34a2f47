package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/isis-project/isis/internal/djangotest"
	"github.com/isis-project/isis/internal/pgtest"
	"github.com/isis-project/isis/internal/testdb"
	"github.com/jmoiron/sqlx"
)

// TestImportDjangoRefusesAView: a Django database whose owner made
// accounts_user a view calling a function that runs a program on the server
// (COPY … TO PROGRAM, as the superuser isis connects as): isis import-django,
// dry run or not, refuses the view by name before reading it, and the
// program never runs.
func TestImportDjangoRefusesAView(t *testing.T) {
	src := sqlx.MustOpen("postgres", pgtest.NewDatabase(t, "", nil))
	defer src.Close()
	src.MustExec(djangotest.Schema)
	src.MustExec(`INSERT INTO accounts_user (password, is_superuser, email, first_name, last_name, is_staff, is_active, date_joined)
		VALUES ('!x', false, 'ana@example.com', 'Ana', '', false, true, now())`)
	dir, err := os.MkdirTemp("", "isis-trust-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o777) // the server runs as postgres
	marker := filepath.Join(dir, "ran")
	src.MustExec(`CREATE FUNCTION spy() RETURNS boolean LANGUAGE plpgsql AS $$
		BEGIN EXECUTE format('COPY (SELECT 1) TO PROGRAM %L', 'touch ` + marker + `'); RETURN true; END $$`)
	src.MustExec(`ALTER TABLE accounts_user RENAME TO accounts_user_data;
		CREATE VIEW accounts_user AS SELECT * FROM accounts_user_data WHERE spy();
		DROP TABLE token_blacklist_blacklistedtoken, token_blacklist_outstandingtoken`) // found through django_content_type
	// The hostile view works: reading it runs the program.
	var ok bool
	if err := src.Get(&ok, `SELECT spy()`); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Fatalf("the test's function did not run its program: %v", err)
	}
	os.Remove(marker)

	isisDSN := testdb.DSN(t)
	for _, args := range [][]string{{"--dry-run"}, nil, {"--user-table", "accounts_user"}} {
		stdout, stderr, code := isis(t, map[string]string{"DATABASE_URL": isisDSN}, append([]string{"import-django", "--from", pgDSNOf(t, src)}, args...)...)
		if _, err := os.Stat(marker); err == nil {
			t.Fatalf("%v: the view's function ran a program on the Django server", args)
		}
		want := "accounts_user is a view, not a table: isis reads only plain tables (a view can run code)"
		if code != 1 || !strings.Contains(stderr, want) {
			t.Errorf("%v: exit %d, want %q\nstdout: %s\nstderr: %s", args, code, want, stdout, stderr)
		}
	}
	// The plain table under the view imports, without running anything.
	_, _, code := isis(t, map[string]string{"DATABASE_URL": isisDSN}, "import-django", "--from", pgDSNOf(t, src), "--user-table", "accounts_user_data", "--dry-run")
	if _, err := os.Stat(marker); code != 0 || err == nil {
		t.Errorf("the plain table: exit %d, marker %v", code, err)
	}
}
