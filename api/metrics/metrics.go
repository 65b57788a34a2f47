// Package metrics exposes the server's numbers to Prometheus (the official
// client_golang): requests by route template, method and status with their
// latency, the database pool, the caches, the throttle tables and the
// build. The server counts in plain atomics (see apihttp.RequestSeries);
// this package reads them only when scraped.
package metrics

import (
	"context"
	"log/slog"
	"net/http"
	"runtime"
	"strconv"
	"time"

	"github.com/isis-project/isis/api"
	apihttp "github.com/isis-project/isis/api/http"
	"github.com/isis-project/isis/api/postgres"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metric names (docs/server.md, Metrics). The pool's are client_golang's
// go_sql_* with db_name="isis".
const (
	RequestsTotal   = "isis_http_requests_total"
	RequestDuration = "isis_http_request_duration_seconds"
	CacheHits       = "isis_cache_hits_total"
	CacheMisses     = "isis_cache_misses_total"
	CacheEntries    = "isis_cache_entries"
	CacheEnabled    = "isis_cache_enabled"
	ThrottleKeys    = "isis_throttle_keys"
	// ThrottleStoreFailures and ThrottleStoreFailing: the shared throttle
	// store's failures, each a request refused with 503 (fail closed).
	ThrottleStoreFailures = "isis_throttle_store_failures_total"
	ThrottleStoreFailing  = "isis_throttle_store_failing"
	BuildInfo             = "isis_build_info"
)

// Sources are what the metrics read.
type Sources struct {
	Server *apihttp.Server
	DB     *postgres.DB
	// Throttles is the shared throttle store (nil: the throttles count in
	// memory, in Server).
	Throttles *postgres.Throttles
	Logger    *slog.Logger
}

// NewRegistry registers every isis metric, the Go runtime's and the
// process's.
func NewRegistry(src Sources) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewDBStatsCollector(src.DB.DB.DB, "isis"),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        BuildInfo,
			Help:        "Always 1: the isis version and the Go version it was built with.",
			ConstLabels: prometheus.Labels{"version": api.Version, "goversion": runtime.Version()},
		}, func() float64 { return 1 }),
		newCollector(src),
	)
	return reg
}

// Handler serves reg in the Prometheus text format (or OpenMetrics, when
// the scraper asks). A failing part (the throttle table unreadable) is
// logged and left out; the rest is served.
func Handler(reg *prometheus.Registry, logger *slog.Logger) http.Handler {
	var errLog promhttp.Logger
	if logger != nil {
		errLog = slog.NewLogLogger(logger.Handler(), slog.LevelWarn)
	}
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog: errLog, ErrorHandling: promhttp.ContinueOnError,
		MaxRequestsInFlight: 4, Timeout: 10 * time.Second,
	})
}

type collector struct {
	src                                          Sources
	requests, duration                           *prometheus.Desc
	hits, misses, entries, enabled, throttleKeys *prometheus.Desc
	storeFailures, storeFailing                  *prometheus.Desc
	buckets                                      []float64
}

func newCollector(src Sources) *collector {
	c := &collector{src: src,
		requests: prometheus.NewDesc(RequestsTotal, "Requests answered, by route template (unmatched: no route), method and status.",
			[]string{"route", "method", "status"}, nil),
		duration: prometheus.NewDesc(RequestDuration, "Time from the request's arrival in the server to its answer, by route template, method and status.",
			[]string{"route", "method", "status"}, nil),
		hits:    prometheus.NewDesc(CacheHits, "Lookups the cache answered (geo: geography answers; user: user rows for authentication).", []string{"cache"}, nil),
		misses:  prometheus.NewDesc(CacheMisses, "Lookups that went to the database, the cache being off included.", []string{"cache"}, nil),
		entries: prometheus.NewDesc(CacheEntries, "Entries the cache holds.", []string{"cache"}, nil),
		enabled: prometheus.NewDesc(CacheEnabled, "1 while the cache serves (PostgreSQL change notifications flow), else 0.", []string{"cache"}, nil),
		throttleKeys: prometheus.NewDesc(ThrottleKeys, "Clients (or users) each throttle table remembers, by throttle scope and store (memory or postgres).",
			[]string{"scope", "store"}, nil),
		storeFailures: prometheus.NewDesc(ThrottleStoreFailures, "Throttled requests refused because the shared throttle store (PostgreSQL) failed: the throttles fail closed.", nil, nil),
		storeFailing:  prometheus.NewDesc(ThrottleStoreFailing, "1 while the shared throttle store's last answer was a failure (throttled endpoints refuse every request), else 0.", nil, nil),
	}
	for _, b := range apihttp.LatencyBuckets {
		c.buckets = append(c.buckets, b.Seconds())
	}
	return c
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.requests, c.duration, c.hits, c.misses, c.entries, c.enabled, c.throttleKeys, c.storeFailures, c.storeFailing} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range c.src.Server.RequestSeries() {
		status := strconv.Itoa(s.Status)
		ch <- prometheus.MustNewConstMetric(c.requests, prometheus.CounterValue, float64(s.Count), s.Route, s.Method, status)
		buckets := make(map[float64]uint64, len(c.buckets))
		for i, b := range c.buckets {
			buckets[b] = s.Buckets[i]
		}
		ch <- prometheus.MustNewConstHistogram(c.duration, s.Count, s.Sum.Seconds(), buckets, s.Route, s.Method, status)
	}

	geo := c.src.Server.GeoCacheStats()
	hits, misses, entries, enabled := c.src.DB.UserCacheStats()
	for _, cs := range []struct {
		name string
		apihttp.CacheStats
	}{{"geo", geo}, {"user", apihttp.CacheStats{Hits: hits, Misses: misses, Entries: entries, Enabled: enabled}}} {
		ch <- prometheus.MustNewConstMetric(c.hits, prometheus.CounterValue, float64(cs.Hits), cs.name)
		ch <- prometheus.MustNewConstMetric(c.misses, prometheus.CounterValue, float64(cs.Misses), cs.name)
		ch <- prometheus.MustNewConstMetric(c.entries, prometheus.GaugeValue, float64(cs.Entries), cs.name)
		ch <- prometheus.MustNewConstMetric(c.enabled, prometheus.GaugeValue, b2f(cs.Enabled), cs.name)
	}

	if c.src.Throttles == nil {
		for scope, n := range c.src.Server.MemoryThrottleKeys() {
			ch <- prometheus.MustNewConstMetric(c.throttleKeys, prometheus.GaugeValue, float64(n), scope, "memory")
		}
		return
	}
	failures, failing := c.src.Server.ThrottleStoreHealth()
	ch <- prometheus.MustNewConstMetric(c.storeFailures, prometheus.CounterValue, float64(failures))
	ch <- prometheus.MustNewConstMetric(c.storeFailing, prometheus.GaugeValue, b2f(failing))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	keys, err := c.src.Throttles.Keys(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.throttleKeys, err)
		return
	}
	for _, scope := range c.src.Server.ThrottleScopes() {
		ch <- prometheus.MustNewConstMetric(c.throttleKeys, prometheus.GaugeValue, float64(keys[scope]), scope, "postgres")
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
