package verify

import (
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/isis-project/isis/ops/config"
	"github.com/isis-project/isis/ops/podman"
	"github.com/isis-project/isis/ops/spec"
)

// Check is one verify check.
type Check struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
	// Alarm and Runbook, on a failure: the condition (Alarms) and its
	// entry in docs/runbook.md.
	Alarm   string `json:"alarm,omitempty"`
	Runbook string `json:"runbook,omitempty"`
}

// Result is every check; OK only when all pass.
type Result struct {
	OK     bool    `json:"ok"`
	Checks []Check `json:"checks"`
}

// Add appends a check: passed with okDetail, or failed by err, raising
// alarm (or the one err's answer names: see alarmFor).
func (r *Result) Add(alarm, name string, err error, okDetail string) {
	ch := Check{Name: name, OK: err == nil, Detail: okDetail}
	if err != nil {
		ch.Detail = err.Error()
		ch.Alarm = alarmFor(alarm, err)
		ch.Runbook = RunbookLink(ch.Alarm)
		r.OK = false
	}
	r.Checks = append(r.Checks, ch)
}

// FailedError means at least one check failed (exit code 3).
type FailedError struct{ Failed []string }

func (e *FailedError) Error() string {
	return fmt.Sprintf("verify failed: %d check(s): %s", len(e.Failed), strings.Join(e.Failed, ", "))
}

// Options tune verify.
type Options struct {
	PublicURL string
	// BaseURL overrides http://<backend.publish> (tests).
	BaseURL string
	HTTP    *http.Client
	// Remote: the Podman host is not this machine (ssh://), so the HTTP
	// checks run inside the backend container instead of from here.
	Remote bool
	// ProxyConfigs are the reverse-proxy files to check for both upstreams
	// (default: the usual nginx and Caddy places on this host that mention
	// the domain).
	ProxyConfigs []string
	// SlotHealthOverHTTP: the slots' health checks are their request, GET
	// /api/health/ on each published address, instead of Podman's check (an
	// exec in each, which also records the status podman ps shows): a
	// deploy's last step, on this host.
	SlotHealthOverHTTP bool
	// Standing adds the checks of a deployment that has run a while (isisctl
	// verify, not a deploy's last step): the backups' age and room, the
	// throttle store.
	Standing bool
}

// Verify runs the smoke test of docs/operations.md: the checks of
// verifyChecks, at once (each an API round trip, an exec or an HTTP request
// of its own), reported in their order.
func Run(ctx context.Context, conn podman.Engine, c *config.Config, o Options) *Result {
	in := &inspected{done: make(chan struct{})}
	parts := make([]*Result, len(verifyChecks))
	var wg sync.WaitGroup
	for i, check := range verifyChecks {
		parts[i] = &Result{OK: true}
		wg.Add(1)
		go func() {
			defer wg.Done()
			check(&verifier{ctx: ctx, conn: conn, c: c, o: o, r: parts[i], in: in})
		}()
	}
	wg.Wait()
	r := &Result{OK: true}
	for _, p := range parts {
		r.OK = r.OK && p.OK
		r.Checks = append(r.Checks, p.Checks...)
	}
	return r
}

// verifyChecks are verify's checks, in the order they report; each adds
// one or more Checks (Result.Add) to a Result of its own.
var verifyChecks = []func(v *verifier){
	checkPodman,
	checkNetwork,
	checkContainers, // health and isolation; inspects every container for the checks after it
	checkRestarts,
	checkSecretsNotInEnv,
	checkAPI,
	checkProxyConfigs,
	checkPublicURL,
	checkStanding,
}

// verifier is what one check sees: its own Result, and the containers
// checkContainers inspected, shared.
type verifier struct {
	ctx  context.Context
	conn podman.Engine
	c    *config.Config
	o    Options
	r    *Result
	in   *inspected
}

