package deploy

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/isis-project/isis/internal/opstest"

	"github.com/isis-project/isis/ops/config"
	"github.com/isis-project/isis/ops/podman"
	"github.com/isis-project/isis/ops/podman/podmantest"
	"github.com/isis-project/isis/ops/spec"
)

// backendFake is a deployment whose two slots run img:old: a Podman fake and,
// at each slot's published address, a backend answering /api/health/ and
// /api/ready/ (failing the requests the test asks it to).
type backendFake struct {
	c       *config.Config
	f       *podmantest.Fake
	oldHash map[string]string
	refuse  map[string]*atomic.Int32 // slot name → ready requests still to fail
	sick    map[string]*atomic.Bool  // slot name → /api/health/ answers 503
}

func newBackendFake(t *testing.T) *backendFake {
	t.Helper()
	b := &backendFake{c: opstest.ExampleConfig(), f: podmantest.New(), oldHash: map[string]string{},
		refuse: map[string]*atomic.Int32{}, sick: map[string]*atomic.Bool{}}
	var addrs []string
	for _, name := range []string{b.c.Backend.Name, b.c.StandbyName()} {
		n, sick := &atomic.Int32{}, &atomic.Bool{}
		b.refuse[name], b.sick[name] = n, sick
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/api/health/" {
				if sick.Load() {
					http.Error(w, "sick", http.StatusServiceUnavailable)
					return
				}
				fmt.Fprint(w, `{"status":"ok"}`)
				return
			}
			if r.URL.Path != "/api/ready/" || r.Host != b.c.Domain {
				http.NotFound(w, r)
				return
			}
			if n.Add(-1) >= 0 {
				http.Error(w, `{"database":"down"}`, http.StatusServiceUnavailable)
				return
			}
			fmt.Fprint(w, `{"database":"ok","migrations":"ok"}`)
		}))
		t.Cleanup(srv.Close)
		addrs = append(addrs, strings.TrimPrefix(srv.URL, "http://"))
	}
	b.c.Backend.Publish, b.c.Backend.StandbyPublish = addrs[0], addrs[1]
	b.f.Images["img:old"] = &podman.Image{ID: "old"}
	b.f.Images["img:new"] = &podman.Image{ID: "new"}
	for _, sl := range b.c.Slots() {
		s := spec.ForSlot(b.c, sl, "img:old")
		s.ImageID = "old"
		b.oldHash[sl.Name] = s.Hash()
		b.f.Run(s, time.Now().Add(-time.Hour))
	}
	return b
}

// failOnce makes the first op on name fail (later ones pass: the undo's own
// steps are not the failure under test).
func failOnce(op, name string) func(string, string) error {
	var done atomic.Bool
	return func(o, n string) error {
		if o == op && n == name && done.CompareAndSwap(false, true) {
			return errors.New("injected " + op + " failure")
		}
		return nil
	}
}

// assertOld checks both slots run their old containers and nothing else is left.
func (b *backendFake) assertOld(t *testing.T) {
	t.Helper()
	want := []string{b.c.Backend.Name, b.c.StandbyName()}
	if got := b.f.Names(); !slices.Equal(got, want) {
		t.Fatalf("containers after the failure = %v, want %v running", got, want)
	}
	for name, h := range b.oldHash {
		st, _ := b.f.Inspect(name)
		if st.SpecHash != h || st.Image != "img:old" {
			t.Errorf("%s runs %s (hash %s), want the old container back (img:old, %s)", name, st.Image, st.SpecHash, h)
		}
	}
}

// TestEnsureBackendFailurePoints: wherever the switch to a new image fails,
// in either slot, on this host (the health check a request on the published
// port) or a remote one (Podman's health check), the old containers are
// back, running, under their names, and the error names the failure.
func TestEnsureBackendFailurePoints(t *testing.T) {
	c := opstest.ExampleConfig()
	a, bName := c.Backend.Name, c.StandbyName()
	for _, tc := range []struct {
		op, name string
		smoke    bool // the slot's smoke request fails instead
		remote   bool
	}{
		{"stop", bName, false, false}, {"rename", bName, false, false}, {"create", bName, false, false}, {"start", bName, false, false},
		{"healthy", bName, false, false}, {"healthy", bName, false, true}, {"", bName, true, false},
		// Slot A fails after slot B was switched: B is put back too.
		{"stop", a, false, false}, {"rename", a, false, false}, {"create", a, false, false}, {"start", a, false, false},
		{"healthy", a, false, false}, {"healthy", a, false, true}, {"", a, true, false},
	} {
		t.Run(fmt.Sprintf("%s-%s-smoke=%v-remote=%v", tc.op, tc.name, tc.smoke, tc.remote), func(t *testing.T) {
			b := newBackendFake(t)
			want := "injected " + tc.op
			switch {
			case tc.smoke:
				b.refuse[tc.name].Store(1)
				want = "smoke request GET /api/ready/ on " + tc.name
			case tc.op == "healthy" && !tc.remote:
				// The new container's /api/health/ answers 503 from its start.
				b.f.Fail = func(op, name string) error {
					if op == "start" && name == tc.name {
						b.sick[tc.name].Store(true)
					}
					return nil
				}
				want = fmt.Sprintf("container %q is unhealthy (GET /api/health/", tc.name)
			default:
				b.f.Fail = failOnce(tc.op, tc.name)
			}
			if tc.remote {
				// The smoke request runs in the container: the fake's exec
				// answers ready.
				b.f.ExecOut = func(string, []string) (string, int) { return `{"database":"ok","migrations":"ok"}`, 0 }
			}
			_, _, err := EnsureBackend(context.Background(), b.f, b.c, "img:new", tc.remote)
			if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "failed too") {
				t.Fatalf("err = %v, want one error naming %q", err, want)
			}
			b.sick[tc.name].Store(false)
			b.assertOld(t)
		})
	}
}

