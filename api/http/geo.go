package apihttp

import (
	"context"
	"hash/fnv"
	"net/http"
	"strconv"
	"strings"

	"github.com/isis-project/isis/api"
	"github.com/labstack/echo/v4"
)

// geoMaxAge is the Cache-Control max-age of the public geography answers.
const geoMaxAge = 60

func (s *Server) registerGeoRoutes(g *echo.Group) {
	s.get(g, "/departments", s.handleDepartmentList)
	s.get(g, "/departments/:code", s.handleDepartmentView)
	s.get(g, "/departments/:code/municipalities", s.handleDepartmentMunicipalities)
	s.get(g, "/municipalities", s.handleMunicipalityList)
	s.get(g, "/municipalities/:code", s.handleMunicipalityView)
}

// etagOf is a strong ETag over the answer's bytes.
func etagOf(b []byte) string {
	h := fnv.New64a()
	h.Write(b)
	return `"` + strconv.FormatUint(h.Sum64(), 36) + `"`
}

// writeETagged writes a public GET answer with its ETag and answers
// If-None-Match with 304.
func writeETagged(c echo.Context, a *cachedAnswer) error {
	hdr := c.Response().Header()
	hdr["Etag"] = a.etagHdr // canonical keys, shared slices: see varyOrigin
	hdr["Cache-Control"] = geoCacheControl
	if etagMatch(header(c.Request().Header, "If-None-Match"), a.etag) {
		return c.NoContent(http.StatusNotModified)
	}
	return writeBlobJSONLen(c, http.StatusOK, a.body, a.lenHdr)
}

var geoCacheControl = []string{"public, max-age=" + strconv.Itoa(geoMaxAge)}

// etagMatch applies If-None-Match's weak comparison.
func etagMatch(header, etag string) bool {
	if header == "" {
		return false
	}
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimSpace(t)
		if t == "*" || strings.TrimPrefix(t, "W/") == etag {
			return true
		}
	}
	return false
}

func geoFilter(c echo.Context, p pageRequest) api.GeoFilter {
	q := c.QueryParams()
	return api.GeoFilter{
		Search:   truncate(q.Get("search"), 200),
		Ordering: truncate(q.Get("ordering"), 200),
		Offset:   p.offset(),
		Limit:    p.Size,
	}
}

func (s *Server) handleDepartmentList(c echo.Context) error {
	return s.cachedGeo(c, func(ctx context.Context) (any, error) {
		p, err := parsePage(c.QueryParams())
		if err != nil {
			return nil, err
		}
		deps, n, err := fetchPage(&p, func(offset, limit int) ([]*api.Department, int, error) {
			f := geoFilter(c, p)
			f.Offset, f.Limit = offset, limit
			return s.GeoService.FindDepartments(ctx, f)
		})
		if err != nil {
			return nil, err
		}
		return newPage(c, p, n, deps)
	})
}

func (s *Server) handleDepartmentView(c echo.Context) error {
	return s.cachedGeo(c, func(ctx context.Context) (any, error) {
		return s.GeoService.FindDepartmentByCode(ctx, c.Param("code"))
	})
}

func (s *Server) handleDepartmentMunicipalities(c echo.Context) error {
	code := c.Param("code")
	return s.listMunicipalities(c, code, true)
}

func (s *Server) handleMunicipalityList(c echo.Context) error {
	dep := queryParam(c, "department")
	if dep == "" {
		dep = queryParam(c, "department_code")
	}
	if dep != "" && !api.IsDigits(dep, 2) {
		return invalidDepartmentFilter()
	}
	return s.listMunicipalities(c, dep, false)
}

func invalidDepartmentFilter() error {
	var fe api.FieldErrors
	fe.Add("department", "Select a valid choice. That choice is not one of the available choices.")
	return fe.Err()
}

// listMunicipalities lists one page; an unknown department is a 404 on the
// nested route and a 400 on the filter.
func (s *Server) listMunicipalities(c echo.Context, dep string, nested bool) error {
	return s.cachedGeo(c, func(ctx context.Context) (any, error) {
		p, err := parsePage(c.QueryParams())
		if err != nil {
			return nil, err
		}
		muns, n, err := fetchPage(&p, func(offset, limit int) ([]*api.Municipality, int, error) {
			f := geoFilter(c, p)
			f.DepartmentCode = dep
			f.Offset, f.Limit = offset, limit
			return s.GeoService.FindMunicipalities(ctx, f)
		})
		if err != nil {
			return nil, err
		}
		if n == 0 && dep != "" {
			if _, err := s.GeoService.FindDepartmentByCode(ctx, dep); err != nil {
				if api.ErrorCode(err) == api.ENOTFOUND && !nested {
					return nil, invalidDepartmentFilter()
				}
				return nil, err
			}
		}
		return newPage(c, p, n, muns)
	})
}