// inspected are the containers (postgres, slot A, slot B) and their
// states, filled by checkContainers, which closes done.
type inspected struct {
	done   chan struct{}
	names  []string
	states map[string]*podman.ContainerState
}

// containers waits for checkContainers and returns what it inspected.
func (v *verifier) containers() ([]string, map[string]*podman.ContainerState) {
	<-v.in.done
	return v.in.names, v.in.states
}

func checkPodman(v *verifier) {
	ver, err := v.conn.Version()
	v.r.Add(AlarmPodmanUnreachable, "podman reachable", err, "version "+ver)
}

func checkNetwork(v *verifier) {
	c := v.c
	net, err := v.conn.NetworkInspect(c.Network)
	switch {
	case err != nil:
		v.r.Add(AlarmNetworkMissing, "network "+c.Network, fmt.Errorf("missing: %v", shortErr(err)), "")
	case !net.Internal:
		v.r.Add(AlarmNetworkMissing, "network "+c.Network, fmt.Errorf("exists but is not internal"), "")
	default:
		v.r.Add(AlarmNetworkMissing, "network "+c.Network, nil, "exists, internal, DNS "+onOff(net.DNS))
	}
}

// checkContainers: each container running and healthy (the health checks,
// an exec each or the slots' request, run at once), postgres only on the
// private network and publishing nothing, each slot published only on its
// address.
func checkContainers(v *verifier) {
	c, conn, add := v.c, v.conn, v.r.Add
	names := []string{c.Postgres.Name, c.Backend.Name, c.StandbyName()}
	states := make(map[string]*podman.ContainerState, len(names))
	health := make(map[string]error, len(names))
	inspected := make(chan struct{}, len(names))
	overHTTP := map[string]string{} // slot name → published address
	if v.o.SlotHealthOverHTTP && !v.o.Remote {
		for _, sl := range c.Slots() {
			overHTTP[sl.Name] = sl.Addr.String()
		}
	}
	client := cmp.Or(v.o.HTTP, &http.Client{Timeout: 10 * time.Second})
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, n := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, err := conn.Inspect(n)
			mu.Lock()
			states[n] = st
			mu.Unlock()
			inspected <- struct{}{}
			var herr error
			if addr, ok := overHTTP[n]; ok {
				herr = slotHealthHTTP(v.ctx, client, addr, st, err)
			} else {
				herr = ContainerCheck(conn, st, err)
			}
			mu.Lock()
			health[n] = herr
			mu.Unlock()
		}()
	}
	// The checks that read the states go on while the health checks run.
	for range names {
		<-inspected
	}
	mu.Lock()
	v.in.names, v.in.states = names, maps.Clone(states)
	mu.Unlock()
	close(v.in.done)
	wg.Wait()
	add(AlarmPostgresDown, "container "+c.Postgres.Name, health[c.Postgres.Name], "running, healthy")
	if pg := states[c.Postgres.Name]; pg != nil && pg.Exists {
		var perr error
		if !slices.Equal(pg.Networks, []string{c.Network}) {
			perr = fmt.Errorf("attached to %v, want only %s", pg.Networks, c.Network)
		} else if len(pg.Published) > 0 {
			perr = fmt.Errorf("publishes %v, want nothing", pg.Published)
		}
		add(AlarmPostgresExposed, c.Postgres.Name+" isolated", perr, "only on "+c.Network+", publishes nothing")
	}
	for _, sl := range c.Slots() {
		be := states[sl.Name]
		add(AlarmSlotDown, "container "+sl.Name, health[sl.Name], "running, healthy")
		if be == nil || !be.Exists {
			continue
		}
		var berr error
		want := fmt.Sprintf("%s:%d->%d/tcp", sl.Addr.Addr(), sl.Addr.Port(), spec.BackendPort)
		if !slices.Contains(be.Networks, c.Network) {
			berr = fmt.Errorf("not attached to %s (networks %v)", c.Network, be.Networks)
		} else if !slices.Equal(be.Published, []string{want}) {
			berr = fmt.Errorf("publishes %v, want only %s", be.Published, want)
		}
		add(AlarmSlotExposed, sl.Name+" published", berr, "on "+c.Network+", published only on "+sl.Addr.String())
	}
}

