package deploy

import (
	"strings"
	"testing"

	"github.com/isis-project/isis/internal/opstest"

	"github.com/isis-project/isis/ops/config"
	"github.com/isis-project/isis/ops/spec"
)

// TestDeployStepsTable: one ordered table is the flow, the plan and the help.
func TestDeployStepsTable(t *testing.T) {
	want := "preflight build network secrets render migrate up wait healthy collectstatic verify"
	if got := strings.Join(StepNames(), " "); got != want {
		t.Errorf("steps = %s, want %s (OPS.md's order)", got, want)
	}
	help := Help()
	for i, s := range Steps {
		if s.Run == nil || s.Summary == "" {
			t.Errorf("step %s lacks Run or Summary", s.Name)
		}
		if !strings.Contains(help, s.Name) || !strings.Contains(help, s.Summary) {
			t.Errorf("help lacks step %d %s:\n%s", i+1, s.Name, help)
		}
		if (s.Undo != nil) != (s.Name == "up") {
			t.Errorf("step %s: only up is undone (the backend back on its previous image)", s.Name)
		}
	}
}

// TestSecretTable: the one table of secrets drives validation, the mounts
// of both containers and the plain-environment check.
func TestSecretTable(t *testing.T) {
	c := opstest.CustomConfig() // with an S3 secret
	be, pg := spec.Backend(c, "x:1"), spec.Postgres(c)
	for _, s := range config.SecretTable {
		name := s.Name
		if name == config.DatabasePasswordName {
			name = config.AppPasswordName // the application role's, not the superuser's
		}
		found := false
		for _, r := range be.Secrets {
			found = found || r.Name == name
		}
		if !found || be.Env[s.Setting+"_FILE"] != "/run/secrets/"+name {
			t.Errorf("backend does not read %s through %s_FILE", name, s.Setting)
		}
		if _, ok := config.SecretEnv[s.Setting]; !ok {
			t.Errorf("%s may be set in plain in backend.env", s.Setting)
		}
		if s.Postgres != "" && (len(pg.Secrets) != 1 || pg.Env[s.Postgres+"_FILE"] == "") {
			t.Errorf("postgres does not read %s", s.Name)
		}
	}
	c = opstest.ExampleConfig() // without
	if n := len(spec.Backend(c, "x:1").Secrets); n != 2 {
		t.Errorf("without an S3 secret the backend mounts %d secrets, want 2", n)
	}
	c.Secrets.SecretKey, c.Secrets.SecretKeyFile = "x", "/y"
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "secrets.secret_key") {
		t.Errorf("value and file both set: %v", err)
	}
}
