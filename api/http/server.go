// Package apihttp serves the isis API over HTTP with Echo v4: routing,
// middleware, the error envelope and one file of handlers per resource.
package apihttp

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/isis-project/isis/api"
	"github.com/isis-project/isis/api/auth"
	"github.com/isis-project/isis/api/clientip"
	"github.com/isis-project/isis/api/config"
	"github.com/labstack/echo/v4"
)

// Readiness is what /api/ready/ asks of the database.
type Readiness interface {
	// PendingMigrations returns how many embedded migrations are not
	// applied; an error means the database cannot be reached.
	PendingMigrations(ctx context.Context) (int, error)
}

// Services are the domain services the handlers use.
type Services struct {
	DB            Readiness
	Geo           api.GeoService
	Users         api.UserService
	RefreshTokens api.RefreshTokenService
	Media         api.MediaStore // nil: avatars disabled
	// Throttles is the store replicas share (nil: each process counts
	// alone, in memory).
	Throttles SharedThrottles
	// AccessLog receives one JSON line per request (nil: none). Logger's
	// level applies; other records go through Logger.
	AccessLog io.Writer
}

// Server is the HTTP server of the API with its dependencies.
type Server struct {
	Config        *config.Config
	Logger        *slog.Logger
	DB            Readiness
	GeoService    api.GeoService
	Users         api.UserService
	RefreshTokens api.RefreshTokenService
	Media         api.MediaStore
	JWT           *auth.JWT
	Google        *auth.GoogleVerifier // nil unless GOOGLE_CLIENT_ID is set
	Now           func() time.Time

	echo      *echo.Echo
	handler   echo.HandlerFunc // the whole chain, routing included
	routed    echo.HandlerFunc // authentication, then the route's handler
	clientIP  clientip.Resolver
	accessLog io.Writer

	drain draining

	throttleToken, throttleRegister, throttleGoogle *throttle
	throttlePassword                                *throttle
	sharedThrottles                                 SharedThrottles
	throttleHealth                                  storeHealth
	uploadGrace                                     time.Duration // 0: 5 s (tests shorten it)
	geo                                             *geoCache
	methods                                         map[string]*routeMethods // see buildMethodTable
	requests                                        *requestStats            // nil: metrics off
}

// NewServer wires the routes over the given services.
func NewServer(cfg *config.Config, logger *slog.Logger, svc Services) *Server {
	s := &Server{Config: cfg, Logger: logger, DB: svc.DB, Users: svc.Users,
		RefreshTokens: svc.RefreshTokens, Media: svc.Media, Now: time.Now, geo: newGeoCache(), accessLog: svc.AccessLog}
	s.GeoService = invalidatingGeo{svc.Geo, s.geo}
	now := func() time.Time { return s.Now() }
	s.JWT = &auth.JWT{Key: []byte(cfg.SecretKey), AccessTTL: cfg.AccessTokenLifetime, RefreshTTL: cfg.RefreshTokenLifetime, Now: now}
	if cfg.GoogleClientID != "" {
		s.Google = &auth.GoogleVerifier{ClientID: cfg.GoogleClientID, JWKSURL: cfg.GoogleJWKSURL, Issuers: cfg.GoogleIssuers,
			HTTP: &http.Client{Timeout: 5 * time.Second}, Now: now}
	}
	s.throttleToken = newThrottle("token", cfg.ThrottleToken, cfg.ThrottleMaxKeys, now)
	s.throttleRegister = newThrottle("register", cfg.ThrottleRegister, cfg.ThrottleMaxKeys, now)
	s.throttleGoogle = newThrottle("google", cfg.ThrottleGoogle, cfg.ThrottleMaxKeys, now)
	s.throttlePassword = newThrottle("password", cfg.ThrottlePassword, cfg.ThrottleMaxKeys, now)
	s.shareThrottles(svc.Throttles)
	s.clientIP = clientip.Resolver{Trusted: cfg.TrustedProxies, Headers: cfg.ClientIPHeaders}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = s.handleError
	e.IPExtractor = func(r *http.Request) string { return s.clientIP.Resolve(r).IP.String() }
	s.echo = e
	// The middleware chain is composed once, here. (Echo's own ServeHTTP
	// composes Pre and Use middleware anew for every request: a closure
	// allocation per middleware per request.)
	s.routed = s.mwAuthenticate(func(c echo.Context) error { return c.Handler()(c) })
	s.handler = s.mwRequest(s.mwLog(s.mwRecover(s.mwCORS(s.mwAllowedHosts(mwTrailingSlash(s.route))))))

	g := e.Group("/api")
	s.get(g, "", s.handleRoot)
	s.get(g, "/health", s.handleHealth)
	s.get(g, "/ready", s.handleReady)
	s.registerGeoRoutes(g)
	s.registerGeoWriteRoutes(g)
	s.registerAuthRoutes(g)
	s.registerUserRoutes(g)
	s.registerAvatarRoutes(g)
	s.registerStaticRoutes(e, g)
	s.buildMethodTable()
	if cfg.MetricsAddress != "" {
		s.requests = newRequestStats(s.routePaths())
	}
	return s
}

// ServeHTTP implements http.Handler: what echo.ServeHTTP does, with the
// chain built in NewServer.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c := s.echo.AcquireContext()
	c.Reset(r, &reqState{ResponseWriter: w})
	if err := s.handler(c); err != nil {
		s.handleError(err, c)
	}
	writeBody(c) // (mwLog has, unless the chain changes)
	s.echo.ReleaseContext(c)
}