func checkRestarts(v *verifier) {
	names, states := v.containers()
	for _, name := range names {
		if st := states[name]; st != nil && st.Exists {
			v.r.Add(AlarmRestartLoop, name+" restarts", restartLoop(st, time.Now()), restartDetail(st))
		}
	}
}

func checkSecretsNotInEnv(v *verifier) {
	v.r.Add(AlarmSecretInEnv, "no secret in plain environment", secretsNotInEnv(v.conn, v.c), "checked every container's environment")
}

// checkAPI asks each slot's /api/ and /api/ready/: from here on its
// published address, or inside it on a remote host.
func checkAPI(v *verifier) {
	c, o, add := v.c, v.o, v.r.Add
	client := cmp.Or(o.HTTP, &http.Client{Timeout: 10 * time.Second})
	for _, sl := range c.Slots() {
		if o.Remote {
			add(AlarmAPIDown, "HEAD /api/ (inside "+sl.Name+")", ExecCheckIn(v.conn, c, sl.Name, http.MethodHead, "/api/", nil), "200")
			add(AlarmAPIDown, "GET /api/ready/ (inside "+sl.Name+")", ExecCheckIn(v.conn, c, sl.Name, http.MethodGet, "/api/ready/", ReadyOK), "200, database ok, migrations ok")
			continue
		}
		base, suffix := o.BaseURL, ""
		if base == "" || sl.ID == "b" {
			base = "http://" + sl.Addr.String()
		}
		if sl.ID == "b" {
			suffix = " on " + sl.Name
		}
		add(AlarmAPIDown, "HEAD /api/"+suffix, HTTPCheck(v.ctx, client, http.MethodHead, base+"/api/", c.Domain, nil), "200 on "+sl.Addr.String())
		add(AlarmAPIDown, "GET /api/ready/"+suffix, HTTPCheck(v.ctx, client, http.MethodGet, base+"/api/ready/", c.Domain, ReadyOK), "200, database ok, migrations ok")
	}
}

// checkProxyConfigs: the reverse proxy's configurations on this host list
// both slots.
func checkProxyConfigs(v *verifier) {
	if v.o.Remote {
		return
	}
	sl := v.c.Slots()
	for _, pc := range findProxyConfigs(v.c, v.o.ProxyConfigs) {
		v.r.Add(AlarmProxyUpstreams, "proxy upstreams in "+pc.path, pc.err, "lists both slots, "+sl[0].Addr.String()+" and "+sl[1].Addr.String())
	}
}

// checkPublicURL: with --public-url, the API through the proxy over HTTPS
// with a certificate that verifies.
func checkPublicURL(v *verifier) {
	if v.o.PublicURL == "" {
		return
	}
	pub := strings.TrimSuffix(v.o.PublicURL, "/")
	tlsClient := &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS12}}}
	var err error
	if !strings.HasPrefix(pub, "https://") {
		err = fmt.Errorf("%s is not an https:// URL", pub)
	}
	if err == nil {
		err = HTTPCheck(v.ctx, tlsClient, http.MethodHead, pub+"/api/", "", nil)
	}
	v.r.Add(AlarmPublicURL, "HEAD "+pub+"/api/ (TLS verified)", err, "200 over HTTPS with a valid certificate")
	if err == nil {
		v.r.Add(AlarmPublicURL, "GET "+pub+"/api/ready/", HTTPCheck(v.ctx, tlsClient, http.MethodGet, pub+"/api/ready/", "", ReadyOK), "200 through the proxy")
	}
}

