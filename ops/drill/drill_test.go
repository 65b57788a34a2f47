package drill

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/isis-project/isis/internal/opstest"
	"github.com/isis-project/isis/ops/audit"
	"github.com/isis-project/isis/ops/config"
	"github.com/isis-project/isis/ops/host"
	"github.com/isis-project/isis/ops/podman"
	"github.com/isis-project/isis/ops/podman/podmantest"
	"github.com/isis-project/isis/ops/spec"
)

// TestDrillOptionRules: --bound and --public-url, each bad value one
// *ConfigError naming the flag; an http:// proxy only on loopback, its
// requests carrying the deployment's Host.
func TestDrillOptionRules(t *testing.T) {
	for _, tc := range []struct {
		url   string
		bound time.Duration
		base  string // "" when refused
		host  string
		err   string
	}{
		{url: "", base: "https://api.example.com"},
		{url: "https://api.example.com", base: "https://api.example.com"},
		{url: "https://api.example.com:8443/", base: "https://api.example.com:8443"},
		{url: "http://127.0.0.1:8080", base: "http://127.0.0.1:8080", host: "api.example.com"},
		{url: "http://localhost:8080/", base: "http://localhost:8080", host: "api.example.com"},
		{url: "http://[::1]:8080", base: "http://[::1]:8080", host: "api.example.com"},
		{url: "", bound: time.Millisecond, base: "https://api.example.com"},
		{url: "http://api.example.com", err: `--public-url: "http://api.example.com" is plain HTTP to another machine`},
		{url: "http://10.0.0.5:80", err: "plain HTTP to another machine"},
		{url: "ftp://api.example.com", err: "is not an https:// (or loopback http://) URL"},
		{url: "api.example.com", err: "is not a base URL"},
		{url: "https://api.example.com/api/", err: "is not a base URL"},
		{url: "https://user:pw@api.example.com", err: "is not a base URL"},
		{url: "https://api.example.com/?x=1", err: "is not a base URL"},
		{bound: -time.Second, err: "--bound: -1s is not between 0 and 10m0s"},
		{bound: 11 * time.Minute, err: "--bound: 11m0s is not between 0 and 10m0s"},
	} {
		o := Options{PublicURL: tc.url, Bound: tc.bound}
		got, err := checkOptions(opstest.ExampleConfig().Domain, &o)
		if tc.err != "" {
			var ce *config.Error
			if !errors.As(err, &ce) || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q %s: err %v, want a config.Error with %q", tc.url, tc.bound, err, tc.err)
			}
			continue
		}
		if err != nil || got.base != tc.base || got.host != tc.host {
			t.Errorf("%q: %+v %v, want base %q host %q", tc.url, got, err, tc.base, tc.host)
		}
		if tc.bound == 0 && o.Bound != DefaultBound {
			t.Errorf("the default bound is %s, want %s", o.Bound, DefaultBound)
		}
	}
}

// scrape is a metrics answer with the given requests by route.
func scrape(routes map[string]int) string {
	s := "# TYPE isis_build_info gauge\nisis_build_info{goversion=\"go1.26\",version=\"test\"} 1\n# TYPE isis_http_requests_total counter\n"
	for r, n := range routes {
		s += `isis_http_requests_total{method="GET",route="` + r + `",status="200"} ` + strconv.Itoa(n) + "\n"
	}
	return s
}

// drillFake is a deployment in the fake: both slots and PostgreSQL
// running, with metrics when metrics is set.
func drillFake(t *testing.T, metrics bool) (*podmantest.Fake, *config.Config) {
	t.Helper()
	c := opstest.ExampleConfig()
	if metrics {
		c.Backend.Env["METRICS_ADDRESS"] = "127.0.0.1:9100"
	}
	f := podmantest.New()
	for _, sl := range c.Slots() {
		f.Run(spec.ForSlot(c, sl, "img:1"), time.Now())
	}
	f.Run(spec.Postgres(c), time.Now())
	return f, c
}

