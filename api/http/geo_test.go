package apihttp

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/isis-project/isis/api"
	"github.com/isis-project/isis/internal/testdb"
	"github.com/isis-project/isis/internal/wait"
)

type listBody struct {
	Count    int
	Next     *string
	Previous *string
	Results  []map[string]any
}

func (ts *testServer) list(t *testing.T, r req) listBody {
	t.Helper()
	w := ts.do(t, r)
	if w.Code != http.StatusOK {
		t.Fatalf("%s = %d: %s", r.URL, w.Code, w.Body.String())
	}
	m := decode(t, w)
	for _, k := range []string{"count", "next", "previous", "results"} {
		if _, ok := m[k]; !ok {
			t.Fatalf("%s: no %q in %s", r.URL, k, w.Body.String())
		}
	}
	var b listBody
	b.Count = int(m["count"].(float64))
	if s, ok := m["next"].(string); ok {
		b.Next = &s
	}
	if s, ok := m["previous"].(string); ok {
		b.Previous = &s
	}
	for _, r := range m["results"].([]any) {
		b.Results = append(b.Results, r.(map[string]any))
	}
	return b
}

func names(rows []map[string]any) []string {
	var out []string
	for _, r := range rows {
		out = append(out, r["name"].(string))
	}
	return out
}

func TestDepartments(t *testing.T) {
	ts := newTestServer(t, nil)
	b := ts.list(t, req{URL: "/api/departments/"})
	if b.Count != 33 || len(b.Results) != 33 || b.Next != nil || b.Previous != nil {
		t.Fatalf("departments: count %d, %d results, next %v", b.Count, len(b.Results), b.Next)
	}
	first := b.Results[0]
	if first["code"] != "05" || first["name"] != "Antioquia" || first["municipality_count"] != float64(125) || len(first) != 3 {
		t.Errorf("first department = %v", first)
	}
	for _, tc := range []struct {
		query string
		want  []string
	}{
		{"search=bogota", []string{"Bogotá, D.C."}},
		{"search=BOGOTÁ", []string{"Bogotá, D.C."}},
		{"search=atlantico", []string{"Atlántico"}},
		{"search=norte+santander", []string{"Norte de Santander"}},
		{"search=05", []string{"Antioquia"}},
		{"search=zzz", nil},
		{"search=%25", nil},
		{"search=_", nil},
		{"search='+OR+1%3D1+--", nil},
		{"search=%27%3B+DROP+TABLE+departments%3B+--", nil},
	} {
		got := names(ts.list(t, req{URL: "/api/departments/?" + tc.query}).Results)
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("%s = %v, want %v", tc.query, got, tc.want)
		}
	}
	byName := names(ts.list(t, req{URL: "/api/departments/?ordering=name"}).Results)
	if byName[0] != "Amazonas" || byName[1] != "Antioquia" || byName[2] != "Arauca" || byName[32] != "Vichada" {
		t.Errorf("ordering=name = %v", byName)
	}
	desc := ts.list(t, req{URL: "/api/departments/?ordering=-code"}).Results
	if desc[0]["code"] != "99" {
		t.Errorf("ordering=-code starts with %v", desc[0])
	}
	ignored := ts.list(t, req{URL: "/api/departments/?ordering=password;drop"}).Results
	if ignored[0]["code"] != "05" {
		t.Errorf("unknown ordering not ignored: %v", ignored[0])
	}

	w := ts.do(t, req{URL: "/api/departments/11/"})
	if m := decode(t, w); w.Code != 200 || m["name"] != "Bogotá, D.C." || m["municipality_count"] != float64(1) {
		t.Errorf("department 11 = %d %v", w.Code, m)
	}
	wantError(t, ts.do(t, req{URL: "/api/departments/00/"}), 404, "not_found")
	wantError(t, ts.do(t, req{URL: "/api/departments/x'--/"}), 404, "not_found")
}

