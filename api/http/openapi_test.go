package apihttp

import (
	"context"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/isis-project/isis/internal/doctest"
)

// TestOpenAPIMatchesRoutes: the document describes every route the server
// registers, none missing and none extra, and is valid OpenAPI 3.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	ts := newTestServer(t, nil)
	w := ts.do(t, req{URL: "/api/schema/"})
	if w.Code != 200 || !strings.HasPrefix(w.Header().Get("Content-Type"), "application/json") {
		t.Fatalf("GET /api/schema/ = %d", w.Code)
	}
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(w.Body.Bytes())
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("the document is not valid OpenAPI 3: %v", err)
	}
	registered := map[string]bool{}
	for _, r := range ts.Routes() {
		if strings.HasSuffix(r.Path, "/*") && !strings.HasPrefix(r.Path, "/static") && !strings.HasPrefix(r.Path, "/media") {
			continue
		}
		if r.Method == "echo_route_not_found" || r.Name == "echo_route_not_found" {
			continue
		}
		registered[r.Method+" "+openAPIPath(r.Path)] = true
		registered["OPTIONS "+openAPIPath(r.Path)] = true // every route answers OPTIONS (Allow)
	}
	documented := map[string]bool{}
	for p, item := range doc.Paths.Map() {
		if !strings.HasSuffix(p, "/") && !strings.HasSuffix(p, "{path}") {
			// The alias without the trailing slash: the same item.
			slash := doc.Paths.Find(p + "/")
			if slash == nil || item.Extensions["x-isis-alias-of"] != p+"/" || len(item.Operations()) != len(slash.Operations()) {
				t.Errorf("%s is not an alias of %s/", p, p)
			}
			continue
		}
		for method, op := range item.Operations() {
			documented[method+" "+p] = true
			if op.OperationID == "" || op.Summary == "" {
				t.Errorf("%s %s lacks an operationId or summary", method, p)
			}
			if _, ok := op.Responses.Map()["500"]; !ok {
				t.Errorf("%s %s does not document the error envelope on 500", method, p)
			}
			if op.RequestBody != nil {
				for _, code := range []string{"400", "413", "415"} {
					if op.Responses.Value(code) == nil {
						t.Errorf("%s %s takes a body but does not document %s", method, p, code)
					}
				}
			}
			if op.Security == nil {
				t.Errorf("%s %s does not state its security (public: [])", method, p)
			}
			for code, r := range op.Responses.Map() {
				if r.Value.Headers["X-Request-ID"] == nil {
					t.Errorf("%s %s %s does not declare X-Request-ID", method, p, code)
				}
			}
			for _, param := range op.Parameters {
				if param.Value.In == "path" && !strings.Contains(p, "{"+param.Value.Name+"}") {
					t.Errorf("%s %s: path parameter %s not in the path", method, p, param.Value.Name)
				}
			}
		}
	}
	missing, extra := doctest.Diff(registered, documented)
	if len(missing) > 0 || len(extra) > 0 {
		t.Errorf("routes not documented: %v\ndocumented but not routed: %v", missing, extra)
	}
	if len(registered) < 35 {
		t.Errorf("only %d routes seen: the comparison is not looking at the router", len(registered))
	}
	if doc.Components.Schemas["Error"] == nil || doc.Components.Schemas["Error"].Value.Properties["request_id"] == nil {
		t.Error("the error envelope is not described")
	}
}

func TestStaticAssets(t *testing.T) {
	ts := newTestServer(t, nil)
	for _, tc := range []struct {
		url, ctype string
		status     int
	}{
		{"/static/docs/", "text/html", 200},
		{"/static/docs/index.html", "text/html", 200},
		{"/static/docs/init.js", "javascript", 200},
		{"/static/docs/swagger-ui/swagger-ui-bundle.js", "javascript", 200},
		{"/static/docs/swagger-ui/swagger-ui.css", "text/css", 200},
		{"/static/docs", "", 301},
		{"/static/nope.js", "", 404},
		{"/static/../go.mod", "", 404},
		{"/static/docs/../../api.go", "", 404},
	} {
		w := ts.do(t, req{URL: tc.url})
		if w.Code != tc.status || !strings.Contains(w.Header().Get("Content-Type"), tc.ctype) {
			t.Errorf("%s = %d %s", tc.url, w.Code, w.Header().Get("Content-Type"))
		}
		if tc.status == 404 {
			wantError(t, w, 404, "not_found")
		}
	}
	// Another host is refused here too.
	if w := ts.do(t, req{URL: "/static/docs/", Header: map[string]string{"Host": "evil.com"}}); w.Code != 400 {
		t.Errorf("static for a foreign host = %d", w.Code)
	}
}
