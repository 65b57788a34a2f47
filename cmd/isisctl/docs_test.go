package main

import (
	"bufio"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// docCommand is one row of the command table in docs/operations.md: "| `isisctl NAME` | what |".
var docCommand = regexp.MustCompile("^\\| `isisctl ([a-z-]+)` \\|")

// TestDocsCommandsMatchCobra: the command table of docs/operations.md names
// every isisctl command, and only those; each has a short help and an example.
func TestDocsCommandsMatchCobra(t *testing.T) {
	f, err := os.Open("../../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	documented := map[string]bool{}
	inTable := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "## ") {
			inTable = line == "## Commands"
			continue
		}
		if m := docCommand.FindStringSubmatch(line); inTable && m != nil {
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
	var missing, extra []string
	for k := range commands {
		if !documented[k] {
			missing = append(missing, k)
		}
	}
	for k := range documented {
		if !commands[k] {
			extra = append(extra, k)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	if len(missing) > 0 || len(extra) > 0 {
		t.Errorf("docs/operations.md's command table and isisctl differ\ncommands not in the table: %v\nin the table, not commands: %v", missing, extra)
	}
	if len(commands) < 10 {
		t.Errorf("only %d commands found in the cobra tree", len(commands))
	}
}