func TestMunicipalities(t *testing.T) {
	ts := newTestServer(t, nil)
	all := ts.list(t, req{URL: "/api/municipalities/"})
	if all.Count != 1122 || len(all.Results) != 50 || all.Previous != nil || all.Next == nil {
		t.Fatalf("municipalities: count %d, %d results", all.Count, len(all.Results))
	}
	if *all.Next != "http://api.example.com/api/municipalities/?page=2" {
		t.Errorf("next = %s", *all.Next)
	}
	m := all.Results[0]
	if m["code"] != "05001" || m["name"] != "Medellín" || m["department_code"] != "05" || m["department_name"] != "Antioquia" || len(m) != 4 {
		t.Errorf("first municipality = %v", m)
	}

	ant := ts.list(t, req{URL: "/api/municipalities/?department=05"})
	if ant.Count != 125 {
		t.Errorf("department=05 count = %d", ant.Count)
	}
	for _, tc := range []struct{ query, want string }{
		{"search=medellin", "Medellín"},
		{"search=MEDELLÍN", "Medellín"},
		{"search=bogota", "Bogotá, D.C."},
		{"search=cucuta", "San José de Cúcuta"},
		{"search=itagui", "Itagüí"},
		{"search=cali&department=76", "Santiago de Cali"},
		{"search=05001", "Medellín"},
	} {
		b := ts.list(t, req{URL: "/api/municipalities/?" + tc.query})
		found := false
		for _, n := range names(b.Results) {
			found = found || n == tc.want
		}
		if !found {
			t.Errorf("%s: %v lacks %s", tc.query, names(b.Results), tc.want)
		}
	}
	if b := ts.list(t, req{URL: "/api/municipalities/?search=medellin&department=08"}); b.Count != 0 {
		t.Errorf("medellin in 08 = %v", names(b.Results))
	}
	wantError(t, ts.do(t, req{URL: "/api/municipalities/?department=abc"}), 400, "invalid")
	wantError(t, ts.do(t, req{URL: "/api/municipalities/?department=00"}), 400, "invalid")

	nested := ts.list(t, req{URL: "/api/departments/05/municipalities/?page_size=500"})
	if nested.Count != 125 || len(nested.Results) != 125 {
		t.Errorf("nested 05: %d/%d", nested.Count, len(nested.Results))
	}
	wantError(t, ts.do(t, req{URL: "/api/departments/00/municipalities/"}), 404, "not_found")

	w := ts.do(t, req{URL: "/api/municipalities/05001"})
	if got := decode(t, w); got["name"] != "Medellín" {
		t.Errorf("05001 = %v", got)
	}
	wantError(t, ts.do(t, req{URL: "/api/municipalities/99999/"}), 404, "not_found")
}

func TestPagination(t *testing.T) {
	ts := newTestServer(t, nil)
	p2 := ts.list(t, req{URL: "/api/municipalities/?department=05&page=2&page_size=30&search=a"})
	if p2.Previous == nil || p2.Next == nil {
		t.Fatalf("page 2 lacks links: %+v", p2)
	}
	// previous of page 2 drops page, keeps the other parameters, sorted.
	if *p2.Previous != "http://api.example.com/api/municipalities/?department=05&page_size=30&search=a" {
		t.Errorf("previous = %s", *p2.Previous)
	}
	if *p2.Next != "http://api.example.com/api/municipalities/?department=05&page=3&page_size=30&search=a" {
		t.Errorf("next = %s", *p2.Next)
	}
	// Walk every page following next links; each municipality exactly once.
	seen := map[string]bool{}
	u := "/api/municipalities/?department=05&page_size=40"
	pages := 0
	for u != "" {
		b := ts.list(t, req{URL: u})
		for _, r := range b.Results {
			code := r["code"].(string)
			if seen[code] {
				t.Fatalf("%s twice", code)
			}
			seen[code] = true
		}
		u = ""
		if b.Next != nil {
			pu, _ := url.Parse(*b.Next)
			u = pu.RequestURI()
		}
		pages++
	}
	if len(seen) != 125 || pages != 4 {
		t.Errorf("walked %d municipalities in %d pages, want 125 in 4", len(seen), pages)
	}
	last := ts.list(t, req{URL: "/api/municipalities/?department=05&page_size=40&page=4"})
	if len(last.Results) != 5 || last.Next != nil {
		t.Errorf("last page: %d results, next %v", len(last.Results), last.Next)
	}
	for _, bad := range []string{"page=5&page_size=40", "page=0", "page=-1", "page=abc", "page=999999999999"} {
		wantError(t, ts.do(t, req{URL: "/api/municipalities/?department=05&" + bad}), 404, "not_found")
	}
	if b := ts.list(t, req{URL: "/api/municipalities/?page_size=100000"}); len(b.Results) != 500 {
		t.Errorf("page_size cap: %d results", len(b.Results))
	}
	if b := ts.list(t, req{URL: "/api/municipalities/?page_size=abc"}); len(b.Results) != 50 {
		t.Errorf("bad page_size: %d results", len(b.Results))
	}
	if b := ts.list(t, req{URL: "/api/municipalities/?search=zzzz"}); b.Count != 0 || b.Results == nil && false {
		t.Errorf("empty search = %+v", b)
	}
	// Links honour the scheme and host a trusted proxy reports, not an untrusted one.
	b := ts.list(t, req{URL: "/api/municipalities/", Header: map[string]string{
		"X-Forwarded-Proto": "https", "X-Forwarded-Host": "api.example.org"}})
	if !strings.HasPrefix(*b.Next, "https://api.example.org/api/municipalities/") {
		t.Errorf("next behind proxy = %s", *b.Next)
	}
	b = ts.list(t, req{URL: "/api/municipalities", Remote: "203.0.113.9:1", Header: map[string]string{
		"X-Forwarded-Proto": "https", "X-Forwarded-Host": "evil.com"}})
	if *b.Next != "http://api.example.com/api/municipalities?page=2" {
		t.Errorf("next from untrusted peer = %s", *b.Next)
	}
	// A forwarded host must itself be allowed.
	wantError(t, ts.do(t, req{URL: "/api/municipalities/", Header: map[string]string{"X-Forwarded-Host": "evil.com"}}), 400, "bad_request")
}

