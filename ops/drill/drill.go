// Package drill is isisctl drill: the backend's and then PostgreSQL's
// process killed as a crash would, and the way back timed through the
// proxy (docs/operations.md, "drill").
package drill

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/isis-project/isis/ops/audit"
	"github.com/isis-project/isis/ops/config"
	"github.com/isis-project/isis/ops/host"
	"github.com/isis-project/isis/ops/image"
	"github.com/isis-project/isis/ops/podman"
	"github.com/isis-project/isis/ops/spec"
	"github.com/isis-project/isis/ops/verify"
)

// "As a crash would" rules out Podman's kill endpoint (what `podman kill`
// calls): libpod marks a container it kills as stopped by the user, and the
// restart policy skips such a container. Nor can isisctl exec into the
// backend (its image is FROM scratch), and a process inside the container's
// own process namespace cannot SIGKILL that namespace's init. So a one-off
// helper of the PostgreSQL image, in the host's process namespace with only
// CAP_KILL and no network, sends SIGKILL to the container's main process
// (its pid from inspect), after checking that process is still that
// container's. It is all Podman API calls: it works over ssh:// too.

// DefaultBound is how long each crash may take to recover by default.
const DefaultBound = 30 * time.Second

// maxBound keeps a mistyped --bound from leaving a drill waiting for
// hours.
const maxBound = 10 * time.Minute

// Options tune the drill.
type Options struct {
	// PublicURL is where the drill sends its requests: the reverse proxy in
	// front of both slots (default https://<domain>). An http:// URL must be
	// a loopback address (a proxy on this machine without TLS); its requests
	// carry Host: <domain>.
	PublicURL string
	// Bound is how long each crash may take, from the kill until the killed
	// container is back, healthy, and /api/ready/ answers 200 through
	// PublicURL (default DefaultBound).
	Bound time.Duration
	// Yes runs the drill on a deployment that serves traffic.
	Yes bool
	// Progress gets one line per phase.
	Progress func(string)
	// HTTP overrides the client (tests).
	HTTP *http.Client
}

// Phase is one crash as it went. Durations are from the kill.
type Phase struct {
	Name      string `json:"name"` // backend or postgres
	Container string `json:"container"`
	PID       int    `json:"pid"`
	// RestartedBy is what brought it back: Podman's restart policy, or
	// systemd's unit (quadlet installs).
	RestartedBy string `json:"restarted_by"`
	// Restarted: the container runs again; Healthy: its own health check
	// passes; Ready: /api/ready/ answers 200 through the proxy, after the
	// restart; Recovered: the latest of the three.
	Restarted string `json:"restarted"`
	Healthy   string `json:"healthy"`
	Ready     string `json:"ready"`
	Recovered string `json:"recovered"`
	// FailedProbes are the /api/ready/ probes through the proxy that did
	// not answer 200 (what a client saw), over Outage.
	FailedProbes int    `json:"failed_probes"`
	Probes       int    `json:"probes"`
	Outage       string `json:"outage"`
	// WriteKept: the write acknowledged before the kill reads back after.
	WriteKept bool `json:"write_kept"`

	recovered time.Duration
}

// Result is the whole drill.
type Result struct {
	OK       bool     `json:"ok"`
	URL      string   `json:"url"`
	Bound    string   `json:"bound"`
	Phases   []Phase  `json:"phases"`
	Failures []string `json:"failures,omitempty"`
	// Cleanup says what became of the drill's own test data.
	Cleanup string `json:"cleanup"`
}

// FailedError: the drill ran and the deployment failed it (a crash
// took longer than the bound, or an acknowledged write was lost): exit 3.
type FailedError struct{ Failures []string }

func (e *FailedError) Error() string {
	return "drill failed: " + strings.Join(e.Failures, "; ")
}

// RefusedError: a drill without --yes on a deployment that serves traffic
// (exit 2); nothing was touched.
type RefusedError struct{ Why string }

func (e *RefusedError) Error() string {
	return "this deployment serves traffic (" + e.Why + ") and the drill kills its backend and its database; run again with --yes to do it"
}

