package apihttp

import (
	"net/url"
	"strconv"
	"strings"

	"github.com/isis-project/isis/api"
	"github.com/labstack/echo/v4"
)

// Pagination defaults, as DRF's PageNumberPagination with PAGE_SIZE=50.
const (
	defaultPageSize = 50
	maxPageSize     = 500
)

// pageRequest is a parsed ?page=&page_size=.
type pageRequest struct {
	Page, Size int
	Last       bool // ?page=last: Page is known once the count is
}

func (p pageRequest) offset() int { return (p.Page - 1) * p.Size }

// parsePage reads the page parameters the DRF way (Django's Paginator):
// "last" is the last page; a page that is not a positive integer as Python
// reads one, the empty value included, is a 404 "Invalid page."; a bad
// page_size falls back to the default and a large one is cut to the maximum.
func parsePage(q url.Values) (pageRequest, error) {
	p := pageRequest{Page: 1, Size: defaultPageSize}
	if v, ok := q["page_size"]; ok {
		if n, ok := pyInt(v[0]); ok && n > 0 {
			p.Size = min(n, maxPageSize)
		}
	}
	if v, ok := q["page"]; ok {
		if v[0] == "last" {
			p.Last = true
			return p, nil
		}
		n, ok := pyInt(v[0])
		if !ok || n < 1 || n > 1<<20 {
			return p, invalidPage()
		}
		p.Page = n
	}
	return p, nil
}

// pyInt parses s as Python's int() does for the digits DRF sees: spaces
// around, a sign, and single underscores between digits allowed.
func pyInt(s string) (int, bool) {
	s = strings.TrimSpace(s)
	neg := false
	if s != "" && (s[0] == '+' || s[0] == '-') {
		neg = s[0] == '-'
		s = s[1:]
	}
	if s == "" || s[0] == '_' || s[len(s)-1] == '_' || strings.Contains(s, "__") {
		return 0, false
	}
	n, err := strconv.Atoi(strings.ReplaceAll(s, "_", ""))
	if err != nil || strings.ContainsAny(s, "+-") {
		return 0, false
	}
	if neg {
		n = -n
	}
	return n, true
}

// fetchPage runs find for the requested page. For ?page=last it first
// fetches page 1, which tells the count, then the last page when that is
// another one.
func fetchPage[T any](p *pageRequest, find func(offset, limit int) ([]T, int, error)) ([]T, int, error) {
	results, n, err := find(p.offset(), p.Size)
	if err != nil || !p.Last {
		return results, n, err
	}
	p.Page = max(1, (n+p.Size-1)/p.Size)
	if p.Page == 1 {
		return results, n, nil
	}
	return find(p.offset(), p.Size)
}

func invalidPage() error { return api.Errorf(api.ENOTFOUND, "Invalid page.") }

// page is DRF's paginated body.
type page[T any] struct {
	Count    int     `json:"count"`
	Next     *string `json:"next"`
	Previous *string `json:"previous"`
	Results  []T     `json:"results"`
}

// newPage builds the body, with next/previous links on the URL the client
// used; a page past the end is a 404.
func newPage[T any](c echo.Context, p pageRequest, count int, results []T) (*page[T], error) {
	if len(results) == 0 && p.Page > 1 {
		return nil, invalidPage()
	}
	if results == nil {
		results = []T{}
	}
	out := &page[T]{Count: count, Results: results}
	if p.offset()+len(results) < count {
		u := pageURL(c, p.Page+1)
		out.Next = &u
	}
	if p.Page > 1 {
		u := pageURL(c, p.Page-1)
		out.Previous = &u
	}
	return out, nil
}

// pageURL is the request's absolute URL with page replaced (removed for
// page 1, as DRF does); query keys are sorted.
func pageURL(c echo.Context, n int) string {
	r := c.Request()
	q := r.URL.Query()
	if n <= 1 {
		q.Del("page")
	} else {
		q.Set("page", strconv.Itoa(n))
	}
	path := state(c).path
	u := url.URL{Path: path}
	s := absoluteURL(c, u.EscapedPath())
	if enc := q.Encode(); enc != "" {
		s += "?" + enc
	}
	return s
}