func TestETag(t *testing.T) {
	ts := newTestServer(t, nil)
	for _, u := range []string{"/api/departments/", "/api/departments/05/", "/api/municipalities/?department=05", "/api/municipalities/05001/", "/api/departments/05/municipalities/"} {
		w := ts.do(t, req{URL: u})
		etag := w.Header().Get("ETag")
		if etag == "" || !strings.HasPrefix(w.Header().Get("Cache-Control"), "public, max-age=") {
			t.Fatalf("%s: ETag %q, Cache-Control %q", u, etag, w.Header().Get("Cache-Control"))
		}
		w = ts.do(t, req{URL: u, Header: map[string]string{"If-None-Match": etag}})
		if w.Code != http.StatusNotModified || w.Body.Len() != 0 || w.Header().Get("ETag") != etag {
			t.Errorf("%s If-None-Match: %d, body %q", u, w.Code, w.Body.String())
		}
		if w := ts.do(t, req{URL: u, Header: map[string]string{"If-None-Match": `"other", W/` + etag}}); w.Code != 304 {
			t.Errorf("%s weak match in list: %d", u, w.Code)
		}
		if w := ts.do(t, req{URL: u, Header: map[string]string{"If-None-Match": `"other"`}}); w.Code != 200 {
			t.Errorf("%s other etag: %d", u, w.Code)
		}
	}
	// A staff write through the API changes the ETag at once.
	mustUser(t, ts, "staff@example.com", true)
	staff, _ := login(t, ts, "staff@example.com", goodPassword)
	before := ts.do(t, req{URL: "/api/departments/"}).Header().Get("ETag")
	w := ts.do(t, req{Method: "PATCH", URL: "/api/departments/05/", Header: bearer(staff), Body: `{"name":"Antioquia (renamed)"}`})
	if w.Code != 200 {
		t.Fatalf("PATCH = %d", w.Code)
	}
	w = ts.do(t, req{URL: "/api/departments/", Header: map[string]string{"If-None-Match": before}})
	if w.Code != 200 || w.Header().Get("ETag") == before || !strings.Contains(w.Body.String(), "Antioquia (renamed)") {
		t.Errorf("ETag unchanged after a staff write: %d", w.Code)
	}
}

// TestGeoCacheFollowsOtherWriters: a write that does not go through this
// server (another replica, psql, a migration) reaches the cache through
// PostgreSQL's notification within moments, never leaving it stale.
func TestGeoCacheFollowsOtherWriters(t *testing.T) {
	ts := newTestServer(t, nil)
	wait.For(t, "the cache to come on", func() bool { return ts.geo.enabled.Load() })
	first := ts.do(t, req{URL: "/api/municipalities/05001/"})
	if first.Code != 200 {
		t.Fatal(first.Code)
	}
	if a := ts.geo.get([]byte(cacheKey2(ts, "/api/municipalities/05001/"))); a == nil {
		t.Fatal("the answer was not cached: the test would prove nothing")
	}
	if _, err := ts.DB.Exec(`UPDATE municipalities SET name = 'Medellín (psql)' WHERE code = '05001'`); err != nil {
		t.Fatal(err)
	}
	wait.For(t, "the renamed municipality", func() bool {
		return strings.Contains(ts.do(t, req{URL: "/api/municipalities/05001/"}).Body.String(), "Medellín (psql)")
	})
}

