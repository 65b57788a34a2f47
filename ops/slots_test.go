package ops

import (
	"strings"
	"testing"
	"time"
)

func TestSlots(t *testing.T) {
	c := exampleConfig()
	sl := c.Slots()
	if sl[0].Name != "isis-backend" || sl[0].Addr.String() != "127.0.0.1:3003" || sl[1].Name != "isis-backend-b" || sl[1].Addr.String() != "127.0.0.1:3004" {
		t.Errorf("slots = %+v", sl)
	}
	c.Backend.StandbyPublish = "127.0.0.1:4000"
	if got := c.Slots()[1].Addr.String(); got != "127.0.0.1:4000" {
		t.Errorf("standby_publish ignored: %s", got)
	}
	spec := ForSlot(c, c.Slots()[1], "x:1")
	if spec.Name != "isis-backend-b" || spec.Publish[0] != "127.0.0.1:4000:3003" || spec.Restart != RestartAlways || spec.Labels[LabelSlot] != "b" {
		t.Errorf("slot B spec = %+v", spec)
	}
	for _, tc := range []struct{ publish, standby, want string }{
		{"127.0.0.1:3003", "127.0.0.1:3003", "standby_publish"},
		{"127.0.0.1:3003", "0.0.0.0:3004", "not a loopback"},
		{"127.0.0.1:3003", "nonsense", "not an address"},
		{"127.0.0.1:65535", "", "65535"},
	} {
		c := exampleConfig()
		c.Backend.Publish, c.Backend.StandbyPublish = tc.publish, tc.standby
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("publish %s standby %q: err = %v, want %q", tc.publish, tc.standby, err, tc.want)
		}
	}
}

func TestRestartLoop(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name    string
		st      ContainerState
		wantErr string
	}{
		{"never restarted", ContainerState{Running: true, StartTime: now.Add(-time.Hour)}, ""},
		{"one crash, back", ContainerState{Running: true, RestartCount: 1, StartTime: now.Add(-5 * time.Second)}, ""},
		{"many restarts long ago", ContainerState{Running: true, RestartCount: 7, StartTime: now.Add(-time.Hour)}, ""},
		{"climbing", ContainerState{Running: true, RestartCount: 4, StartTime: now.Add(-3 * time.Second)}, "restart loop: restarted 4 times"},
		{"down between restarts", ContainerState{Running: false, RestartCount: 2}, "down after 2 restart(s)"},
	} {
		err := restartLoop(&tc.st, now)
		if (err == nil) != (tc.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.wantErr)
		}
	}
}

func TestCheckUpstreams(t *testing.T) {
	c := exampleConfig()
	files, err := Render(c, RenderOptions{Image: "x:1"})
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

// TestProxyConfigShape: the rendered proxy files are whole (balanced braces,
// one upstream block in nginx's, both slots in each).
func TestProxyConfigShape(t *testing.T) {
	files, err := Render(exampleConfig(), RenderOptions{Image: "x:1"})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if !strings.HasPrefix(f.Name, "proxy/") {
			continue
		}
		depth := 0
		for i, line := range strings.Split(f.Content, "\n") {
			code, _, _ := strings.Cut(line, "#")
			depth += strings.Count(code, "{") - strings.Count(code, "}")
			if depth < 0 {
				t.Fatalf("%s:%d: unbalanced }", f.Name, i+1)
			}
			if depth == 0 && strings.HasPrefix(strings.TrimSpace(code), "server 127.") {
				t.Errorf("%s:%d: an upstream server outside the upstream block: %s", f.Name, i+1, line)
			}
		}
		if depth != 0 {
			t.Errorf("%s: %d unclosed {", f.Name, depth)
		}
	}
}

func TestDrainTimeout(t *testing.T) {
	c := exampleConfig()
	c.Backend.DrainTimeout = "60s"
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	s := Backend(c, "x:1")
	if s.Env["SHUTDOWN_TIMEOUT"] != "1m0s" || s.Env["SHUTDOWN_DELAY"] != "1s" || s.StopTimeout != 64 {
		t.Errorf("drain 60s: SHUTDOWN_TIMEOUT %s, SHUTDOWN_DELAY %s, StopTimeout %d", s.Env["SHUTDOWN_TIMEOUT"], s.Env["SHUTDOWN_DELAY"], s.StopTimeout)
	}
	for _, bad := range []string{"soon", "0s", "1h"} {
		c.Backend.DrainTimeout = bad
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "backend.drain_timeout") {
			t.Errorf("drain_timeout %q: %v", bad, err)
		}
	}
}
