package verify

import (
	"strings"
	"testing"
	"time"

	"github.com/isis-project/isis/internal/opstest"

	"github.com/isis-project/isis/ops/podman"
	"github.com/isis-project/isis/ops/render"
)

func TestRestartLoop(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name    string
		st      podman.ContainerState
		wantErr string
	}{
		{"never restarted", podman.ContainerState{Running: true, StartTime: now.Add(-time.Hour)}, ""},
		{"one crash, back", podman.ContainerState{Running: true, RestartCount: 1, StartTime: now.Add(-5 * time.Second)}, ""},
		{"many restarts long ago", podman.ContainerState{Running: true, RestartCount: 7, StartTime: now.Add(-time.Hour)}, ""},
		{"climbing", podman.ContainerState{Running: true, RestartCount: 4, StartTime: now.Add(-3 * time.Second)}, "restart loop: restarted 4 times"},
		{"down between restarts", podman.ContainerState{Running: false, RestartCount: 2}, "down after 2 restart(s)"},
	} {
		err := restartLoop(&tc.st, now)
		if (err == nil) != (tc.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.wantErr)
		}
	}
}

func TestCheckUpstreams(t *testing.T) {
	c := opstest.ExampleConfig()
	files, err := render.Render(c, render.Options{Image: "x:1"})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if strings.HasPrefix(f.Name, "proxy/") {
			if err := checkUpstreams(c, f.Content); err != nil {
				t.Errorf("rendered %s: %v", f.Name, err)
			}
		}
	}
	err = checkUpstreams(c, "api.example.com {\n\treverse_proxy 127.0.0.1:3003\n}\n")
	if err == nil || !strings.Contains(err.Error(), "isis-backend-b (127.0.0.1:3004)") {
		t.Errorf("single upstream: err = %v", err)
	}
}