// checkStanding: with Standing (isisctl verify), the throttle store.
func checkStanding(v *verifier) {
	if !v.o.Standing {
		return
	}
	_, states := v.containers()
	if detail, ok, err := checkThrottleStore(v.conn, v.c, states[v.c.Backend.Name]); ok {
		v.r.Add(AlarmThrottleFailClosed, "throttle store", err, detail)
	}
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

func shortErr(err error) string {
	s := err.Error()
	if i := strings.LastIndex(s, ": "); i >= 0 && len(s) > 120 {
		return s[i+2:]
	}
	return s
}

// ContainerCheck: the container (st, or the error inspecting it) runs and
// its health check, run once through Podman, passes.
func ContainerCheck(conn podman.Engine, st *podman.ContainerState, err error) error {
	if err := running(st, err); err != nil {
		return err
	}
	status, err := conn.HealthCheck(st.Name)
	if err != nil {
		return fmt.Errorf("health check could not run: %v", shortErr(err))
	}
	if status != "healthy" {
		return fmt.Errorf("health check: %s", status)
	}
	return nil
}

func running(st *podman.ContainerState, err error) error {
	switch {
	case err != nil:
		return err
	case !st.Exists:
		return fmt.Errorf("missing")
	case !st.Running:
		return fmt.Errorf("not running")
	}
	return nil
}

// slotHealthHTTP: the slot (st) runs and answers its health check's
// request, GET /api/health/, on its published address.
func slotHealthHTTP(ctx context.Context, client *http.Client, addr string, st *podman.ContainerState, err error) error {
	if err := running(st, err); err != nil {
		return err
	}
	if err := HTTPCheck(ctx, client, http.MethodGet, "http://"+addr+"/api/health/", "", nil); err != nil {
		return fmt.Errorf("health check: GET /api/health/ on %s: %v", addr, err)
	}
	return nil
}

// secretsNotInEnv checks no configured secret value, and no well-known
// secret variable, appears in any container's plain environment.
func secretsNotInEnv(conn podman.Engine, c *config.Config) error {
	values, _ := c.SecretValues()
	if pw, ok := values[config.DatabasePasswordName]; ok {
		for _, d := range config.DerivedSecrets { // the roles' passwords too
			values[d.Name] = config.DeriveKey(pw, d.Label)
		}
	}
	list, err := conn.List(podman.ListFilter{All: true})
	if err != nil {
		return err
	}
	// Every container's environment, inspected at once.
	all := make([]*podman.ContainerState, len(list))
	var wg sync.WaitGroup
	for i, lc := range list {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if data, err := conn.Inspect(lc.ID); err == nil && data.Exists {
				all[i] = data
			}
		}()
	}
	wg.Wait()
	var bad []string
	for _, data := range all {
		if data == nil {
			continue
		}
		for _, kv := range data.Env {
			k, v, _ := strings.Cut(kv, "=")
			leak := false
			if _, ok := config.SecretEnv[k]; ok {
				leak = v != ""
			}
			for _, s := range values {
				if len(s) >= 8 && strings.Contains(v, s) {
					leak = true
				}
			}
			if leak {
				bad = append(bad, data.Name+":"+k)
			}
		}
	}
	sort.Strings(bad)
	if len(bad) > 0 {
		return fmt.Errorf("secret in plain environment: %s", strings.Join(bad, ", "))
	}
	return nil
}

func ReadyOK(body []byte) error {
	var m map[string]string
	if err := json.Unmarshal(body, &m); err != nil {
		return fmt.Errorf("body is not the ready JSON: %.80s", body)
	}
	if m["database"] != "ok" || m["migrations"] != "ok" {
		return fmt.Errorf("database %s, migrations %s", m["database"], m["migrations"])
	}
	return nil
}

func HTTPCheck(ctx context.Context, client *http.Client, method, url, host string, body func([]byte) error) error {
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		return err
	}
	if host != "" {
		req.Host = host
	}
	res, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("%v", shortErr(err))
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(res.Body, 64<<10))
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d: %.120s", res.StatusCode, b)
	}
	if body != nil {
		return body(b)
	}
	return nil
}