// route finds the handler (after the trailing-slash rewrite, see
// findRoute) and runs it behind authentication; unknown paths get Echo's
// 404 handler and unknown methods the 405 one, behind authentication too,
// as DRF authenticates before it answers 405.
func (s *Server) route(c echo.Context) error {
	s.findRoute(c)
	return s.routed(c)
}

// Routes lists the registered "METHOD path" pairs (for the OpenAPI check).
func (s *Server) Routes() []*echo.Route { return s.echo.Routes() }

// get registers GET and HEAD.
func (s *Server) get(g *echo.Group, path string, h echo.HandlerFunc) {
	g.GET(path, h)
	g.HEAD(path, h)
}

// writeJSON writes v with status; JSON without HTML escaping.
func writeJSON(c echo.Context, status int, v any) error {
	b, err := marshal(v)
	if err != nil {
		return err
	}
	return writeBlobJSON(c, status, b)
}

// writeBlobJSON writes an encoded JSON body with its Content-Length (without
// one, net/http chunks every body over 2 KiB).
func writeBlobJSON(c echo.Context, status int, b []byte) error {
	st := state(c)
	st.lenHdr[0] = strconv.Itoa(len(b)) // (replaced before WriteHeader copies it, if a second answer comes)
	return writeBlobJSONLen(c, status, b, st.lenHdr[:])
}

// writeBlobJSONLen is writeBlobJSON with the Content-Length value made once
// for a body that is sent many times. The status and headers go out now; the
// body is written by mwLog once the handler and the middleware below it have
// returned (see writeBody).
func writeBlobJSONLen(c echo.Context, status int, b []byte, length []string) error {
	res := c.Response()
	h := res.Header()
	h["Content-Type"] = contentTypeJSON
	h["Content-Length"] = length
	res.WriteHeader(status)
	state(c).body = b
	return nil
}

// writeBody writes the body writeBlobJSONLen left for it. A large body is
// written through to the connection from inside net/http's writer, a dozen
// frames deep: written from the top of the middleware chain rather than from
// under it, the connection's goroutine stack stays within 8 KiB instead of
// growing to 16 KiB, which at a thousand keep-alive connections is 8 MiB.
// (The write's error needs no handling: the answer is committed, and the
// client has gone.)
func writeBody(c echo.Context) {
	st := state(c)
	if b := st.body; b != nil {
		st.body = nil
		_, _ = c.Response().Write(b)
	}
}

func marshal(v any) ([]byte, error) {
	var buf jsonBuffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return buf.b[:len(buf.b)-1], nil // drop Encode's newline
}

type jsonBuffer struct{ b []byte }

func (j *jsonBuffer) Write(p []byte) (int, error) { j.b = append(j.b, p...); return len(p), nil }

func (s *Server) handleRoot(c echo.Context) error {
	base := absoluteURL(c, "/api/")
	return writeJSON(c, http.StatusOK, map[string]string{
		"name":           "isis",
		"version":        api.Version,
		"health":         base + "health/",
		"ready":          base + "ready/",
		"departments":    base + "departments/",
		"municipalities": base + "municipalities/",
	})
}

// healthAnswer never changes: made once, not per probe.
var healthAnswer = sync.OnceValue(func() *cachedAnswer {
	b, _ := marshal(map[string]string{"status": "ok", "version": api.Version})
	return newAnswer(b)
})

// Header values shared by every response: see varyOrigin.
var (
	noStore         = []string{"no-store"}
	contentTypeJSON = []string{echo.MIMEApplicationJSON}
)

func (s *Server) handleHealth(c echo.Context) error {
	if s.Draining() {
		return drainingAnswer(c)
	}
	c.Response().Header()["Cache-Control"] = noStore
	a := healthAnswer()
	return writeBlobJSONLen(c, http.StatusOK, a.body, a.lenHdr)
}

// handleReady checks the database and the migrations, within 2 seconds.
func (s *Server) handleReady(c echo.Context) error {
	if s.Draining() {
		return drainingAnswer(c)
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), 2*time.Second)
	defer cancel()
	out := map[string]string{"status": "ok", "database": "ok", "migrations": "ok"}
	status := http.StatusOK
	// One query answers both: it fails when the database does.
	if n, err := s.DB.PendingMigrations(ctx); err != nil {
		setLogError(c, err)
		out["database"], out["migrations"] = "unavailable", "unavailable"
	} else if n > 0 {
		out["migrations"] = "pending"
	}
	if s.Config.S3Enabled() && s.Media != nil {
		out["storage"] = "ok"
		if err := s.Media.Check(ctx); err != nil {
			setLogError(c, err)
			out["storage"] = "unavailable"
		}
	}
	if out["database"] != "ok" || out["migrations"] != "ok" || (out["storage"] != "" && out["storage"] != "ok") {
		out["status"] = "unavailable"
		status = http.StatusServiceUnavailable
		c.Response().Header().Set("Retry-After", "5")
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return writeJSON(c, status, out)
}

// absoluteURL builds scheme://host + path as the client saw it.
func absoluteURL(c echo.Context, path string) string {
	ci := client(c)
	return ci.Scheme + "://" + ci.Host + path
}
