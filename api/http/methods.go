package apihttp

import (
	"net/http"
	"strings"

	"github.com/isis-project/isis/api"
	"github.com/labstack/echo/v4"
)

// drfMethodOrder is the order DRF lists a view's methods in its Allow header
// (APIView.allowed_methods follows View.http_method_names).
var drfMethodOrder = []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete,
	http.MethodHead, http.MethodOptions}

// routeMethods is what one route path answers.
type routeMethods struct {
	allow   []string        // the Allow header value, made once
	methods map[string]bool // OPTIONS included
}

// buildMethodTable records, per registered route path, the methods it
// answers (OPTIONS always: the server answers it on every route), and which
// paths have no parameter: such a path is the route for a request that
// names it whatever the method, as DRF's URL patterns match the path alone,
// so DELETE /api/users/me/ is 405 rather than /api/users/{id}/ with id "me".
func (s *Server) buildMethodTable() {
	s.methods = map[string]*routeMethods{}
	for _, r := range s.echo.Routes() {
		if !strings.HasPrefix(r.Path, "/") || r.Method == echo.RouteNotFound {
			continue
		}
		m := s.methods[r.Path]
		if m == nil {
			m = &routeMethods{methods: map[string]bool{http.MethodOptions: true}}
			s.methods[r.Path] = m
		}
		m.methods[r.Method] = true
	}
	for _, m := range s.methods {
		var names []string
		for _, name := range drfMethodOrder {
			if m.methods[name] {
				names = append(names, name)
			}
		}
		m.allow = []string{strings.Join(names, ", ")}
	}
}

// findRoute routes the request like Echo's router, except that a path
// without parameters wins over a parameter path whatever the method, and
// that 405 and OPTIONS get the handlers below. Every answer on a known
// route carries Allow, as DRF's do.
func (s *Server) findRoute(c echo.Context) {
	r := c.Request()
	p := echo.GetPath(r)
	if m := s.methods[p]; m != nil && !strings.ContainsAny(p, ":*") && !m.methods[r.Method] {
		c.SetPath(p)
		c.SetParamNames()
		c.SetParamValues()
		c.SetHandler(s.handleMethodNotAllowed)
	} else {
		s.echo.Router().Find(r.Method, p, c)
		if c.Get(echo.ContextKeyHeaderAllow) != nil { // Echo found the path, not the method
			c.SetHandler(s.handleMethodNotAllowed)
		}
	}
	m := s.methods[c.Path()]
	if m == nil {
		return
	}
	c.Response().Header()["Allow"] = m.allow
	if r.Method == http.MethodOptions {
		c.SetHandler(s.handleOptions)
	}
}

// handleMethodNotAllowed is the 405, after the permission checks DRF makes
// first (a view's permissions run before its method is looked up): the
// account routes need a user, the geography routes staff for writes.
func (s *Server) handleMethodNotAllowed(c echo.Context) error {
	r := c.Request()
	p := c.Path()
	switch {
	case strings.HasPrefix(p, "/api/users") || strings.HasPrefix(p, "/api/profiles"):
		if _, err := requireUser(c); err != nil {
			return err
		}
	case strings.HasPrefix(p, "/api/departments") || strings.HasPrefix(p, "/api/municipalities"):
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			if _, err := requireStaff(c); err != nil {
				return err
			}
		}
	}
	return api.Errorf(api.EMETHOD, "Method %q not allowed.", truncate(r.Method, 20))
}

// optionsAnswer is DRF's SimpleMetadata answer to OPTIONS, without the
// view's name: what the route renders and parses (Allow says the methods).
var optionsAnswer = []byte(`{"renders":["application/json"],"parses":["application/json"]}`)

func (s *Server) handleOptions(c echo.Context) error {
	c.Response().Header().Set("Cache-Control", "no-store")
	return writeBlobJSON(c, http.StatusOK, optionsAnswer)
}
