package deploy

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/isis-project/isis/internal/opstest"

	"github.com/isis-project/isis/ops/render"
	"github.com/isis-project/isis/ops/spec"
)

// TestLameDuckInsideFailTimeout: slot A's lame duck (SHUTDOWN_DELAY) and the
// close of its listener end at least a second before nginx's fail_timeout for
// A can run out. nginx marks A down after its 503s and skips it for
// fail_timeout (more than that: nginx counts whole seconds); if that ran out
// while A still served, one request would go to A again, a POST served there
// would clear the mark, and POSTs arriving while A closes its listener could
// be reset, which nginx does not resend (a 502 through the proxy).
func TestLameDuckInsideFailTimeout(t *testing.T) {
	c := opstest.ExampleConfig()
	files, err := render.Render(c, render.Options{Image: "x:1"})
	if err != nil {
		t.Fatal(err)
	}
	delay, err := time.ParseDuration(spec.Backend(c, "x:1").Env["SHUTDOWN_DELAY"])
	if err != nil {
		t.Fatal(err)
	}
	primary := regexp.MustCompile(`(?m)^\s*server 127\.0\.0\.1:3003 [^;]*fail_timeout=(\w+);`)
	for _, f := range files {
		if f.Name != "proxy/nginx-isis.conf" {
			continue
		}
		m := primary.FindStringSubmatch(f.Content)
		if m == nil {
			t.Fatalf("no primary server with fail_timeout in %s:\n%s", f.Name, f.Content)
		}
		ft, err := time.ParseDuration(m[1])
		if err != nil {
			t.Fatalf("fail_timeout %q: %v", m[1], err)
		}
		if delay+time.Second > ft {
			t.Errorf("SHUTDOWN_DELAY %s + 1 s of margin for the drain > nginx's fail_timeout %s for slot A", delay, ft)
		}
		if !strings.Contains(f.Content, "proxy_set_header X-Isis-Failover 1;") {
			t.Errorf("%s does not mark its requests X-Isis-Failover: the lame duck would not send nginx's GETs on", f.Name)
		}
		return
	}
	t.Fatal("no proxy/nginx-isis.conf rendered")
}