// brief is an error's message without the wrapping of a long one.
func brief(err error) string {
	s := err.Error()
	if i := strings.LastIndex(s, ": "); i >= 0 && len(s) > 120 {
		return s[i+2:]
	}
	return s
}

// drillTarget is where the drill's requests go.
type drillTarget struct {
	base string // scheme://host[:port], no trailing slash
	host string // the Host header ("" for the URL's own)
}

// drillURL checks --public-url (a *config.ConfigError naming the flag); domain
// is the Host of a loopback http:// proxy's requests.
func drillURL(domain, raw string) (drillTarget, error) {
	if raw == "" {
		return drillTarget{base: "https://" + domain}, nil
	}
	bad := func(msg string) error {
		return &config.Error{File: "--public-url", Msg: fmt.Sprintf("%q %s", raw, msg)}
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || strings.Trim(u.Path, "/") != "" {
		return drillTarget{}, bad("is not a base URL like https://api.example.com")
	}
	switch u.Scheme {
	case "https":
		return drillTarget{base: "https://" + u.Host}, nil
	case "http":
		h := u.Hostname()
		if ip := net.ParseIP(h); h != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return drillTarget{}, bad("is plain HTTP to another machine: the drill's password would cross the network in clear; use https://")
		}
		return drillTarget{base: "http://" + u.Host, host: domain}, nil
	}
	return drillTarget{}, bad("is not an https:// (or loopback http://) URL")
}

// CheckOptions checks the flags (a *config.ConfigError naming the bad one),
// before the configuration is read; a zero Bound is the default.
func CheckOptions(o Options) error {
	_, err := checkOptions("", &o)
	return err
}

func checkOptions(domain string, o *Options) (drillTarget, error) {
	if o.Bound == 0 {
		o.Bound = DefaultBound
	}
	if o.Bound < 0 || o.Bound > maxBound {
		return drillTarget{}, &config.Error{File: "--bound", Msg: fmt.Sprintf("%s is not between 0 and %s", o.Bound, maxBound)}
	}
	return drillURL(domain, o.PublicURL)
}

// restartedBy says what restarts container st after a crash, or an error
// when nothing would.
func restartedBy(st *podman.ContainerState) (string, error) {
	if unit := st.Labels[host.LabelSystemdUnit]; unit != "" {
		return "systemd (" + unit + ")", nil
	}
	switch st.Restart {
	case "always", "unless-stopped", "on-failure":
		return "Podman's restart policy (" + st.Restart + ")", nil
	}
	return "", fmt.Errorf("container %s has no restart policy and no systemd unit: a crash would leave it down (isisctl up gives it restart=always)", st.Name)
}

// servesTraffic says why the deployment counts as serving traffic ("" when
// it does not): a running slot whose metrics count requests other than the
// probes' since it started, or whose metrics cannot be read.
func servesTraffic(conn podman.Engine, c *config.Config) string {
	for _, sl := range c.Slots() {
		st, err := conn.Inspect(sl.Name)
		if err != nil {
			return fmt.Sprintf("%s cannot be inspected (%v)", sl.Name, brief(err))
		}
		if !st.Exists || !st.Running {
			continue
		}
		n, err := verify.ServedRequests(conn, sl.Name, st.Env)
		if err != nil {
			return fmt.Sprintf("%s's metrics cannot be read (%v), so the drill cannot tell whether it serves traffic", sl.Name, err)
		}
		if n > 0 {
			return fmt.Sprintf("%s has answered %.0f request(s) besides health checks since it started", sl.Name, n)
		}
	}
	return ""
}

// drill is one run.
type drill struct {
	ctx    context.Context
	conn   podman.Engine
	c      *config.Config
	o      Options
	t      drillTarget
	client *http.Client
	run    string // this run's id, in its test data
	email  string
	pass   string
	token  string
	killer string // the kill helper's image
}

