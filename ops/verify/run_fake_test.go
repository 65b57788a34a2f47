package verify

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/isis-project/isis/internal/opstest"
	"github.com/isis-project/isis/ops/podman"
	"github.com/isis-project/isis/ops/podman/podmantest"
	"github.com/isis-project/isis/ops/spec"
)

// TestRunChecks: on a Podman fake with both slots answering, verify reports
// its checks in order; a stopped slot B and a proxy that lists one slot
// fail their checks, and only those.
func TestRunChecks(t *testing.T) {
	c := opstest.ExampleConfig()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"database":"ok","migrations":"ok"}`)
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	c.Backend.Publish, c.Backend.StandbyPublish = addr, addr
	f := podmantest.New()
	f.Networks[c.Network] = &podman.Network{Name: c.Network, Internal: true, DNS: true}
	f.Run(spec.Postgres(c), time.Now())
	for _, sl := range c.Slots() {
		f.Run(spec.ForSlot(c, sl, "img:1"), time.Now())
	}
	f.Containers[c.StandbyName()].Running = false
	proxy := filepath.Join(t.TempDir(), "nginx.conf")
	os.WriteFile(proxy, []byte("upstream isis { server "+addr+"; }\n"), 0o644)

	r := Run(context.Background(), f, c, Options{ProxyConfigs: []string{proxy}})
	var got []string
	for _, ch := range r.Checks {
		mark := "ok"
		if !ch.OK {
			mark = "FAIL"
		}
		got = append(got, mark+" "+ch.Name)
	}
	want := []string{
		"ok podman reachable",
		"ok network " + c.Network,
		"ok container " + c.Postgres.Name,
		"ok " + c.Postgres.Name + " isolated",
		"ok container " + c.Backend.Name,
		"FAIL " + c.Backend.Name + " published", // the fake publishes nothing
		"FAIL container " + c.StandbyName(),
		"FAIL " + c.StandbyName() + " published",
		"ok " + c.Postgres.Name + " restarts",
		"ok " + c.Backend.Name + " restarts",
		"ok " + c.StandbyName() + " restarts",
		"ok no secret in plain environment",
		"ok HEAD /api/",
		"ok GET /api/ready/",
		"ok HEAD /api/ on " + c.StandbyName(),
		"ok GET /api/ready/ on " + c.StandbyName(),
		"ok proxy upstreams in " + proxy,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") || r.OK {
		t.Errorf("checks (OK %v):\n%s\nwant:\n%s", r.OK, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestRunSlotHealthOverHTTP: with SlotHealthOverHTTP, a slot's health is its
// /api/health/ on its published address, not Podman's check (which the fake
// would pass): a slot answering 503 there fails its container check, and
// only PostgreSQL's health check runs through Podman.
func TestRunSlotHealthOverHTTP(t *testing.T) {
	c := opstest.ExampleConfig()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/health/" {
			http.Error(w, "draining", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprint(w, `{"database":"ok","migrations":"ok"}`)
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	c.Backend.Publish, c.Backend.StandbyPublish = addr, addr
	f := podmantest.New()
	f.Run(spec.Postgres(c), time.Now())
	for _, sl := range c.Slots() {
		f.Run(spec.ForSlot(c, sl, "img:1"), time.Now())
	}
	var checked []string
	f.Fail = func(op, name string) error {
		if op == "healthcheck" {
			checked = append(checked, name)
		}
		return nil
	}
	r := Run(context.Background(), f, c, Options{SlotHealthOverHTTP: true, ProxyConfigs: []string{}})
	for _, ch := range r.Checks {
		if ch.Name == "container "+c.Backend.Name || ch.Name == "container "+c.StandbyName() {
			if ch.OK || !strings.Contains(ch.Detail, "GET /api/health/ on "+addr+": status 503") {
				t.Errorf("%s: ok %v, %q; want the 503 of its /api/health/", ch.Name, ch.OK, ch.Detail)
			}
		}
	}
	if strings.Join(checked, ",") != c.Postgres.Name {
		t.Errorf("Podman health checks run: %v, want only %s's", checked, c.Postgres.Name)
	}
}
