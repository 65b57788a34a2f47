package apihttp

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"runtime"
	"strings"
	"time"
	"unsafe"

	"github.com/isis-project/isis/api"
	"github.com/isis-project/isis/api/clientip"
	"github.com/labstack/echo/v4"
)

// reqState is everything the middleware and handlers note about one
// request. It wraps the connection's ResponseWriter, so it rides on Echo's
// context as c.Response().Writer: one allocation per request, not a state
// plus a context map.
type reqState struct {
	http.ResponseWriter
	id     string
	client clientip.Client
	path   string // as the client sent it, before the trailing-slash rewrite
	logErr error  // the full error chain, for the log line only
	stack  string // a recovered panic's stack, for the log line only
	user   *api.User
	body   []byte    // a JSON answer's body, not written yet (see writeBody)
	idHdr  [1]string // the X-Request-Id header's value slice, allocated with the state
	lenHdr [1]string // the Content-Length value slice of a body encoded for this request
	idBuf  [32]byte  // a new request id's digits: id points here (set once, never changed)
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (st *reqState) Unwrap() http.ResponseWriter { return st.ResponseWriter }

// state is the request's state; Server.ServeHTTP put it there, and nothing
// replaces the writer after it (a middleware that did would fail every test).
func state(c echo.Context) *reqState { return c.Response().Writer.(*reqState) }

func requestID(c echo.Context) string { return state(c).id }

func client(c echo.Context) clientip.Client { return state(c).client }

// setLogError attaches the full error chain to the request's log line.
func setLogError(c echo.Context, err error) { state(c).logErr = err }

// header is h.Get(key) for a key already in canonical form, as net/http
// stores what it reads: Get re-canonicalizes the key on every call (a scan,
// and an allocation for keys like X-Request-ID), on every request.
func header(h http.Header, key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// saneRequestID reports whether an incoming X-Request-ID can be reused: 1 to
// 128 characters of letters, digits and . _ - :.
func saneRequestID(id string) bool {
	if len(id) == 0 || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-' || c == ':') {
			return false
		}
	}
	return true
}

// newRequestID writes 32 random hex digits into dst and returns them as a
// string over dst's memory, which the caller never changes afterwards (the
// request state holds it: one allocation per request rather than two).
// Request ids correlate log lines, they guard nothing: math/rand/v2's
// generator (ChaCha8, seeded from the OS) is plenty, and cheaper than a
// getrandom per request.
func newRequestID(dst *[32]byte) string {
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:8], rand.Uint64())
	binary.LittleEndian.PutUint64(b[8:], rand.Uint64())
	hex.Encode(dst[:], b[:])
	return unsafe.String(&dst[0], len(dst))
}

// mwRequest runs first: request id, client address, original path.
func (s *Server) mwRequest(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		id := header(r.Header, "X-Request-Id")
		st := state(c)
		if !saneRequestID(id) {
			id = newRequestID(&st.idBuf)
		}
		st.id, st.client, st.path, st.idHdr = id, s.clientIP.Resolve(r), r.URL.Path, [1]string{id}
		c.Response().Header()["X-Request-Id"] = st.idHdr[:]
		return next(c)
	}
}

// mwLog writes one JSON line per request, after the error handler ran.
func (s *Server) mwLog(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		if err := next(c); err != nil {
			c.Error(err)
		}
		writeBody(c)
		var now time.Time
		if s.requests != nil {
			now = time.Now()
			s.requests.observe(c.Path(), c.Request().Method, c.Response().Status, now.Sub(start))
		}
		if s.accessLog == nil {
			return nil
		}
		r, res, st := c.Request(), c.Response(), state(c)
		level := slog.LevelInfo
		if st.logErr != nil && res.Status >= 500 {
			level = slog.LevelError
		}
		if !s.Logger.Enabled(r.Context(), level) {
			return nil
		}
		if now.IsZero() {
			now = time.Now()
		}
		line := accessLine{time: now, level: level, method: r.Method, route: c.Path(),
			status: res.Status, latency: now.Sub(start), st: st, bytes: res.Size}
		buf := lineBufs.Get().(*[]byte)
		*buf = line.append((*buf)[:0])
		_, _ = s.accessLog.Write(*buf)
		if cap(*buf) <= 64<<10 { // a panic's stack can make one huge line: let that buffer go
			lineBufs.Put(buf)
		}
		return nil
	}
}