// Drill runs the crash drill: it checks the deployment can take it, takes
// the deploy lock, registers a test user through the proxy, then for the
// backend (slot A) and PostgreSQL in turn: an acknowledged write, SIGKILL to
// the container's main process, and the time until the container runs
// again, passes its health check and /api/ready/ answers 200 through the
// proxy; then the write must read back. The test user is deleted at the end
// and the drill is recorded in the audit trail. A crash slower than the
// bound, or a lost write, is a *FailedError.
func Run(ctx context.Context, conn podman.Engine, c *config.Config, o Options) (*Result, error) {
	if err := c.NeedDomain(); err != nil {
		return nil, err
	}
	t, err := checkOptions(c.Domain, &o)
	if err != nil {
		return nil, err
	}
	if o.Progress == nil {
		o.Progress = func(string) {}
	}
	// What would bring each one back, before anything is touched.
	var targets []*podman.ContainerState
	for _, name := range []string{c.Backend.Name, c.Postgres.Name} {
		st, err := conn.Inspect(name)
		if err != nil {
			return nil, err
		}
		if !st.Exists || !st.Running || st.PID <= 0 {
			return nil, fmt.Errorf("container %s is not running: the drill needs a deployment that serves (isisctl deploy)", name)
		}
		if _, err := restartedBy(st); err != nil {
			return nil, err
		}
		targets = append(targets, st)
	}
	if !o.Yes {
		if why := servesTraffic(conn, c); why != "" {
			return nil, &RefusedError{Why: why}
		}
	}
	lock, err := audit.AcquireLock(conn)
	if err != nil {
		return nil, err
	}
	defer lock.Release()

	start := time.Now()
	d := &drill{ctx: ctx, conn: conn, c: c, o: o, t: t, client: o.HTTP, killer: targets[1].ImageID,
		run: start.UTC().Format("20060102T150405") + "-" + host.RandomHex(3)}
	if d.client == nil {
		d.client = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS12}}}
	}
	r := &Result{URL: t.base, Bound: o.Bound.String()}
	err = d.runPhases(targets, r)
	r.Cleanup = d.cleanup()
	o.Progress("cleanup: " + r.Cleanup)
	var fe *FailedError
	switch {
	case err == nil:
		r.OK = true
	case errors.As(err, &fe):
		r.Failures = fe.Failures
	}
	res, detail := "ok", drillDetail(r)
	if err != nil {
		res, detail = "failed", detail+"; "+err.Error()
	}
	img, _ := image.Current(conn.WithoutCancel(), c)
	_ = audit.Append(conn.WithoutCancel(), audit.Entry{Time: start.UTC(), User: audit.WhoAmI(), Action: "drill", Image: img,
		Result: res, Duration: time.Since(start).Round(time.Millisecond).String(), Detail: detail})
	return r, err
}

// drillDetail is the audit trail's summary of the figures.
func drillDetail(r *Result) string {
	parts := []string{"bound " + r.Bound}
	for _, p := range r.Phases {
		kept := "write kept"
		if !p.WriteKept {
			kept = "write LOST"
		}
		parts = append(parts, fmt.Sprintf("%s %s: restarted %s, healthy %s, ready %s, recovered %s, %d/%d probes failed, %s",
			p.Name, p.Container, p.Restarted, p.Healthy, p.Ready, p.Recovered, p.FailedProbes, p.Probes, kept))
	}
	return strings.Join(parts, "; ")
}

// runPhases is the drill between the lock and the clean-up.
func (d *drill) runPhases(targets []*podman.ContainerState, r *Result) error {
	if err := d.setup(); err != nil {
		return err
	}
	var failures []string
	for i, name := range []string{"backend", "postgres"} {
		p, err := d.crash(name, targets[i])
		if p != nil {
			r.Phases = append(r.Phases, *p)
		}
		if err != nil {
			return err
		}
		line := fmt.Sprintf("%s: killed %s (pid %d); restarted by %s in %s, healthy in %s, /api/ready/ 200 through the proxy in %s; %d of %d probes failed over %s",
			name, p.Container, p.PID, p.RestartedBy, p.Restarted, p.Healthy, p.Ready, p.FailedProbes, p.Probes, p.Outage)
		if p.WriteKept {
			line += "; the acknowledged write is there"
		} else {
			line += "; the acknowledged write is LOST"
			failures = append(failures, fmt.Sprintf("%s: a write acknowledged before the crash is gone", name))
		}
		if p.recovered > d.o.Bound {
			failures = append(failures, fmt.Sprintf("%s recovered in %s, past the bound of %s", name, p.Recovered, d.o.Bound))
		}
		d.o.Progress(line)
		if i == 0 {
			// Give the backend's restart a moment to settle before the
			// database goes (as a second crash would come later).
			time.Sleep(time.Second)
		}
	}
	if len(failures) > 0 {
		return &FailedError{Failures: failures}
	}
	return nil
}

