package deploy

import (
	"strings"
	"testing"

	"github.com/isis-project/isis/internal/opstest"

	"github.com/isis-project/isis/ops/render"
	"github.com/isis-project/isis/ops/spec"
)

func TestSlots(t *testing.T) {
	c := opstest.ExampleConfig()
	sl := c.Slots()
	if sl[0].Name != "isis-backend" || sl[0].Addr.String() != "127.0.0.1:3003" || sl[1].Name != "isis-backend-b" || sl[1].Addr.String() != "127.0.0.1:3004" {
		t.Errorf("slots = %+v", sl)
	}
	c.Backend.StandbyPublish = "127.0.0.1:4000"
	if got := c.Slots()[1].Addr.String(); got != "127.0.0.1:4000" {
		t.Errorf("standby_publish ignored: %s", got)
	}
	cs := spec.ForSlot(c, c.Slots()[1], "x:1")
	if cs.Name != "isis-backend-b" || cs.Publish[0] != "127.0.0.1:4000:3003" || cs.Restart != spec.RestartAlways || cs.Labels[spec.LabelSlot] != "b" {
		t.Errorf("slot B spec = %+v", cs)
	}
	for _, tc := range []struct{ publish, standby, want string }{
		{"127.0.0.1:3003", "127.0.0.1:3003", "standby_publish"},
		{"127.0.0.1:3003", "0.0.0.0:3004", "not a loopback"},
		{"127.0.0.1:3003", "nonsense", "not an address"},
		{"127.0.0.1:65535", "", "65535"},
	} {
		c := opstest.ExampleConfig()
		c.Backend.Publish, c.Backend.StandbyPublish = tc.publish, tc.standby
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("publish %s standby %q: err = %v, want %q", tc.publish, tc.standby, err, tc.want)
		}
	}
}

// TestProxyConfigShape: the rendered proxy files are whole (balanced braces,
// one upstream block in nginx's, both slots in each).
func TestProxyConfigShape(t *testing.T) {
	files, err := render.Render(opstest.ExampleConfig(), render.Options{Image: "x:1"})
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
	c := opstest.ExampleConfig()
	c.Backend.DrainTimeout = "60s"
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	s := spec.Backend(c, "x:1")
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