// mwRecover turns a panic into a 500 envelope; the stack goes to the log only.
func (s *Server) mwRecover(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) (err error) {
		defer func() {
			if rec := recover(); rec != nil {
				if rec == http.ErrAbortHandler {
					panic(rec)
				}
				buf := make([]byte, 8<<10)
				buf = buf[:runtime.Stack(buf, false)]
				state(c).stack = string(buf)
				err = api.WrapError(api.EINTERNAL, "A server error occurred.", fmt.Errorf("panic: %v", rec))
			}
		}()
		return next(c)
	}
}

// CORS constants.
const (
	corsAllowHeaders  = "Authorization, Content-Type, X-Request-ID"
	corsAllowMethods  = "DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT"
	corsExposeHeaders = "X-Request-ID, Retry-After, ETag"
)

// varyOrigin is shared by every response: a header value slice with
// len == cap, so an append elsewhere copies it rather than writing into it.
var varyOrigin = []string{"Origin"}

// mwCORS answers preflights and marks answers to allowed origins, errors
// included. Other origins get no CORS headers at all.
func (s *Server) mwCORS(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		h := c.Response().Header()
		if v := h["Vary"]; v == nil { // canonical keys: no per-request canonicalization
			h["Vary"] = varyOrigin
		} else {
			h["Vary"] = append(v, "Origin")
		}
		origin := header(r.Header, "Origin")
		allowed := origin != "" && s.originAllowed(origin)
		preflight := r.Method == http.MethodOptions && header(r.Header, "Access-Control-Request-Method") != ""
		if allowed {
			h.Set("Access-Control-Allow-Origin", origin)
		}
		if preflight {
			if allowed {
				h.Set("Access-Control-Allow-Methods", corsAllowMethods)
				h.Set("Access-Control-Allow-Headers", corsAllowHeaders)
				h.Set("Access-Control-Max-Age", "86400")
			}
			h.Set("Content-Length", "0")
			return c.NoContent(http.StatusOK)
		}
		if allowed {
			h.Set("Access-Control-Expose-Headers", corsExposeHeaders)
		}
		return next(c)
	}
}

func (s *Server) originAllowed(origin string) bool {
	for _, o := range s.Config.CORSAllowedOrigins {
		if strings.EqualFold(o, origin) {
			return true
		}
	}
	return false
}

// hostExempt lists the routes that answer whatever the Host (local probes).
func hostExempt(path string) bool {
	p := strings.TrimSuffix(path, "/")
	return p == "/api/health" || p == "/api/ready"
}

// mwAllowedHosts applies ALLOWED_HOSTS to the host the client used.
func (s *Server) mwAllowedHosts(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		host := client(c).Host
		if !hostExempt(c.Request().URL.Path) && !hostAllowed(host, s.Config.AllowedHosts) {
			if !validHost(host) { // Django's wording for a host it cannot parse (a port that is not a number, …)
				return api.Errorf(api.EBADREQUEST, "Invalid HTTP_HOST header: %q. The domain name provided is not valid according to RFC 1034/1035.", truncate(host, 100))
			}
			return api.Errorf(api.EBADREQUEST, "Invalid HTTP_HOST header: %q. You may need to add it to ALLOWED_HOSTS.", truncate(host, 100))
		}
		return next(c)
	}
}

// mwTrailingSlash makes every route answer with and without its trailing
// slash, by rewriting the path (no redirect, so POST bodies survive).
func mwTrailingSlash(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		if p := r.URL.Path; len(p) > 1 && strings.HasSuffix(p, "/") && !strings.HasPrefix(p, "/static/") && !strings.HasPrefix(p, "/media/") {
			r.URL.Path = strings.TrimRight(p, "/")
			if r.URL.Path == "" {
				r.URL.Path = "/"
			}
			if r.URL.RawPath != "" {
				r.URL.RawPath = strings.TrimRight(r.URL.RawPath, "/")
			}
		}
		return next(c)
	}
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
