package verify

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/isis-project/isis/ops/podman"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// ProbeRoutes are the route templates (the metrics' route label) that
// probes call: the health checks, verify, the proxies' checks.
var ProbeRoutes = map[string]bool{"/api": true, "/api/health": true, "/api/ready": true}

// ServedRequests counts the requests container name (a backend slot) has
// answered since it started, the probes' left out, from one scrape of its
// metrics inside the container (as FetchMetrics). A container without
// METRICS_ADDRESS is an error.
func ServedRequests(conn podman.Engine, name string, env []string) (float64, error) {
	addr := MetricsAddress(env)
	if addr == "" {
		return 0, errors.New("no METRICS_ADDRESS")
	}
	url, err := metricsURL(addr)
	if err != nil {
		return 0, err
	}
	var out bytes.Buffer
	code, err := podman.Exec(conn, name, []string{"/isis", "healthcheck", "--body", "--timeout", "10s", "--url", url}, &out)
	if err != nil {
		return 0, errors.New(shortErr(err))
	}
	if code != 0 {
		return 0, errors.New(strings.TrimSpace(out.String()))
	}
	return appRequests(&out)
}

// appRequests counts the requests of a scrape that are not probes.
func appRequests(r io.Reader) (float64, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		return 0, fmt.Errorf("metrics are not in the Prometheus text format: %w", err)
	}
	if fams["isis_build_info"] == nil {
		return 0, errors.New("no isis metrics in the answer")
	}
	var n float64
	for _, m := range fams["isis_http_requests_total"].GetMetric() {
		if !ProbeRoutes[label(m, "route")] {
			n += m.GetCounter().GetValue()
		}
	}
	return n, nil
}
