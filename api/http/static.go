package apihttp

import (
	"bytes"
	"io/fs"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/isis-project/isis/api"
	"github.com/isis-project/isis/api/media"
	"github.com/isis-project/isis/api/static"
	"github.com/labstack/echo/v4"
)

// registerStaticRoutes serves the schema, the embedded assets under
// /static/ and, with disk storage, the media under /media/.
func (s *Server) registerStaticRoutes(e *echo.Echo, g *echo.Group) {
	s.get(g, "/schema", s.handleSchema)
	e.GET("/static/*", s.handleStatic)
	e.HEAD("/static/*", s.handleStatic)
	e.GET("/media/*", s.handleMedia)
	e.HEAD("/media/*", s.handleMedia)
}

func errNotFound() error { return api.Errorf(api.ENOTFOUND, "Not found.") }

var startTime = time.Now()

// assetName cleans a request path under a prefix; "" when it escapes or
// names a hidden file.
func assetName(p, prefix string) string {
	name := strings.TrimPrefix(p, prefix)
	if name == "" || strings.HasSuffix(name, "/") {
		name += "index.html"
	}
	clean := path.Clean("/" + name)[1:]
	if clean != name || strings.Contains(name, "/.") || strings.HasPrefix(name, ".") {
		return ""
	}
	return clean
}

func (s *Server) handleStatic(c echo.Context) error {
	p := c.Request().URL.Path
	if p == "/static" || p == "/static/docs" {
		return c.Redirect(http.StatusMovedPermanently, "/static/docs/")
	}
	name := assetName(p, "/static/")
	b, err := fs.ReadFile(static.FS, name)
	if name == "" || err != nil {
		return errNotFound()
	}
	c.Response().Header().Set("Cache-Control", "public, max-age=3600")
	return serveContent(c, name, startTime, bytes.NewReader(b))
}

func (s *Server) handleMedia(c echo.Context) error {
	d, ok := s.Media.(*media.Disk)
	if !ok {
		return errNotFound()
	}
	name := assetName(c.Request().URL.Path, "/media/")
	if name == "" || strings.HasSuffix(name, "index.html") {
		return errNotFound()
	}
	f, err := os.Open(filepath.Join(d.Root, filepath.FromSlash(name)))
	if err != nil {
		return errNotFound()
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || st.IsDir() {
		return errNotFound()
	}
	c.Response().Header().Set("Cache-Control", "public, max-age=86400")
	c.Response().Header().Set("X-Content-Type-Options", "nosniff")
	return serveContent(c, name, st.ModTime(), f)
}
