package apihttp

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// benchGET measures one route through the whole middleware stack and the
// real PostgreSQL store, from parallel clients.
func benchGET(b *testing.B, url string) {
	ts := newTestServer(b, nil)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r := httptest.NewRequest(http.MethodGet, url, nil)
			r.Host = "api.example.com"
			r.RemoteAddr = "127.0.0.1:40000"
			w := httptest.NewRecorder()
			ts.ServeHTTP(w, r)
			if w.Code != 200 {
				b.Fatalf("%s = %d", url, w.Code)
			}
		}
	})
}

func BenchmarkHealth(b *testing.B)           { benchGET(b, "/api/health/") }
func BenchmarkDepartmentList(b *testing.B)   { benchGET(b, "/api/departments/") }
func BenchmarkMunicipalityList(b *testing.B) { benchGET(b, "/api/municipalities/?department=05") }
func BenchmarkMunicipalitySearch(b *testing.B) {
	benchGET(b, "/api/municipalities/?search=san&page_size=20")
}
func BenchmarkMunicipalityView(b *testing.B) { benchGET(b, "/api/municipalities/05001/") }
