package main

import (
	"os"
	"regexp"
	"testing"

	"github.com/isis-project/isis/internal/doctest"
)

// docCommand is one row of the command table in docs/operations.md: "| `isisctl NAME` | what |".
var docCommand = regexp.MustCompile("^\\| `isisctl ([a-z-]+)` \\|")

// TestDocsCommandsMatchCobra: the command table of docs/operations.md names
// every isisctl command, and only those; each has a short help and an example.
func TestDocsCommandsMatchCobra(t *testing.T) {
	documented := map[string]bool{}
	for _, line := range doctest.Section(t, "../../docs/operations.md", "## Commands") {
		if m := docCommand.FindStringSubmatch(line); m != nil {
			documented[m[1]] = true
		}
	}
	root := newRootCmd(&factory{getenv: os.Getenv})
	root.InitDefaultHelpCmd()
	commands := map[string]bool{}
	for _, c := range root.Commands() {
		if c.Name() == "help" || c.Name() == "completion" || c.Hidden {
			continue
		}
		commands[c.Name()] = true
		if c.Short == "" || c.Example == "" {
			t.Errorf("isisctl %s lacks a short help or an example", c.Name())
		}
	}
	missing, extra := doctest.Diff(commands, documented)
	if len(missing) > 0 || len(extra) > 0 {
		t.Errorf("docs/operations.md's command table and isisctl differ\ncommands not in the table: %v\nin the table, not commands: %v", missing, extra)
	}
	if len(commands) < 10 {
		t.Errorf("only %d commands found in the cobra tree", len(commands))
	}
}
