package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/isis-project/isis/ops/backup"
	"github.com/isis-project/isis/ops/config"
	"github.com/isis-project/isis/ops/cutover"
	"github.com/isis-project/isis/ops/deploy"
	"github.com/isis-project/isis/ops/steps"
	"github.com/spf13/cobra"
)

// testFactory is a factory with buffers for output and no environment.
func testFactory(configPath string) (*factory, *bytes.Buffer) {
	var out bytes.Buffer
	return &factory{io: ioStreams{Out: &out, ErrOut: &out}, getenv: func(string) string { return "" },
		configPath: configPath, output: "text"}, &out
}

// The commands' run functions take an options struct and need no cobra and,
// for these, no Podman.
func TestInitRun(t *testing.T) {
	path := filepath.Join(t.TempDir(), "isisctl.yaml")
	f, out := testFactory(path)
	if err := initRun(&initOptions{f: f, Domain: "api.test.example"}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil || !strings.Contains(string(b), "domain: api.test.example") || !strings.Contains(out.String(), "Wrote "+path) {
		t.Fatalf("init wrote %q (%v), said %q", b, err, out.String())
	}
	err = initRun(&initOptions{f: f, Domain: "api.test.example"})
	if exitCode(err) != exitUsage || !strings.Contains(err.Error(), "--force") {
		t.Errorf("init over an existing file: %v (exit %d)", err, exitCode(err))
	}
	if err := initRun(&initOptions{f: f, Domain: "api.test.example", Force: true}); err != nil {
		t.Errorf("init --force: %v", err)
	}
}

func TestLogsRunUnknownService(t *testing.T) {
	f, _ := testFactory("")
	err := logsRun(context.Background(), nil, config.Default(), &logsOptions{f: f, Service: "redis"})
	if exitCode(err) != exitUsage || !strings.Contains(err.Error(), `"redis"`) {
		t.Errorf("logs redis: %v (exit %d)", err, exitCode(err))
	}
}

func TestDeployHelpListsTheSteps(t *testing.T) {
	f, _ := testFactory("")
	cmd := newDeployCmd(f)
	for _, name := range deploy.StepNames() {
		if !strings.Contains(cmd.Short, name) || !strings.Contains(cmd.Long, name) {
			t.Errorf("deploy's help lacks step %q", name)
		}
	}
}

// TestStepHelpListsTheSteps: backup's, restore's and import-django's help
// list their step tables.
func TestStepHelpListsTheSteps(t *testing.T) {
	f, _ := testFactory("")
	for _, tc := range []struct {
		cmd   *cobra.Command
		steps []string
	}{
		{newBackupCmd(f), steps.Names(backup.CreateSteps)},
		{newRestoreCmd(f), steps.Names(backup.RestoreSteps)},
		{newImportDjangoCmd(f), steps.Names(cutover.ImportSteps)},
	} {
		for i, name := range tc.steps {
			if !strings.Contains(tc.cmd.Long, fmt.Sprintf("%d. %-13s", i+1, name)) {
				t.Errorf("%s's help lacks step %d %q:\n%s", tc.cmd.Name(), i+1, name, tc.cmd.Long)
			}
		}
	}
}
