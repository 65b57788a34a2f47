package apihttp

import (
	"net/http"
	"sync/atomic"

	"github.com/labstack/echo/v4"
)

// draining is set when the server starts its graceful shutdown: from then on
// /api/health/ and /api/ready/ answer 503, so a reverse proxy's active health
// checks (Caddy's health_uri) and isisctl stop choosing this backend while it
// finishes the requests it has.
type draining struct{ on atomic.Bool }

// Drain marks the server as shutting down (idempotent).
func (s *Server) Drain() { s.drain.on.Store(true) }

// Draining reports whether Drain was called.
func (s *Server) Draining() bool { return s.drain.on.Load() }

// drainingAnswer is the 503 of the probes during a shutdown.
func drainingAnswer(c echo.Context) error {
	c.Response().Header()["Cache-Control"] = noStore
	c.Response().Header().Set("Connection", "close")
	c.Response().Header().Set("Retry-After", "1")
	return c.JSONBlob(http.StatusServiceUnavailable, []byte(`{"status":"draining"}`))
}