// execCheck asks the backend to probe itself (`isis healthcheck`), for hosts
// whose loopback this machine cannot reach.
func execCheck(conn podman.Engine, c *config.Config, method, path string, body func([]byte) error) error {
	return ExecCheckIn(conn, c, c.Backend.Name, method, path, body)
}

// execCheckIn is execCheck in container name.
func ExecCheckIn(conn podman.Engine, c *config.Config, name, method, path string, body func([]byte) error) error {
	var out bytes.Buffer
	code, err := podman.Exec(conn, name, []string{"/isis", "healthcheck", "--method", method, "--host", c.Domain, "--body",
		"--url", fmt.Sprintf("http://127.0.0.1:%d%s", spec.BackendPort, path)}, &out)
	if err != nil {
		return err
	}
	if code != 0 {
		return fmt.Errorf("%s", strings.TrimSpace(out.String()))
	}
	if body != nil {
		return body(bytes.TrimSpace(out.Bytes()))
	}
	return nil
}

// restartLoopCount restarts, the latest within restartLoopWindow, make a
// restart loop: the container keeps dying and Podman keeps starting it.
const (
	restartLoopCount  = 3
	restartLoopWindow = 2 * time.Minute
)

// restartLoop fails for a container in a restart loop (its restart count
// climbing: several restarts, the latest just now, or down between two).
func restartLoop(st *podman.ContainerState, now time.Time) error {
	if st.RestartCount == 0 {
		return nil
	}
	if !st.Running {
		return fmt.Errorf("down after %d restart(s) by its restart policy: see isisctl logs", st.RestartCount)
	}
	if st.RestartCount >= restartLoopCount && now.Sub(st.StartTime) < restartLoopWindow {
		return fmt.Errorf("restart loop: restarted %d times, the last %s ago: see isisctl logs", st.RestartCount,
			now.Sub(st.StartTime).Round(time.Second))
	}
	return nil
}

func restartDetail(st *podman.ContainerState) string {
	if st.RestartCount == 0 {
		return "never restarted (policy " + cmp.Or(st.Restart, "none") + ")"
	}
	return fmt.Sprintf("restarted %d time(s) by its restart policy, up since %s", st.RestartCount, st.StartedAt)
}

type proxyConfig struct {
	path string
	err  error
}

// defaultProxyConfigs are where nginx and Caddy configurations usually are.
var defaultProxyConfigs = []string{"/etc/nginx/conf.d/*.conf", "/etc/nginx/sites-enabled/*", "/etc/caddy/Caddyfile", "/etc/caddy/*.caddy"}

// findProxyConfigs checks each reverse-proxy file that mentions the domain
// (explicit paths are checked whatever they mention) lists both slots.
func findProxyConfigs(c *config.Config, explicit []string) []proxyConfig {
	var out []proxyConfig
	paths := explicit
	if len(paths) == 0 {
		for _, g := range defaultProxyConfigs {
			m, _ := filepath.Glob(g)
			paths = append(paths, m...)
		}
	}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			if len(explicit) > 0 {
				out = append(out, proxyConfig{p, err})
			}
			continue
		}
		if len(explicit) == 0 && !strings.Contains(string(b), c.Domain) {
			continue
		}
		out = append(out, proxyConfig{p, checkUpstreams(c, string(b))})
	}
	return out
}

// checkUpstreams reports the slots a proxy configuration does not list.
func checkUpstreams(c *config.Config, conf string) error {
	var missing []string
	for _, sl := range c.Slots() {
		if !strings.Contains(conf, sl.Addr.String()) {
			missing = append(missing, sl.Name+" ("+sl.Addr.String()+")")
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("does not list %s: requests fail while a slot is replaced (use isisctl render's proxy/ files)", strings.Join(missing, ", "))
	}
	return nil
}
