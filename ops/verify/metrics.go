package verify

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"net"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/isis-project/isis/ops/config"
	"github.com/isis-project/isis/ops/podman"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// MetricsSummary is the backend's key numbers, from one scrape of its
// Prometheus metrics (METRICS_ADDRESS), as `isisctl status` shows them.
// Rates and percentiles are over the process's life: one scrape has no
// window of its own.
type MetricsSummary struct {
	Address       string  `json:"address"`
	Version       string  `json:"version,omitempty"`
	UptimeSeconds float64 `json:"uptime_seconds"`
	Requests      float64 `json:"requests"`
	// RequestRate is requests a second since the process started.
	RequestRate float64 `json:"requests_per_second"`
	Errors5xx   float64 `json:"errors_5xx"`
	// P50Seconds and P99Seconds are estimated from the latency histogram
	// (linear within a bucket, as PromQL's histogram_quantile); -1 when
	// no request was counted.
	P50Seconds float64                 `json:"p50_seconds"`
	P99Seconds float64                 `json:"p99_seconds"`
	PoolInUse  float64                 `json:"pool_in_use"`
	PoolOpen   float64                 `json:"pool_open"`
	PoolMax    float64                 `json:"pool_max"`
	PoolWaits  float64                 `json:"pool_waits"`
	Caches     map[string]CacheSummary `json:"caches"`
	// ThrottleShared: the throttles count in PostgreSQL, whose failures
	// refuse throttled requests (ThrottleFailures since start; failing
	// while the last answer was one).
	ThrottleShared   bool    `json:"throttle_shared"`
	ThrottleFailures float64 `json:"throttle_store_failures"`
	ThrottleFailing  bool    `json:"throttle_store_failing"`
}

// CacheSummary is one cache's lookups since start.
type CacheSummary struct {
	Hits    float64 `json:"hits"`
	Misses  float64 `json:"misses"`
	Enabled bool    `json:"enabled"`
	// HitRatio is hits/(hits+misses), -1 before any lookup.
	HitRatio float64 `json:"hit_ratio"`
}

// MetricsAddress is the METRICS_ADDRESS of a container's environment
// ("" when metrics are off).
func MetricsAddress(env []string) string {
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "METRICS_ADDRESS="); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// metricsURL is where the metrics answer from inside the container: a
// listener on every interface answers on loopback too.
func metricsURL(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("METRICS_ADDRESS %q is not host:port", addr)
	}
	switch host {
	case "", "0.0.0.0", "::":
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port) + "/metrics", nil
}

// FetchMetrics scrapes the backend's metrics from inside its container
// (`isis healthcheck --body`, as verify does for remote hosts): the
// metrics listener is published nowhere, and is often on the container's
// loopback. addr is the container's METRICS_ADDRESS.
func FetchMetrics(conn podman.Engine, c *config.Config, addr string, now time.Time) (*MetricsSummary, error) {
	url, err := metricsURL(addr)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	code, err := podman.Exec(conn, c.Backend.Name, []string{"/isis", "healthcheck", "--body", "--timeout", "10s", "--url", url}, &out)
	if err != nil {
		return nil, err
	}
	if code != 0 {
		msg := strings.TrimSpace(out.String())
		return nil, fmt.Errorf("%s", msg[strings.LastIndexByte(msg, '\n')+1:])
	}
	s, err := ParseMetrics(&out, now)
	if err != nil {
		return nil, err
	}
	s.Address = addr
	return s, nil
}

// ParseMetrics summarizes a scrape in the Prometheus text format; now is
// the time of the scrape (for the rate since start).
func ParseMetrics(r io.Reader, now time.Time) (*MetricsSummary, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		return nil, fmt.Errorf("metrics are not in the Prometheus text format: %w", err)
	}
	if fams["isis_http_requests_total"] == nil && fams["isis_build_info"] == nil {
		return nil, fmt.Errorf("no isis metrics in the answer (is METRICS_ADDRESS another program's port?)")
	}
	s := &MetricsSummary{Caches: map[string]CacheSummary{}}
	for _, m := range fams["isis_build_info"].GetMetric() {
		s.Version = label(m, "version")
	}
	if start := sample(fams, "process_start_time_seconds", nil); start > 0 {
		s.UptimeSeconds = max(0, float64(now.UnixNano())/1e9-start)
	}
	for _, m := range fams["isis_http_requests_total"].GetMetric() {
		v := m.GetCounter().GetValue()
		s.Requests += v
		if strings.HasPrefix(label(m, "status"), "5") {
			s.Errors5xx += v
		}
	}
	if s.UptimeSeconds > 0 {
		s.RequestRate = s.Requests / s.UptimeSeconds
	}
	bounds, counts := mergeBuckets(fams["isis_http_request_duration_seconds"])
	s.P50Seconds, s.P99Seconds = quantile(0.5, bounds, counts), quantile(0.99, bounds, counts)
	db := map[string]string{"db_name": "isis"}
	s.PoolInUse = sample(fams, "go_sql_in_use_connections", db)
	s.PoolOpen = sample(fams, "go_sql_open_connections", db)
	s.PoolMax = sample(fams, "go_sql_max_open_connections", db)
	s.PoolWaits = sample(fams, "go_sql_wait_count_total", db)
	if fams["isis_throttle_store_failing"] != nil {
		s.ThrottleShared = true
		s.ThrottleFailures = sample(fams, "isis_throttle_store_failures_total", nil)
		s.ThrottleFailing = sample(fams, "isis_throttle_store_failing", nil) == 1
	}
	for _, m := range fams["isis_cache_hits_total"].GetMetric() {
		name := label(m, "cache")
		cs := CacheSummary{Hits: m.GetCounter().GetValue(), HitRatio: -1}
		cs.Misses = sample(fams, "isis_cache_misses_total", map[string]string{"cache": name})
		cs.Enabled = sample(fams, "isis_cache_enabled", map[string]string{"cache": name}) == 1
		if cs.Hits+cs.Misses > 0 {
			cs.HitRatio = cs.Hits / (cs.Hits + cs.Misses)
		}
		s.Caches[name] = cs
	}
	return s, nil
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// sample is the value of the first series of name whose labels include
// want (0 when there is none).
func sample(fams map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
next:
	for _, m := range fams[name].GetMetric() {
		for k, v := range want {
			if label(m, k) != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Untyped != nil:
			return m.Untyped.GetValue()
		}
	}
	return 0
}