// request sends one request through the proxy and returns the status and
// body (status 0 when nothing came back).
func (d *drill) request(method, path string, body any, timeout time.Duration) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(d.ctx, timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, d.t.base+path, rd)
	if err != nil {
		return 0, nil, err
	}
	if d.t.host != "" {
		req.Host = d.t.host
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if d.token != "" {
		req.Header.Set("Authorization", "Bearer "+d.token)
	}
	res, err := d.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(res.Body, 64<<10))
	return res.StatusCode, b, nil
}

// setup checks the API is ready and registers this run's test user.
func (d *drill) setup() error {
	start := time.Now()
	status, body, err := d.request(http.MethodGet, "/api/ready/", nil, 10*time.Second)
	if err == nil && status == http.StatusOK {
		err = verify.ReadyOK(body)
	} else if err == nil {
		err = fmt.Errorf("status %d: %.120s", status, body)
	}
	if err != nil {
		return fmt.Errorf("GET %s/api/ready/ before the drill: %v", d.t.base, brief(err))
	}
	// An address of the reserved .invalid domain, with this run's id: no
	// mail goes anywhere, and the clean-up deletes exactly this user.
	d.email = "isisctl-drill-" + strings.ToLower(d.run) + "@drill.invalid"
	d.pass = "Drill-" + host.RandomHex(12)
	status, body, err = d.request(http.MethodPost, "/api/auth/register/",
		map[string]string{"email": d.email, "password": d.pass, "first_name": "isisctl", "last_name": "drill " + d.run}, 10*time.Second)
	if err != nil || status != http.StatusCreated {
		return fmt.Errorf("register the drill's test user through %s: %s", d.t.base, answer(status, body, err))
	}
	status, body, err = d.request(http.MethodPost, "/api/token/", map[string]string{"email": d.email, "password": d.pass}, 10*time.Second)
	var tok struct{ Access string }
	if err == nil && status == http.StatusOK {
		err = json.Unmarshal(body, &tok)
	}
	if err != nil || status != http.StatusOK || tok.Access == "" {
		return fmt.Errorf("sign the drill's test user in: %s", answer(status, body, err))
	}
	d.token = tok.Access
	d.o.Progress(fmt.Sprintf("setup: %s ready; test user %s registered (%s)", d.t.base, d.email, since(start)))
	return nil
}

func answer(status int, body []byte, err error) string {
	if err != nil {
		return brief(err)
	}
	return fmt.Sprintf("status %d: %.160s", status, body)
}

// since formats the time since t as the drill prints it.
func since(t time.Time) string { return fmtDur(time.Since(t)) }

func fmtDur(d time.Duration) string { return d.Round(10 * time.Millisecond).String() }

// crash runs one phase on container st.
func (d *drill) crash(name string, st *podman.ContainerState) (*Phase, error) {
	by, _ := restartedBy(st)
	p := &Phase{Name: name, Container: st.Name, RestartedBy: by}
	marker := fmt.Sprintf("isisctl drill %s: written before the %s crash", d.run, name)
	status, body, err := d.request(http.MethodPatch, "/api/profiles/me/", map[string]string{"bio": marker}, 10*time.Second)
	if err != nil || status != http.StatusOK {
		return nil, fmt.Errorf("%s: the write before the crash was not acknowledged: %s", name, answer(status, body, err))
	}
	// The state now: the pid to kill, and what "started again" means.
	before, err := d.conn.Inspect(st.Name)
	if err != nil {
		return nil, err
	}
	if !before.Exists || !before.Running || before.PID <= 0 {
		return nil, fmt.Errorf("%s: container %s is not running", name, st.Name)
	}
	p.PID = before.PID
	killedAt, err := d.kill(before)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	d.watch(p, before, killedAt)
	if p.recovered < 0 {
		return p, &FailedError{Failures: []string{fmt.Sprintf("%s did not recover within %s (restarted %s, healthy %s, ready %s)",
			name, d.deadline(), p.Restarted, p.Healthy, p.Ready)}}
	}
	kept, err := d.readBack(marker)
	if err != nil {
		return p, fmt.Errorf("%s: read the write back after the crash: %w", name, err)
	}
	p.WriteKept = kept
	return p, nil
}

