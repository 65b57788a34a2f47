package cutover

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/isis-project/isis/internal/opstest"
	"github.com/isis-project/isis/ops/podman"
	"github.com/isis-project/isis/ops/podman/podmantest"
	"github.com/isis-project/isis/ops/steps"
)

// TestImportDjangoSteps: on a Podman fake, an import removes what an
// interrupted one left, and whatever happens, removes its own secret and
// container at the end; a conflict is an ImportConflictError.
func TestImportDjangoSteps(t *testing.T) {
	const img = "localhost/isis-backend:1"
	summary := `{"changes": 3, "conflicts": []}`
	for _, tc := range []struct {
		name      string
		failOp    string
		code      int
		out       []string
		wantErr   string
		wantSteps string
	}{
		{name: "ok", out: []string{summary}, wantSteps: "changed ok changed ok"},
		{name: "create fails", failOp: "create", wantErr: "import failed: create container", wantSteps: "changed ok changed failed"},
		{name: "conflicts", code: 1, out: []string{`{"changes": 0, "conflicts": [{"table": "accounts_user", "id": "4", "problem": "md5"}]}`},
			wantErr: "import failed: import stopped by 1 conflict(s)", wantSteps: "changed ok changed failed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := opstest.ExampleConfig()
			f := podmantest.New()
			f.Images[img] = &podman.Image{ID: "id1"}
			f.Secrets[ImportSourceSecret] = "left by a killed run"
			f.Containers[c.Backend.Name+"-import-django"] = &podmantest.Container{ID: "old"}
			f.Containers[c.Backend.Name+"-import-django"].Spec.Name = c.Backend.Name + "-import-django"
			f.RunOut = func(string) (int, []string, []string) {
				return tc.code, tc.out, []string{"import-django: read 2 users"}
			}
			f.Fail = func(op, name string) error {
				if op == tc.failOp {
					return errors.New("injected")
				}
				return nil
			}
			var lines []string
			var rec []steps.Step
			res, err := ImportDjango(context.Background(), f, c, img, ImportDjangoOptions{FromDSN: "host=old"}, func(s steps.Step) { rec = append(rec, s) },
				func(l string) { lines = append(lines, l) })
			if (err == nil) != (tc.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("err = %v, want %q", err, tc.wantErr)
			}
			if ce := (*ImportConflictError)(nil); tc.code == 1 && !errors.As(err, &ce) {
				t.Errorf("err %v is no ImportConflictError", err)
			}
			var status []string
			for _, s := range rec {
				status = append(status, s.Status)
			}
			if got := strings.Join(status, " "); got != tc.wantSteps || res == nil || len(res.Steps) != len(rec) {
				t.Errorf("steps = %q, want %q", got, tc.wantSteps)
			}
			if len(f.Secrets) != 0 || len(f.Containers) != 0 {
				t.Errorf("left behind: secrets %v, containers %v", f.Secrets, f.Names())
			}
			if !slices.Contains(lines, "isisctl: removed the secret "+ImportSourceSecret+" an interrupted import left behind") {
				t.Errorf("lines = %q", lines)
			}
			if tc.name == "ok" && (string(res.Summary) != summary || !slices.Contains(lines, "import-django: read 2 users")) {
				t.Errorf("summary %s, lines %q", res.Summary, lines)
			}
		})
	}
}
