package apihttp

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
)

// The document and the server agree: every request the API tests make
// through ts.do, and its answer, is checked against the OpenAPI document the
// server serves (kin-openapi's openapi3filter, a validating proxy in the
// test helper):
//   - a request the document accepts gets an answer it describes: a
//     documented status, its body schema and its required headers;
//   - a request the document refuses (bad parameter, body, media type,
//     method or path) is refused by the server too, with a 4xx that is the
//     error envelope (a test may mark a request as using a leniency of
//     DRF's fields on purpose: req.DocLenient).
// CORS preflights are the CORS layer's, not API
// operations, and are not checked.

type openAPIChecker struct {
	doc    *openapi3.T
	router routers.Router
}

var openAPICheck = sync.OnceValues(func() (*openAPIChecker, error) {
	b, err := openAPIJSON()
	if err != nil {
		return nil, err
	}
	doc, err := openapi3.NewLoader().LoadFromData(b)
	if err != nil {
		return nil, err
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, err
	}
	router, err := legacy.NewRouter(doc)
	if err != nil {
		return nil, err
	}
	return &openAPIChecker{doc: doc, router: router}, nil
})

// checkOpenAPI validates one exchange of ts.do: hr is a copy of the request
// (its body still unread), w the answer.
func checkOpenAPI(t testing.TB, hr *http.Request, w *httptest.ResponseRecorder, lenient bool) {
	t.Helper()
	if err := openAPIDisagreement(hr, w, lenient); err != nil {
		t.Errorf("OpenAPI document and server disagree on %s %s -> %d: %v\nbody: %s", hr.Method, hr.URL, w.Code, err, truncate(w.Body.String(), 500))
	}
}

// lenient: the request uses a leniency of DRF's fields the document does
// not advertise (a number where a string goes): the answer is still checked.
func openAPIDisagreement(hr *http.Request, w *httptest.ResponseRecorder, lenient bool) error {
	if hr.Method == http.MethodOptions && hr.Header.Get("Access-Control-Request-Method") != "" {
		return nil // a CORS preflight
	}
	chk, err := openAPICheck()
	if err != nil {
		return fmt.Errorf("the document: %w", err)
	}
	// Route on the path as sent (the document has each path with and
	// without its trailing slash), the file routes on one segment.
	lookup := hr.Clone(context.Background())
	lookup.URL.Scheme, lookup.URL.Host = "", ""
	if p := lookup.URL.Path; strings.HasPrefix(p, "/static/") || strings.HasPrefix(p, "/media/") {
		lookup.URL.Path = p[:strings.Index(p[1:], "/")+2] + "file"
	}
	lookup.URL.RawPath = ""
	route, params, err := chk.router.FindRoute(lookup)
	if err != nil {
		// No such operation: the server must refuse it as well (the
		// routes tests add, /api/_…, aside).
		if strings.HasPrefix(hr.URL.Path, "/api/_") {
			return nil
		}
		if w.Code < 400 || w.Code >= 500 {
			return fmt.Errorf("not in the document (%v) but answered %d", err, w.Code)
		}
		return checkEnvelope(chk, hr, w)
	}
	opts := &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, IncludeResponseStatus: true,
		MultiError: true}
	in := &openapi3filter.RequestValidationInput{Request: lookup, PathParams: params, Route: route, Options: opts}
	if reqErr := openapi3filter.ValidateRequest(context.Background(), in); reqErr != nil && !lenient {
		if w.Code < 400 || w.Code >= 500 {
			return fmt.Errorf("the document refuses the request (%v) but the server answered %d", reqErr, w.Code)
		}
		return checkEnvelope(chk, hr, w)
	}
	if route.Path == "/static/{path}" || route.Path == "/media/{path}" {
		opts.ExcludeResponseBody = true // files, of any type
	}
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: w.Code, Header: w.Header(), Options: opts,
		Body: io.NopCloser(bytes.NewReader(w.Body.Bytes()))}
	if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
		return err
	}
	// The probes answer 503 with their own bodies (Ready, Draining).
	if probe := strings.TrimSuffix(route.Operation.OperationID, "NoSlash"); w.Code >= 400 && hr.Method != http.MethodHead &&
		!(w.Code == http.StatusServiceUnavailable && (probe == "ready" || probe == "health")) {
		return checkEnvelope(chk, hr, w)
	}
	return nil
}

