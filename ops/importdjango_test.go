package ops

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestImportDjangoSpec: the import's one-off container is the backend's own
// (secrets through files, non-root, read-only) on the private network, with
// nothing published and no health check; a DSN from elsewhere reaches it in
// a temporary secret, never on the command line or in the environment.
func TestImportDjangoSpec(t *testing.T) {
	const dsn = "postgres://django:hunter2@old-db.example.com/django"
	for _, tc := range []struct {
		name string
		o    ImportDjangoOptions
	}{
		{"from-database", ImportDjangoOptions{FromDatabase: "django"}},
		{"from-dsn", ImportDjangoOptions{FromDSN: dsn, UserTable: "auth_user", DryRun: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec, err := ImportDjangoSpec(exampleConfig(), "localhost/isis-backend:c0ffee", tc.o)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := json.MarshalIndent(spec, "", "  ")
			b = append(b, '\n')
			if strings.Contains(string(b), "hunter2") || strings.Contains(string(b), "old-db") {
				t.Errorf("the source DSN is in the container's spec:\n%s", b)
			}
			golden := filepath.Join("testdata", "importdjango", tc.name+".json")
			if *update {
				os.MkdirAll(filepath.Dir(golden), 0o755)
				if err := os.WriteFile(golden, b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -run TestImportDjangoSpec -update)", err)
			}
			if string(want) != string(b) {
				t.Errorf("spec differs from %s:\n%s", golden, b)
			}
			backend := exampleConfig().BackendSpec("localhost/isis-backend:c0ffee")
			if spec.Name == backend.Name || len(spec.Publish) != 0 || spec.Health != nil || spec.User != backend.User || !spec.ReadOnly ||
				spec.Networks[0] != "swe2" || spec.Env["DATABASE_PASSWORD_FILE"] == "" || spec.Labels[LabelRole] != "job" {
				t.Errorf("not the backend's container on the private network as a job: %+v", spec)
			}
		})
	}
	for _, o := range []ImportDjangoOptions{{}, {FromDatabase: "a", FromDSN: dsn}, {FromDatabase: "x'; DROP"}, {FromDatabase: strings.Repeat("a", 64)}} {
		if _, err := ImportDjangoSpec(exampleConfig(), "img", o); err == nil {
			t.Errorf("%+v: no error", o)
		} else if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("error leaks the DSN: %v", err)
		}
	}
}
