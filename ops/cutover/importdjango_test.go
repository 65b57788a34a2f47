package cutover

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/isis-project/isis/internal/opstest"

	"github.com/isis-project/isis/ops/podman"
	"github.com/isis-project/isis/ops/spec"
)

// TestImportDjangoJob: the import job runs isis import-django with JSON
// output; from a database on the same server it reads the connection string
// of the temporary read-only role from the secret (no egress network); a DSN
// from elsewhere reaches it in the same temporary secret (never on the
// command line or in the environment), over the egress network.
func TestImportDjangoJob(t *testing.T) {
	const dsn = "postgres://django:hunter2@old-db.example.com/django"
	for _, tc := range []struct {
		name string
		o    ImportDjangoOptions
	}{
		{"from-database", ImportDjangoOptions{FromDatabase: "django"}},
		{"from-dsn", ImportDjangoOptions{FromDSN: dsn, UserTable: "auth_user", DryRun: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := opstest.ExampleConfig()
			// What host.OneOff makes of the backend's spec (see RunJob), then the import's additions.
			cs := spec.Backend(c, "localhost/isis-backend:c0ffee")
			spec.Job(c, cs, "isis-backend-import-django", importDjangoArgs(tc.o)...)
			withImportSource(cs, c, tc.o)
			job := struct {
				Command  []string           `json:"command"`
				Networks []string           `json:"networks"`
				Secrets  []podman.SecretRef `json:"secrets"`
			}{cs.Command, cs.Networks, cs.Secrets}
			b, _ := json.MarshalIndent(job, "", "  ")
			b = append(b, '\n')
			all, _ := json.Marshal(cs)
			if strings.Contains(string(all), "hunter2") || strings.Contains(string(all), "old-db") {
				t.Errorf("the source DSN is in the container's spec:\n%s", all)
			}
			golden := filepath.Join("testdata", "importdjango", tc.name+".json")
			if *opstest.Update {
				os.MkdirAll(filepath.Dir(golden), 0o755)
				if err := os.WriteFile(golden, b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -run TestImportDjangoJob -update)", err)
			}
			if string(want) != string(b) {
				t.Errorf("job differs from %s:\n%s", golden, b)
			}
		})
	}
	for _, o := range []ImportDjangoOptions{{}, {FromDatabase: "a", FromDSN: dsn}, {FromDatabase: "x'; DROP"}, {FromDatabase: strings.Repeat("a", 64)}} {
		if err := o.Validate(); err == nil {
			t.Errorf("%+v: no error", o)
		} else if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("error leaks the DSN: %v", err)
		}
	}
}

// TestImportConflictErrorEscapes: a conflict's parts come from the Django
// database; control characters in them are printed escaped, one conflict a
// line.
func TestImportConflictErrorEscapes(t *testing.T) {
	ce := conflictError(json.RawMessage(`{"conflicts":[{"table":"geo_department","id":"\u001b[","problem":"department code \"\\x1b[\" is not two digits"},
		{"table":"accounts\nuser","id":"7","problem":"name\u0007 ok"},{"table":"accounts_user","id":"8","problem":"email \"ñandú@example.com\" is fine"}]}`))
	if ce == nil {
		t.Fatal("no conflicts")
	}
	want := "import stopped by 3 conflict(s); nothing was written:\n" +
		`geo_department id="\x1b[": department code "\x1b[" is not two digits` + "\n" +
		`"accounts\nuser" id=7: "name\a ok"` + "\n" +
		`accounts_user id=8: email "ñandú@example.com" is fine`
	if ce.Error() != want {
		t.Errorf("error:\n%s\nwant:\n%s", ce.Error(), want)
	}
	if conflictError(json.RawMessage(`{"conflicts":[]}`)) != nil {
		t.Error("no conflicts, an error")
	}
}