// TestEnsureBackendSwitch: the standby slot is replaced first, the old
// containers are dropped only once both are proven, and a second run changes
// nothing.
func TestEnsureBackendSwitch(t *testing.T) {
	b := newBackendFake(t)
	action, previous, err := EnsureBackend(context.Background(), b.f, b.c, "img:new", false)
	if err != nil || action != "replaced" || previous != "img:old" {
		t.Fatalf("EnsureBackend = %q, %q, %v", action, previous, err)
	}
	a, sb := b.c.Backend.Name, b.c.StandbyName()
	want := []string{"stop " + sb, "rename " + sb + " " + sb + "-previous", "create " + sb, "start " + sb,
		"stop " + a, "rename " + a + " " + a + "-previous", "create " + a, "start " + a,
		"remove " + sb + "-previous", "remove " + a + "-previous"}
	// The two old containers are removed at once, in either order.
	if n := len(b.f.Calls); n >= 2 {
		slices.Sort(b.f.Calls[n-2:])
	}
	if !slices.Equal(b.f.Calls, want) {
		t.Errorf("calls:\n%s\nwant:\n%s", strings.Join(b.f.Calls, "\n"), strings.Join(want, "\n"))
	}
	if got := b.f.Names(); !slices.Equal(got, []string{a, sb}) {
		t.Errorf("containers = %v", got)
	}
	if !BackendUpToDate(b.f, b.c, "img:new") {
		t.Error("not up to date after the switch")
	}
	b.f.Calls = nil
	// The second run changes nothing and runs no health check either (an
	// exec in the container: a no-op deploy's time).
	var checks atomic.Int32
	b.f.Fail = func(op, _ string) error {
		if op == "healthcheck" {
			checks.Add(1)
		}
		return nil
	}
	if action, _, err := EnsureBackend(context.Background(), b.f, b.c, "img:new", false); err != nil || action != "unchanged" || len(b.f.Calls) != 0 || checks.Load() != 0 {
		t.Errorf("second run: %q, %v, calls %v, %d health checks", action, err, b.f.Calls, checks.Load())
	}
}

// TestEnsureBackendOrder: when slot A is down and B serves, A is replaced
// first (B keeps serving meanwhile); a failure in A then leaves A as it was,
// stopped, and B untouched.
func TestEnsureBackendOrder(t *testing.T) {
	a, sb := opstest.ExampleConfig().Backend.Name, opstest.ExampleConfig().StandbyName()
	b := newBackendFake(t)
	_ = b.f.Stop(a, 0)
	b.f.Calls = nil
	if _, _, err := EnsureBackend(context.Background(), b.f, b.c, "img:new", false); err != nil {
		t.Fatal(err)
	}
	if got := b.f.Calls[:4]; !slices.Equal(got, []string{"stop " + a, "rename " + a + " " + a + "-previous", "create " + a, "start " + a}) {
		t.Errorf("first calls = %v, want slot A replaced first", got)
	}
	b = newBackendFake(t)
	_ = b.f.Stop(a, 0)
	b.f.Fail = failOnce("start", a)
	if _, _, err := EnsureBackend(context.Background(), b.f, b.c, "img:new", false); err == nil || !strings.Contains(err.Error(), "injected start") {
		t.Fatalf("err = %v", err)
	}
	if got := b.f.Names(); !slices.Equal(got, []string{a + " (stopped)", sb}) {
		t.Errorf("containers = %v, want A stopped as it was and B running", got)
	}
	if st, _ := b.f.Inspect(sb); st.SpecHash != b.oldHash[sb] {
		t.Error("slot B was changed")
	}
}