func (s *Server) handleMunicipalityView(c echo.Context) error {
	return s.cachedGeo(c, func(ctx context.Context) (any, error) {
		return s.GeoService.FindMunicipalityByCode(ctx, c.Param("code"))
	})
}

func (s *Server) registerGeoWriteRoutes(g *echo.Group) {
	g.POST("/departments", staffOnly(s.handleDepartmentCreate))
	g.PATCH("/departments/:code", staffOnly(s.handleDepartmentUpdate))
	g.PUT("/departments/:code", staffOnly(s.handleDepartmentUpdate))
	g.DELETE("/departments/:code", staffOnly(s.handleDepartmentDelete))
	g.POST("/municipalities", staffOnly(s.handleMunicipalityCreate))
	g.PATCH("/municipalities/:code", staffOnly(s.handleMunicipalityUpdate))
	g.PUT("/municipalities/:code", staffOnly(s.handleMunicipalityUpdate))
	g.DELETE("/municipalities/:code", staffOnly(s.handleMunicipalityDelete))
}

func (s *Server) handleDepartmentCreate(c echo.Context) error {
	var in struct {
		Code *string `json:"code"`
		Name *string `json:"name"`
	}
	fe, err := s.bindFields(c, &in)
	if err != nil {
		return err
	}
	d := &api.Department{Code: required(&fe, "code", in.Code), Name: required(&fe, "name", in.Name)}
	if err := fe.Err(); err != nil {
		return err
	}
	if err := s.GeoService.CreateDepartment(c.Request().Context(), d); err != nil {
		return err
	}
	return writeJSON(c, http.StatusCreated, d)
}

func (s *Server) handleDepartmentUpdate(c echo.Context) error {
	var in struct {
		Name *string `json:"name"`
	}
	if err := s.bindJSON(c, &in); err != nil {
		return err
	}
	if c.Request().Method == http.MethodPut && in.Name == nil {
		var fe api.FieldErrors
		fe.Add("name", "This field is required.")
		return fe.Err()
	}
	d, err := s.GeoService.UpdateDepartment(c.Request().Context(), c.Param("code"), api.DepartmentUpdate{Name: in.Name})
	if err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, d)
}

func (s *Server) handleDepartmentDelete(c echo.Context) error {
	if err := s.GeoService.DeleteDepartment(c.Request().Context(), c.Param("code")); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (s *Server) handleMunicipalityCreate(c echo.Context) error {
	var in struct {
		Code           *string `json:"code"`
		Name           *string `json:"name"`
		DepartmentCode *string `json:"department_code"`
	}
	fe, err := s.bindFields(c, &in)
	if err != nil {
		return err
	}
	m := &api.Municipality{Code: required(&fe, "code", in.Code), Name: required(&fe, "name", in.Name),
		DepartmentCode: required(&fe, "department_code", in.DepartmentCode)}
	if err := fe.Err(); err != nil {
		return err
	}
	if err := s.GeoService.CreateMunicipality(c.Request().Context(), m); err != nil {
		return err
	}
	return writeJSON(c, http.StatusCreated, m)
}

func (s *Server) handleMunicipalityUpdate(c echo.Context) error {
	var in struct {
		Name           *string `json:"name"`
		DepartmentCode *string `json:"department_code"`
	}
	if err := s.bindJSON(c, &in); err != nil {
		return err
	}
	if c.Request().Method == http.MethodPut && in.Name == nil {
		var fe api.FieldErrors
		fe.Add("name", "This field is required.")
		return fe.Err()
	}
	m, err := s.GeoService.UpdateMunicipality(c.Request().Context(), c.Param("code"),
		api.MunicipalityUpdate{Name: in.Name, DepartmentCode: in.DepartmentCode})
	if err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, m)
}

func (s *Server) handleMunicipalityDelete(c echo.Context) error {
	if err := s.GeoService.DeleteMunicipality(c.Request().Context(), c.Param("code")); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