// deadline is how long the drill waits for a crash to recover: twice the
// bound (at least 10 s more), so a slow recovery still gets its figure.
func (d *drill) deadline() time.Duration { return max(2*d.o.Bound, d.o.Bound+10*time.Second) }

// killScript runs in the helper: $1 is the pid, $2 the container's ID,
// which the process's cgroup names (Podman's cgroup for the container is
// libpod-ID, or libpod-payload-ID under a quadlet unit): a pid taken by
// another process since the inspect is never killed.
const killScript = `[ -r "/proc/$1/cgroup" ] || { echo "process $1 is gone"; exit 3; }
grep -q "$2" "/proc/$1/cgroup" || { echo "process $1 is not in container $2's cgroup ($(tail -n 1 "/proc/$1/cgroup"))"; exit 4; }
kill -KILL "$1"`

// kill sends SIGKILL to container st's main process through a one-off
// helper in the host's process namespace, and returns when it was sent.
func (d *drill) kill(st *podman.ContainerState) (time.Time, error) {
	spec := &podman.ContainerSpec{
		Name:    st.Name + "-drill-" + host.RandomHex(3),
		Image:   d.killer,
		HostPID: true, NoNetwork: true,
		User:     "0:0",
		ReadOnly: true, NoNewPrivileges: true,
		DropCaps:   []string{"ALL"},
		AddCaps:    []string{"KILL"},
		Entrypoint: []string{"sh", "-c", killScript, "sh"},
		Command:    []string{fmt.Sprint(st.PID), st.ID},
		Labels:     map[string]string{spec.LabelManaged: "true", spec.LabelRole: "job"},
	}
	_ = d.conn.Remove(spec.Name, 0)
	if err := d.conn.Create(spec); err != nil {
		return time.Time{}, fmt.Errorf("create the kill helper: %w", err)
	}
	defer d.conn.WithoutCancel().Remove(spec.Name, 0)
	if err := d.conn.Start(spec.Name); err != nil {
		return time.Time{}, fmt.Errorf("start the kill helper: %w", err)
	}
	// Start returns once the helper runs; its kill follows within
	// milliseconds.
	killedAt := time.Now()
	code, err := d.conn.Wait(spec.Name)
	if err != nil {
		return time.Time{}, fmt.Errorf("wait for the kill helper: %w", err)
	}
	if code != 0 {
		lines := make(chan string, 100)
		go func() { _ = d.conn.Logs(spec.Name, podman.LogOptions{}, lines, lines); close(lines) }()
		var msg []string
		for l := range lines {
			if l = strings.TrimSpace(l); l != "" {
				msg = append(msg, l)
			}
		}
		return time.Time{}, fmt.Errorf("SIGKILL to %s (pid %d) failed: exit %d: %s", st.Name, st.PID, code, strings.Join(msg, " | "))
	}
	return killedAt, nil
}

