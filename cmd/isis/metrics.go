package main

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/isis-project/isis/api/metrics"
	"github.com/isis-project/isis/api/postgres"
)

// serveMetrics serves the Prometheus metrics at /metrics on addr
// (METRICS_ADDRESS): a listener and mux of its own, never the API's, so no
// proxy in front of the API exposes them and no API setting (ALLOWED_HOSTS,
// CORS, throttles) applies to the scraper.
func (m *Main) serveMetrics(addr string) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s (setting METRICS_ADDRESS): %w", addr, errors.Unwrap(err))
	}
	src := metrics.Sources{Server: m.Server, DB: m.DB, Logger: m.Logger}
	if t, ok := m.Server.SharedThrottles().(*postgres.Throttles); ok {
		src.Throttles = t
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", metrics.Handler(metrics.NewRegistry(src), m.Logger))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, WriteTimeout: 30 * time.Second}
	go srv.Serve(ln)
	return func() { srv.Close() }, nil
}
