package deploy

import (
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/isis-project/isis/internal/doctest"
	"github.com/isis-project/isis/ops/config"
)

// TestDocsDeploySteps: the step table of docs/operations.md names the steps
// of deploy.Steps, in their order.
func TestDocsDeploySteps(t *testing.T) {
	row := regexp.MustCompile(`^\| ([a-z ]+) \| `)
	var documented []string
	for _, line := range doctest.Section(t, "../../docs/operations.md", "### deploy") {
		if m := row.FindStringSubmatch(line); m != nil && m[1] != "step" {
			documented = append(documented, strings.TrimSpace(m[1]))
		}
	}
	if want := StepNames(); !reflect.DeepEqual(documented, want) {
		t.Errorf("docs/operations.md's deploy steps are %q; ops.DeploySteps has %q", documented, want)
	}
}

// TestDocsConfigKeys: the configuration table of docs/operations.md names
// every key of isisctl.yaml in its section's row, and no key that does not
// exist.
func TestDocsConfigKeys(t *testing.T) {
	row := regexp.MustCompile("^\\| (\\(top\\)|`([a-z_]+)`) \\| (.*) \\|$")
	name := regexp.MustCompile("`([a-z0-9_]+)`")
	documented := map[string]bool{}
	for _, line := range doctest.Section(t, "../../docs/operations.md", "## Configuration: isisctl.yaml") {
		m := row.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		prefix := ""
		if m[2] != "" {
			prefix = m[2] + "."
		}
		// A key is a backticked name right at the start of the cell or
		// after ", ", " or " or " with ": what follows in parentheses are
		// examples and defaults.
		cell := regexp.MustCompile(`\([^()]*(\([^()]*\)[^()]*)*\)`).ReplaceAllString(m[3], "")
		for _, k := range name.FindAllStringSubmatch(cell, -1) {
			documented[prefix+k[1]] = true
		}
	}
	keys := map[string]bool{}
	var walk func(t reflect.Type, prefix string)
	walk = func(t reflect.Type, prefix string) {
		for i := 0; i < t.NumField(); i++ {
			tag := strings.Split(t.Field(i).Tag.Get("yaml"), ",")[0]
			if tag == "" || tag == "-" {
				continue
			}
			if f := t.Field(i).Type; f.Kind() == reflect.Struct {
				walk(f, prefix+tag+".")
				continue
			}
			keys[prefix+tag] = true
		}
	}
	walk(reflect.TypeOf(config.Config{}), "")
	for k := range keys {
		if !documented[k] {
			t.Errorf("isisctl.yaml key %s is not in docs/operations.md's configuration table", k)
		}
	}
	for k := range documented {
		if !keys[k] {
			t.Errorf("docs/operations.md's configuration table names %s, which isisctl.yaml does not have", k)
		}
	}
}
