package apihttp

import (
	"net/http/httptest"
	"testing"
)

// FuzzParsePage: any query gives a 1-based page and a size within bounds,
// or an error.
func FuzzParsePage(f *testing.F) {
	f.Add("page=2&page_size=50")
	f.Add("page=-1&page_size=0")
	f.Add("page=99999999999999999999&page_size=1e9")
	f.Fuzz(func(t *testing.T, q string) {
		r := httptest.NewRequest("GET", "/", nil)
		r.URL.RawQuery = q
		p, err := parsePage(r.URL.Query())
		if err != nil {
			return
		}
		if p.Page < 1 || p.Size < 1 || p.Size > maxPageSize || p.offset() < 0 {
			t.Fatalf("parsePage(%q) = %+v", q, p)
		}
	})
}
