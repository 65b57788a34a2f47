package ops

import (
	"strings"
	"testing"
)

// TestDeployStepsTable: one ordered table is the flow, the plan and the help.
func TestDeployStepsTable(t *testing.T) {
	want := "preflight build network secrets render migrate up wait healthy collectstatic verify"
	if got := strings.Join(DeployStepNames(), " "); got != want {
		t.Errorf("steps = %s, want %s (OPS.md's order)", got, want)
	}
	help := DeployHelp()
	for i, s := range DeploySteps {
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