// mergeBuckets adds up every series of a histogram family: the upper
// bounds (the last +Inf) and their cumulative counts.
func mergeBuckets(fam *dto.MetricFamily) (bounds, counts []float64) {
	sum := map[float64]float64{}
	for _, m := range fam.GetMetric() {
		h := m.GetHistogram()
		for _, b := range h.GetBucket() {
			sum[b.GetUpperBound()] += float64(b.GetCumulativeCount())
		}
		if len(h.GetBucket()) == 0 || !math.IsInf(h.GetBucket()[len(h.GetBucket())-1].GetUpperBound(), 1) {
			sum[math.Inf(1)] += float64(h.GetSampleCount())
		}
	}
	for b := range sum {
		bounds = append(bounds, b)
	}
	sort.Float64s(bounds)
	for _, b := range bounds {
		counts = append(counts, sum[b])
	}
	return bounds, counts
}

// quantile estimates the q-quantile from cumulative buckets as PromQL's
// histogram_quantile does: linear within the bucket the rank falls in
// (from 0 for the first), the highest finite bound when it falls in +Inf;
// -1 with no observation.
func quantile(q float64, bounds, counts []float64) float64 {
	if len(counts) == 0 || counts[len(counts)-1] == 0 {
		return -1
	}
	rank := q * counts[len(counts)-1]
	i := sort.SearchFloat64s(counts, rank) // first bucket holding the rank
	if i >= len(bounds) {
		i = len(bounds) - 1
	}
	if math.IsInf(bounds[i], 1) {
		if i == 0 {
			return -1
		}
		return bounds[i-1]
	}
	lo, below := 0.0, 0.0
	if i > 0 {
		lo, below = bounds[i-1], counts[i-1]
	}
	in := counts[i] - below
	if in <= 0 {
		return bounds[i]
	}
	return lo + (bounds[i]-lo)*(rank-below)/in
}

// WriteMetricsSummary prints the summary as `isisctl status` shows it.
func WriteMetricsSummary(w io.Writer, s *MetricsSummary) {
	head := "Backend metrics (METRICS_ADDRESS " + s.Address
	if s.Version != "" {
		head += ", isis " + s.Version
	}
	if s.UptimeSeconds > 0 {
		head += ", up " + (time.Duration(s.UptimeSeconds) * time.Second).String()
	}
	fmt.Fprintln(w, head+"):")
	fmt.Fprintf(w, "  requests  %s total, %s/s since start, %s 5xx\n", count(s.Requests), strconv.FormatFloat(s.RequestRate, 'f', 1, 64), count(s.Errors5xx))
	if s.P99Seconds < 0 {
		fmt.Fprintln(w, "  latency   no request yet")
	} else {
		fmt.Fprintf(w, "  latency   p50 ~%s, p99 ~%s (from the histogram, since start)\n", ms(s.P50Seconds), ms(s.P99Seconds))
	}
	fmt.Fprintf(w, "  pool      %s in use, %s open of %s; %s waited for a connection\n", count(s.PoolInUse), count(s.PoolOpen), count(s.PoolMax), count(s.PoolWaits))
	var names []string
	for n := range s.Caches {
		names = append(names, n)
	}
	sort.Strings(names)
	var parts []string
	for _, n := range names {
		cs := s.Caches[n]
		p := n + " "
		if cs.HitRatio < 0 {
			p += "no lookups"
		} else {
			p += strconv.FormatFloat(100*cs.HitRatio, 'f', 1, 64) + "% hits (" + count(cs.Hits) + " of " + count(cs.Hits+cs.Misses) + ")"
		}
		if !cs.Enabled {
			p += ", off (no change notifications)"
		}
		parts = append(parts, p)
	}
	if len(parts) > 0 {
		fmt.Fprintf(w, "  caches    %s\n", strings.Join(parts, "; "))
	}
}

func count(v float64) string { return strconv.FormatFloat(v, 'f', 0, 64) }

func ms(sec float64) string {
	d := sec * 1000
	switch {
	case d >= 100:
		return strconv.FormatFloat(d, 'f', 0, 64) + " ms"
	case d >= 10:
		return strconv.FormatFloat(d, 'f', 1, 64) + " ms"
	}
	return strconv.FormatFloat(d, 'f', 2, 64) + " ms"
}