// watch waits for the crashed container to run again (a new start of the
// same container under Podman's restart policy, or a new container under
// systemd's), for its health check to pass and for /api/ready/ to answer
// 200 through the proxy, each polled on its own, and fills in p.
func (d *drill) watch(p *Phase, before *podman.ContainerState, killedAt time.Time) {
	deadline := killedAt.Add(d.deadline())
	var mu sync.Mutex
	var restarted, healthy, ready time.Duration // 0: not yet
	var firstFail, lastFail time.Duration = -1, -1
	done := func() bool {
		mu.Lock()
		defer mu.Unlock()
		return restarted > 0 && healthy > 0 && ready > 0
	}
	pause := func(wait time.Duration) bool { // false when it is time to stop
		if done() || time.Now().After(deadline) || d.ctx.Err() != nil {
			return false
		}
		time.Sleep(wait)
		return true
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { // the container: restarted, then healthy
		defer wg.Done()
		for ok := true; ok; ok = pause(50 * time.Millisecond) {
			st, err := d.conn.Inspect(before.Name)
			if err != nil || !st.Exists || !st.Running || (st.ID == before.ID && !st.StartTime.After(before.StartTime)) {
				continue
			}
			mu.Lock()
			restarted = time.Since(killedAt)
			mu.Unlock()
			break
		}
		for ok := true; ok; ok = pause(100 * time.Millisecond) {
			if s, err := d.conn.HealthCheck(before.Name); err == nil && s == "healthy" {
				mu.Lock()
				healthy = time.Since(killedAt)
				mu.Unlock()
				return
			}
		}
	}()
	go func() { // the API through the proxy
		defer wg.Done()
		for ok := true; ok; ok = pause(100 * time.Millisecond) {
			status, body, err := d.request(http.MethodGet, "/api/ready/", nil, 2*time.Second)
			at := time.Since(killedAt)
			good := err == nil && status == http.StatusOK && verify.ReadyOK(body) == nil
			mu.Lock()
			p.Probes++
			if !good {
				p.FailedProbes++
				if firstFail < 0 {
					firstFail = at
				}
				lastFail = at
			} else if restarted > 0 && ready == 0 {
				ready = at
			}
			mu.Unlock()
		}
	}()
	wg.Wait()
	show := func(v time.Duration) string {
		if v == 0 {
			return "never"
		}
		return fmtDur(v)
	}
	p.Restarted, p.Healthy, p.Ready = show(restarted), show(healthy), show(ready)
	p.Outage = "0s"
	if firstFail >= 0 {
		p.Outage = fmtDur(lastFail - firstFail)
	}
	p.recovered = -1
	if restarted > 0 && healthy > 0 && ready > 0 {
		p.recovered = max(restarted, healthy, ready)
		p.Recovered = fmtDur(p.recovered)
	} else {
		p.Recovered = "never"
	}
}

// readBack reports whether the profile holds marker (the write acknowledged
// before the crash). A slot whose pool still holds connections the database's
// restart broke answers 503 for a moment: only a 200 counts, for 10 s.
func (d *drill) readBack(marker string) (bool, error) {
	var status int
	var body []byte
	var err error
	for try := 0; try < 50 && d.ctx.Err() == nil; try++ {
		status, body, err = d.request(http.MethodGet, "/api/profiles/me/", nil, 5*time.Second)
		if err == nil && status == http.StatusOK {
			var p struct{ Bio string }
			if err := json.Unmarshal(body, &p); err != nil {
				return false, fmt.Errorf("GET /api/profiles/me/: %v", err)
			}
			return p.Bio == marker, nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return false, errors.New("GET /api/profiles/me/: " + answer(status, body, err))
}

// cleanup deletes this run's test user (its profile and tokens go with it)
// in a helper as the owner role, and says what became of it.
func (d *drill) cleanup() string {
	if d.email == "" {
		return "no test data was written"
	}
	h, err := host.StartPGHelper(d.conn.WithoutCancel(), d.c, "drill")
	if err == nil {
		defer h.Remove()
		var out string
		out, err = h.PsqlOwner(d.c.Postgres.Database,
			"WITH d AS (DELETE FROM users WHERE email = "+host.QuoteLiteral(d.email)+" RETURNING 1) SELECT count(*) FROM d")
		if err == nil {
			return fmt.Sprintf("test user %s deleted (%s row)", d.email, strings.TrimSpace(out))
		}
	}
	return fmt.Sprintf("test user %s NOT deleted (%v): delete it with DELETE FROM users WHERE email = '%s'", d.email, brief(err), d.email)
}
