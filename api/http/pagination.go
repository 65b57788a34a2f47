package apihttp

import (
	"net/url"
	"strconv"

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
}

func (p pageRequest) offset() int { return (p.Page - 1) * p.Size }

// parsePage reads the page parameters the DRF way: a page that is not a
// positive integer is a 404 "Invalid page."; a bad page_size falls back to the
// default and a large one is cut to the maximum.
func parsePage(q url.Values) (pageRequest, error) {
	p := pageRequest{Page: 1, Size: defaultPageSize}
	if v := q.Get("page_size"); v != "" {
		if n, err := strconv.Atoi(v); err == nil && n > 0 {
			p.Size = min(n, maxPageSize)
		}
	}
	if v := q.Get("page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1<<20 {
			return p, invalidPage()
		}
		p.Page = n
	}
	return p, nil
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