func cacheKey2(ts *testServer, path string) string { return "http://api.example.com" + path + "?" }

// TestDatabaseDown stops PostgreSQL under a running server: ready and lists
// answer 503 quickly, and both recover by themselves when it is back.
func TestDatabaseDown(t *testing.T) {
	pg, db := testdb.OwnServer(t)
	ts := newTestServerDB(t, db, nil)
	for _, u := range []string{"/api/ready/", "/api/departments/", "/api/municipalities/?department=05"} {
		if w := ts.do(t, req{URL: u}); w.Code != 200 {
			t.Fatalf("%s before stop = %d", u, w.Code)
		}
	}
	pg.Stop()
	// The cache turns off once the notification connection drops (it cannot
	// know what it missed): then every list goes to the database.
	wait.For(t, "the cache to turn off", func() bool { return !ts.geo.enabled.Load() })
	for _, u := range []string{"/api/ready/", "/api/departments/", "/api/municipalities/?department=05", "/api/municipalities/05001/"} {
		start := time.Now()
		w := ts.do(t, req{URL: u})
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("%s took %s while the database is down", u, took)
		}
		if u == "/api/ready/" {
			m := decode(t, w)
			if w.Code != 503 || m["database"] != "unavailable" || m["status"] != "unavailable" {
				t.Errorf("ready while down = %d %v", w.Code, m)
			}
			continue
		}
		body := wantError(t, w, 503, "service_unavailable")
		if s := fmt.Sprint(body); strings.Contains(s, "SELECT") || strings.Contains(s, "dial") || strings.Contains(s, "127.0.0.1") {
			t.Errorf("503 body leaks detail: %v", body)
		}
		if w.Header().Get("Retry-After") == "" {
			t.Errorf("%s: 503 without Retry-After", u)
		}
	}
	if err := pg.Start(); err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"/api/ready/", "/api/departments/", "/api/municipalities/?department=05"} {
		deadline := time.Now().Add(10 * time.Second)
		for {
			w := ts.do(t, req{URL: u})
			if w.Code == 200 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s did not recover: %d %s", u, w.Code, w.Body.String())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// countingGeo counts the municipality list loads that reach PostgreSQL,
// each taking a little longer, as under load.
type countingGeo struct {
	api.GeoService
	loads atomic.Int32
}

func (g *countingGeo) FindMunicipalities(ctx context.Context, f api.GeoFilter) ([]*api.Municipality, int, error) {
	g.loads.Add(1)
	time.Sleep(50 * time.Millisecond)
	return g.GeoService.FindMunicipalities(ctx, f)
}

// TestGeoCacheOneLoadPerMiss: many clients asking for the same cold page at
// once cost the database one query, and all get the answer.
func TestGeoCacheOneLoadPerMiss(t *testing.T) {
	ts := newTestServer(t, nil)
	g := &countingGeo{GeoService: ts.GeoService}
	ts.GeoService = g
	wait.For(t, "the cache to come on", func() bool { return ts.geo.enabled.Load() })
	var wg sync.WaitGroup
	codes := make([]int, 32)
	for i := range codes {
		wg.Go(func() { codes[i] = ts.do(t, req{URL: "/api/municipalities/?department=05"}).Code })
	}
	wg.Wait()
	for i, c := range codes {
		if c != 200 {
			t.Errorf("request %d = %d", i, c)
		}
	}
	if n := g.loads.Load(); n != 1 {
		t.Errorf("%d loads for one cold page, want 1", n)
	}
}

// TestContentLength: JSON answers declare their length (net/http would
// otherwise chunk every body over 2 KiB), HEAD included.
func TestContentLength(t *testing.T) {
	ts := newTestServer(t, nil)
	for _, u := range []string{"/api/municipalities/?department=05", "/api/departments/", "/api/health/", "/api/schema/"} {
		w := ts.do(t, req{URL: u})
		if got := w.Header().Get("Content-Length"); got != strconv.Itoa(w.Body.Len()) || w.Body.Len() == 0 {
			t.Errorf("GET %s: Content-Length %q for %d bytes", u, got, w.Body.Len())
		}
		h := ts.do(t, req{Method: "HEAD", URL: u})
		if got := h.Header().Get("Content-Length"); got != strconv.Itoa(w.Body.Len()) {
			t.Errorf("HEAD %s: Content-Length %q, GET has %d bytes", u, got, w.Body.Len())
		}
	}
}