// TestDrillRefusal: without --yes, a deployment whose slots answered
// requests besides the probes, or whose traffic cannot be told (no
// metrics), is refused with a *ConfirmError before anything is touched:
// no helper created, no lock taken, nothing audited. Only probes, or
// --yes, go on (here to a proxy that does not answer).
func TestDrillRefusal(t *testing.T) {
	for _, tc := range []struct {
		name    string
		metrics bool
		routes  map[string]int // slot B's
		yes     bool
		refused string // "" when it goes on
	}{
		{name: "served requests", metrics: true, routes: map[string]int{"/api/health": 40, "/api/departments/:code": 7}, refused: "isis-backend-b has answered 7 request(s) besides health checks"},
		{name: "unmatched routes count", metrics: true, routes: map[string]int{"unmatched": 2}, refused: "answered 2 request(s)"},
		{name: "no metrics", refused: "isis-backend's metrics cannot be read (no METRICS_ADDRESS), so the drill cannot tell"},
		{name: "only probes", metrics: true, routes: map[string]int{"/api/health": 40, "/api/ready": 3, "/api": 2}},
		{name: "served, --yes", metrics: true, routes: map[string]int{"/api/departments": 7}, yes: true},
		{name: "no metrics, --yes", yes: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, c := drillFake(t, tc.metrics)
			f.ExecOut = func(name string, cmd []string) (string, int) {
				if name == c.StandbyName() {
					return scrape(tc.routes), 0
				}
				return scrape(map[string]int{"/api/health": 5}), 0
			}
			_, err := Run(context.Background(), f, c, Options{PublicURL: "http://127.0.0.1:1", Yes: tc.yes})
			var ce *RefusedError
			if tc.refused != "" {
				if !errors.As(err, &ce) || !strings.Contains(err.Error(), tc.refused) || !strings.HasSuffix(err.Error(), "run again with --yes to do it") {
					t.Fatalf("err = %v, want a refusal with %q", err, tc.refused)
				}
				if len(f.Calls) != 0 {
					t.Errorf("a refused drill changed %v", f.Calls)
				}
				return
			}
			if err == nil || errors.As(err, &ce) || !strings.Contains(err.Error(), "GET http://127.0.0.1:1/api/ready/ before the drill") {
				t.Fatalf("err = %v, want the proxy's failure", err)
			}
			for _, call := range f.Calls {
				if strings.HasPrefix(call, "create ") {
					t.Errorf("a drill whose proxy does not answer created %s", call)
				}
			}
			entries, _ := audit.Read(f, 10)
			if len(entries) != 1 || entries[0].Action != "drill" || entries[0].Result != "failed" || !strings.Contains(entries[0].Detail, "before the drill") {
				t.Errorf("audit trail: %+v", entries)
			}
			if _, err := f.VolumeLabels("isisctl-deploy-lock"); err == nil {
				t.Error("the deploy lock is still held")
			}
		})
	}
}

// TestDrillNeedsSomethingToRestart: a container without a restart policy
// or a systemd unit would stay down after the crash: refused before the
// kill; one systemd runs is fine.
func TestDrillNeedsSomethingToRestart(t *testing.T) {
	for _, tc := range []struct {
		restart, unit string
		want          string
	}{
		{restart: "always", want: "Podman's restart policy (always)"},
		{restart: "on-failure", want: "Podman's restart policy (on-failure)"},
		{unit: "isis-backend.service", want: "systemd (isis-backend.service)"},
		{restart: "", want: "container isis-backend has no restart policy and no systemd unit"},
		{restart: "no", want: "container isis-backend has no restart policy and no systemd unit"},
	} {
		st := &podman.ContainerState{Name: "isis-backend", Restart: tc.restart, Labels: map[string]string{}}
		if tc.unit != "" {
			st.Labels[host.LabelSystemdUnit] = tc.unit
		}
		got, err := restartedBy(st)
		if err != nil {
			got = err.Error()
		}
		if !strings.HasPrefix(got, tc.want) {
			t.Errorf("restart %q unit %q: %q, want %q", tc.restart, tc.unit, got, tc.want)
		}
	}
	f, c := drillFake(t, true)
	pg := spec.Postgres(c)
	pg.Restart = ""
	f.Containers[pg.Name].Spec = *pg
	_, err := Run(context.Background(), f, c, Options{Yes: true})
	if err == nil || !strings.Contains(err.Error(), "container "+c.Postgres.Name+" has no restart policy") {
		t.Errorf("err = %v", err)
	}
	if len(f.Calls) != 0 {
		t.Errorf("changed %v", f.Calls)
	}
	f.Containers[pg.Name].Running = false
	if _, err := Run(context.Background(), f, c, Options{Yes: true}); err == nil || !strings.Contains(err.Error(), "container "+c.Postgres.Name+" is not running") {
		t.Errorf("stopped database: err = %v", err)
	}
}