// checkEnvelope checks an error answer against the Error schema and its
// X-Request-ID.
func checkEnvelope(chk *openAPIChecker, hr *http.Request, w *httptest.ResponseRecorder) error {
	if w.Header().Get("X-Request-ID") == "" {
		return fmt.Errorf("no X-Request-ID")
	}
	if w.Code == http.StatusMethodNotAllowed && w.Header().Get("Allow") == "" {
		return fmt.Errorf("405 without Allow")
	}
	if hr.Method == http.MethodHead {
		return nil
	}
	var v any
	if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil {
		return fmt.Errorf("error answer is not JSON: %w", err)
	}
	return chk.doc.Components.Schemas["Error"].Value.VisitJSON(v)
}

// TestOpenAPICheckCatches: the check in ts.do is not a no-op: answers the
// document does not describe are caught.
func TestOpenAPICheckCatches(t *testing.T) {
	ok := func(status int, ctype, body string, hdr ...string) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		w.Header().Set("X-Request-ID", "r1")
		if ctype != "" {
			w.Header().Set("Content-Type", ctype)
		}
		for i := 0; i+1 < len(hdr); i += 2 {
			w.Header().Set(hdr[i], hdr[i+1])
		}
		w.WriteHeader(status)
		w.Body.WriteString(body)
		return w
	}
	get := func(url string) *http.Request { return httptest.NewRequest("GET", url, nil) }
	profile := `{"id":1,"user_id":1,"phone":"","bio":"","birth_date":null,"department":null,"municipality":null,"avatar_url":null,"updated_at":"2026-01-01T00:00:00Z"}`
	for _, tc := range []struct {
		name  string
		r     *http.Request
		w     *httptest.ResponseRecorder
		agree bool
	}{
		{"a profile with null places", get("/api/profiles/1/"), ok(200, "application/json", profile), true},
		{"without the trailing slash", get("/api/profiles/1"), ok(200, "application/json", profile), true},
		{"a field of the wrong type", get("/api/profiles/1/"), ok(200, "application/json", strings.Replace(profile, `"id":1`, `"id":"1"`, 1)), false},
		{"no X-Request-ID", get("/api/health/"), func() *httptest.ResponseRecorder {
			w := ok(200, "application/json", `{"status":"ok","version":"x"}`)
			w.Header().Del("X-Request-ID")
			return w
		}(), false},
		{"an undocumented status", get("/api/health/"), ok(418, "application/json", `{"detail":"x","code":"invalid","request_id":"r1"}`), false},
		{"a geography read without its ETag", get("/api/departments/05/"), ok(200, "application/json", `{"code":"05","name":"A","municipality_count":1}`), false},
		{"an id that is no integer, accepted", get("/api/users/abc/"), ok(200, "application/json", `{}`), false},
		{"an id that is no integer, refused", get("/api/users/abc/"), ok(404, "application/json", `{"detail":"Not found.","code":"not_found","request_id":"r1"}`), true},
		{"page=last", get("/api/departments/?page=last&page_size=1000"), ok(200, "application/json", `{"count":0,"next":null,"previous":null,"results":[]}`,
			"ETag", `"x"`, "Cache-Control", "public"), true},
		{"an undocumented method answered", httptest.NewRequest("DELETE", "/api/users/me/", nil), ok(204, "", ""), false},
		{"an undocumented method refused without Allow", httptest.NewRequest("DELETE", "/api/users/me/", nil),
			ok(405, "application/json", `{"detail":"x","code":"method_not_allowed","request_id":"r1"}`), false},
		{"an error that is not the envelope", get("/api/users/7/"), ok(404, "application/json", `{"error":"x"}`), false},
	} {
		err := openAPIDisagreement(tc.r, tc.w, false)
		if (err == nil) != tc.agree {
			t.Errorf("%s: disagreement = %v, want agreement %v", tc.name, err, tc.agree)
		}
	}
}
