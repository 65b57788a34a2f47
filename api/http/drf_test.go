package apihttp

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// The answers below are what the DRF system isis replaces gives for the
// same requests (taken from the reference rebuild, ../shared/django-reference,
// request by request): status, detail and errors, in isis's envelope.

type drfCase struct {
	who    string // "", "user" or "staff"
	method string
	url    string
	body   string
	status int
	detail string              // "" to skip
	errors map[string][]string // nil: no errors key
}

func (ts *testServer) runDRF(t *testing.T, cases []drfCase, tokens map[string]string) {
	t.Helper()
	for _, tc := range cases {
		r := req{Method: tc.method, URL: tc.url, Body: tc.body, DocLenient: tc.status < 400}
		if tc.who != "" {
			r.Header = bearer(tokens[tc.who])
		}
		if tc.body != "" && !strings.HasPrefix(tc.body, "{") { // a body that is not an object
			r.Header = merge(r.Header, map[string]string{"Content-Type": "application/json"})
		}
		w := ts.do(t, r)
		name := tc.who + " " + tc.method + " " + tc.url + " " + tc.body
		if w.Code != tc.status {
			t.Errorf("%s = %d, want %d; %s", name, w.Code, tc.status, w.Body.String())
			continue
		}
		if tc.status < 400 {
			continue
		}
		var env struct {
			Detail string              `json:"detail"`
			Errors map[string][]string `json:"errors"`
		}
		if err := json.Unmarshal(w.Body.Bytes(), &env); err != nil {
			t.Errorf("%s: %v: %s", name, err, w.Body.String())
			continue
		}
		if tc.detail != "" && env.Detail != tc.detail {
			t.Errorf("%s: detail = %q, want %q", name, env.Detail, tc.detail)
		}
		if !reflect.DeepEqual(env.Errors, tc.errors) {
			t.Errorf("%s: errors = %v, want %v", name, env.Errors, tc.errors)
		}
	}
}

func merge(a, b map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

type errs = map[string][]string

const (
	notNull   = "This field may not be null."
	notString = "Not a valid string."
	dateFmt   = "Date has wrong format. Use one of these formats instead: YYYY-MM-DD."
)

// TestBodiesLikeDRF: null where a field may not be null, a body that is
// not an object, every field of the wrong type reported at once, with DRF's
// messages.
func TestBodiesLikeDRF(t *testing.T) {
	ts := newTestServer(t, nil)
	mustUser(t, ts, "ana@example.com", false)
	mustUser(t, ts, "staff@example.com", true)
	tok, _ := login(t, ts, "ana@example.com", goodPassword)
	staff, _ := login(t, ts, "staff@example.com", goodPassword)
	notDict := func(kind string) errs {
		return errs{"non_field_errors": {"Invalid data. Expected a dictionary, but got " + kind + "."}}
	}
	ts.runDRF(t, []drfCase{
		{"user", "PATCH", "/api/users/me/", `{"first_name": null}`, 400, "Invalid input.", errs{"first_name": {notNull}}},
		{"user", "PATCH", "/api/users/me/", `[]`, 400, "Invalid data. Expected a dictionary, but got list.", notDict("list")},
		{"user", "PATCH", "/api/users/me/", `null`, 400, "No data provided", errs{"non_field_errors": {"No data provided"}}},
		{"user", "PATCH", "/api/users/me/", `"x"`, 400, "", notDict("str")},
		{"user", "PATCH", "/api/users/me/", `5`, 400, "", notDict("int")},
		{"user", "PATCH", "/api/users/me/", `5.5`, 400, "", notDict("float")},
		{"user", "PATCH", "/api/users/me/", `true`, 400, "", notDict("bool")},
		{"user", "PATCH", "/api/users/me/", `{"first_name": true, "last_name": {}}`, 400, "Invalid input.", errs{"first_name": {notString}, "last_name": {notString}}},
		{"user", "PATCH", "/api/users/me/", `{"first_name": 5, "last_name": []}`, 400, "", errs{"last_name": {notString}}},
		{"user", "PATCH", "/api/users/me/", `{"first_name": 5.5}`, 200, "", nil}, // a CharField takes a number as its text
		{"user", "PATCH", "/api/profiles/me/", `{"phone": null, "bio": null, "birth_date": null, "department_code": null, "municipality_code": null}`, 400, "",
			errs{"phone": {notNull}, "bio": {notNull}}},
		{"user", "PATCH", "/api/profiles/me/", `{"phone": 5, "bio": [], "birth_date": 5, "department_code": 5, "municipality_code": []}`, 400, "",
			errs{"phone": {"Enter a valid phone number."}, "bio": {notString}, "birth_date": {dateFmt},
				"department_code": {"Unknown department code 5."}, "municipality_code": {"Unknown municipality code []."}}},
		{"user", "PATCH", "/api/profiles/me/", `{"phone": true, "bio": {}, "birth_date": true, "department_code": true, "municipality_code": {}}`, 400, "",
			errs{"phone": {notString}, "bio": {notString}, "birth_date": {dateFmt},
				"department_code": {"Unknown department code True."}, "municipality_code": {"Unknown municipality code {}."}}},
		{"user", "PATCH", "/api/profiles/me/", `{"department_code": "99", "municipality_code": "99999"}`, 400, "", errs{"municipality_code": {"Unknown municipality code 99999."}}},
		{"user", "PATCH", "/api/profiles/me/", `{"department_code": "05", "municipality_code": "08001"}`, 400, "", errs{"municipality_code": {"Municipality 08001 does not belong to department 05."}}},
		{"user", "PATCH", "/api/profiles/me/", `{"birth_date": ""}`, 400, "", errs{"birth_date": {dateFmt}}},
		{"user", "PATCH", "/api/profiles/me/", `{"phone": "", "birth_date": null, "department_code": "", "municipality_code": ""}`, 200, "", nil},
		{"user", "PATCH", "/api/profiles/me/", `[]`, 400, "", notDict("list")},
		{"user", "POST", "/api/users/me/password/", `{"old_password": null, "new_password": null}`, 400, "", errs{"old_password": {notNull}, "new_password": {notNull}}},
		{"user", "POST", "/api/users/me/password/", `{"old_password": 5, "new_password": []}`, 400, "",
			errs{"old_password": {"Your old password was entered incorrectly."}, "new_password": {notString}}},
		{"", "POST", "/api/token/", `{"email": null, "password": null}`, 400, "", errs{"email": {notNull}, "password": {notNull}}},
		{"", "POST", "/api/token/", `{"email": 5, "password": []}`, 400, "", errs{"password": {notString}}},
		{"", "POST", "/api/token/", `{"email": "ana@example.com"}`, 400, "", errs{"password": {"This field is required."}}},
		{"", "POST", "/api/token/", `null`, 400, "", errs{"non_field_errors": {"No data provided"}}},
		{"", "POST", "/api/token/refresh/", `{"refresh": null}`, 400, "", errs{"refresh": {notNull}}},
		{"", "POST", "/api/token/refresh/", `{"refresh": 5}`, 401, "Token is invalid or expired", nil},
		{"", "POST", "/api/token/refresh/", `{"refresh": []}`, 400, "", errs{"refresh": {notString}}},
		{"", "POST", "/api/token/refresh/", `[]`, 400, "", notDict("list")},
		{"", "POST", "/api/token/verify/", `{"token": null}`, 400, "", errs{"token": {notNull}}},
		{"", "POST", "/api/token/blacklist/", `{"refresh": null}`, 400, "", errs{"refresh": {notNull}}},
		{"", "POST", "/api/auth/register/", `{"email": null, "password": null, "first_name": null}`, 400, "",
			errs{"email": {notNull}, "password": {notNull}, "first_name": {notNull}}},
		{"", "POST", "/api/auth/register/", `{"email": 5, "password": [], "first_name": {}, "last_name": true}`, 400, "",
			errs{"email": {"Enter a valid email address."}, "password": {notString}, "first_name": {notString}, "last_name": {notString}}},
		{"", "POST", "/api/auth/register/", `[]`, 400, "", notDict("list")},
		{"staff", "PATCH", "/api/users/1/", `{"is_staff": "maybe", "is_active": null, "first_name": null}`, 400, "",
			errs{"is_staff": {"Must be a valid boolean."}, "is_active": {notNull}, "first_name": {notNull}}},
		{"staff", "PATCH", "/api/users/1/", `{"is_staff": "no", "is_active": 1}`, 200, "", nil},
		{"staff", "POST", "/api/departments/", `{"code": null, "name": []}`, 400, "", errs{"code": {notNull}, "name": {notString}}},
		{"staff", "POST", "/api/municipalities/", `{"code": "02999", "name": "X", "department_code": "02"}`, 400, "", errs{"department_code": {"Unknown department code 02."}}},
	}, map[string]string{"user": tok, "staff": staff})
}

// TestMethodNotAllowedLikeDRF: every route answers its unsupported methods
// with 405 and Allow (after the permission checks DRF makes first); a path
// without parameters is never read as one with them ("me" as an id); OPTIONS
// answers with Allow.
func TestMethodNotAllowedLikeDRF(t *testing.T) {
	ts := newTestServer(t, nil)
	mustUser(t, ts, "ana@example.com", false)
	mustUser(t, ts, "staff@example.com", true)
	mustUser(t, ts, "bob@example.com", false) // id 3, deactivated by the DELETEs
	tok, _ := login(t, ts, "ana@example.com", goodPassword)
	staff, _ := login(t, ts, "staff@example.com", goodPassword)

	// The methods each route answers (the contract), in DRF's Allow order,
	// with the URL tried for it.
	table := []struct{ route, url, allow string }{
		{"/api", "/api/", "GET, HEAD, OPTIONS"},
		{"/api/health", "/api/health/", "GET, HEAD, OPTIONS"},
		{"/api/ready", "/api/ready/", "GET, HEAD, OPTIONS"},
		{"/api/schema", "/api/schema/", "GET, HEAD, OPTIONS"},
		{"/api/token", "/api/token/", "POST, OPTIONS"},
		{"/api/token/refresh", "/api/token/refresh/", "POST, OPTIONS"},
		{"/api/token/verify", "/api/token/verify/", "POST, OPTIONS"},
		{"/api/token/blacklist", "/api/token/blacklist/", "POST, OPTIONS"},
		{"/api/auth/register", "/api/auth/register/", "POST, OPTIONS"},
		{"/api/auth/google", "/api/auth/google/", "POST, OPTIONS"},
		{"/api/auth/google/link", "/api/auth/google/link/", "POST, DELETE, OPTIONS"},
		{"/api/users", "/api/users/", "GET, HEAD, OPTIONS"},
		{"/api/users/me", "/api/users/me/", "GET, PUT, PATCH, HEAD, OPTIONS"},
		{"/api/users/me/password", "/api/users/me/password/", "POST, OPTIONS"},
		{"/api/users/:id", "/api/users/3/", "GET, PUT, PATCH, DELETE, HEAD, OPTIONS"},
		{"/api/profiles/me", "/api/profiles/me/", "GET, PUT, PATCH, HEAD, OPTIONS"},
		{"/api/profiles/me/avatar", "/api/profiles/me/avatar/", "POST, PUT, DELETE, OPTIONS"},
		{"/api/profiles/:id", "/api/profiles/1/", "GET, HEAD, OPTIONS"},
		{"/api/departments", "/api/departments/", "GET, POST, HEAD, OPTIONS"},
		{"/api/departments/:code", "/api/departments/05/", "GET, PUT, PATCH, DELETE, HEAD, OPTIONS"},
		{"/api/departments/:code/municipalities", "/api/departments/05/municipalities/", "GET, HEAD, OPTIONS"},
		{"/api/municipalities", "/api/municipalities/", "GET, POST, HEAD, OPTIONS"},
		{"/api/municipalities/:code", "/api/municipalities/05001/", "GET, PUT, PATCH, DELETE, HEAD, OPTIONS"},
	}
	known := map[string]bool{}
	for _, r := range table {
		known[r.route] = true
	}
	for _, route := range ts.Routes() {
		if strings.HasPrefix(route.Path, "/api") && !known[route.Path] {
			t.Errorf("route %s %s is not in the table of this test", route.Method, route.Path)
		}
	}
	methods := []string{"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE"}
	for _, r := range table {
		path, want := r.url, r.allow
		allowed := map[string]bool{}
		for _, m := range strings.Split(want, ", ") {
			allowed[m] = true
		}
		for _, m := range methods {
			for _, p := range []string{path, strings.TrimSuffix(path, "/")} {
				w := ts.do(t, req{Method: m, URL: p, Header: bearer(staff)})
				if got := w.Header().Get("Allow"); got != want {
					t.Errorf("%s %s: Allow = %q, want %q (status %d)", m, p, got, want, w.Code)
				}
				switch {
				case m == "OPTIONS":
					if w.Code != 200 {
						t.Errorf("OPTIONS %s = %d", p, w.Code)
					}
				case allowed[m]:
					if w.Code == 405 {
						t.Errorf("%s %s = 405 though allowed", m, p)
					}
				default:
					if m == "HEAD" { // no body
						if w.Code != 405 {
							t.Errorf("HEAD %s = %d, want 405", p, w.Code)
						}
						continue
					}
					if e := wantError(t, w, 405, "method_not_allowed"); e["detail"] != `Method "`+m+`" not allowed.` {
						t.Errorf("%s %s: detail %v", m, p, e["detail"])
					}
				}
			}
		}
	}
	// As DRF: permissions before the method: 401 without a token on the
	// account routes, 403 for non-staff writes on the geography routes.
	wantError(t, ts.do(t, req{Method: "DELETE", URL: "/api/users/me/"}), 401, "not_authenticated")
	w := ts.do(t, req{Method: "DELETE", URL: "/api/users/me/", Header: bearer(tok)})
	m := wantError(t, w, 405, "method_not_allowed")
	if m["detail"] != `Method "DELETE" not allowed.` || w.Header().Get("Allow") != "GET, PUT, PATCH, HEAD, OPTIONS" {
		t.Errorf("DELETE /api/users/me/ = %v, Allow %q", m, w.Header().Get("Allow"))
	}
	wantError(t, ts.do(t, req{Method: "DELETE", URL: "/api/departments/05/municipalities/"}), 401, "not_authenticated")
	wantError(t, ts.do(t, req{Method: "DELETE", URL: "/api/departments/05/municipalities/", Header: bearer(tok)}), 403, "permission_denied")
	wantError(t, ts.do(t, req{Method: "DELETE", URL: "/api/health/"}), 405, "method_not_allowed")
	// An id that is not one is still a 404, and a route that is not one too.
	wantError(t, ts.do(t, req{Method: "DELETE", URL: "/api/users/you/", Header: bearer(staff)}), 404, "not_found")
	if w := ts.do(t, req{Method: "DELETE", URL: "/api/nope/", Header: bearer(staff)}); w.Code != 404 || w.Header().Get("Allow") != "" {
		t.Errorf("DELETE /api/nope/ = %d Allow %q", w.Code, w.Header().Get("Allow"))
	}
}

// TestDepartmentDeleteSaysWhatHoldsIt: the 409 names municipalities or
// profiles, whichever keeps the department.
func TestDepartmentDeleteSaysWhatHoldsIt(t *testing.T) {
	ts := newTestServer(t, nil)
	mustUser(t, ts, "ana@example.com", false)
	mustUser(t, ts, "staff@example.com", true)
	tok, _ := login(t, ts, "ana@example.com", goodPassword)
	staff, _ := login(t, ts, "staff@example.com", goodPassword)
	if w := ts.do(t, req{Method: "POST", URL: "/api/departments/", Header: bearer(staff), Body: `{"code":"77","name":"Prueba"}`}); w.Code != 201 {
		t.Fatalf("create = %d %s", w.Code, w.Body.String())
	}
	if w := ts.do(t, req{Method: "PATCH", URL: "/api/profiles/me/", Header: bearer(tok), Body: `{"department_code":"77"}`}); w.Code != 200 {
		t.Fatalf("profile = %d %s", w.Code, w.Body.String())
	}
	for _, tc := range []struct{ code, want string }{
		{"77", "Department 77 is still used by profiles; move them to another department first."},
		{"08", "Department 08 still has municipalities; delete or move them first."},
	} {
		m := wantError(t, ts.do(t, req{Method: "DELETE", URL: "/api/departments/" + tc.code + "/", Header: bearer(staff)}), 409, "conflict")
		if m["detail"] != tc.want {
			t.Errorf("DELETE %s: detail = %q, want %q", tc.code, m["detail"], tc.want)
		}
	}
	if w := ts.do(t, req{Method: "PATCH", URL: "/api/profiles/me/", Header: bearer(tok), Body: `{"department_code":"08"}`}); w.Code != 200 {
		t.Fatalf("profile = %d %s", w.Code, w.Body.String())
	}
	m := wantError(t, ts.do(t, req{Method: "DELETE", URL: "/api/departments/08/", Header: bearer(staff)}), 409, "conflict")
	if m["detail"] != "Department 08 still has municipalities and profiles that use it; delete or move them first." {
		t.Errorf("DELETE 08 (both): detail = %q", m["detail"])
	}
	if w := ts.do(t, req{Method: "DELETE", URL: "/api/departments/77/", Header: bearer(staff)}); w.Code != 204 {
		t.Errorf("DELETE 77 once free = %d %s", w.Code, w.Body.String())
	}
}

// TestPageParamsLikeDRF: ?page=last is the last page, ?page= is 404, and
// numbers as Python's int() reads them.
func TestPageParamsLikeDRF(t *testing.T) {
	ts := newTestServer(t, nil)
	for _, tc := range []struct {
		query  string
		status int
		first  string // code of the first result
		count  int    // results on the page
		prev   string
	}{
		{"page=last&page_size=10", 200, "95", 3, "http://api.example.com/api/departments/?page=3&page_size=10"},
		{"page=last", 200, "05", 33, ""},
		{"page=last&page_size=0", 200, "05", 33, ""},
		{"page=last&page_size=1000", 200, "05", 33, ""},
		{"page=", 404, "", 0, ""},
		{"page=LAST", 404, "", 0, ""},
		{"page=1.0", 404, "", 0, ""},
		{"page=0", 404, "", 0, ""},
		{"page=-1", 404, "", 0, ""},
		{"page=5&page_size=10", 404, "", 0, ""},
		{"page=%202&page_size=10", 200, "25", 10, "http://api.example.com/api/departments/?page_size=10"},
		{"page=%2B2&page_size=10", 200, "25", 10, "http://api.example.com/api/departments/?page_size=10"},
		{"page=2_0&page_size=1", 200, "66", 1, "http://api.example.com/api/departments/?page=19&page_size=1"},
		{"page=2&page_size=%2010", 200, "25", 10, "http://api.example.com/api/departments/?page_size=+10"},
		{"page=2&page_size=", 404, "", 0, ""},
	} {
		w := ts.do(t, req{URL: "/api/departments/?" + tc.query})
		if w.Code != tc.status {
			t.Errorf("?%s = %d, want %d", tc.query, w.Code, tc.status)
			continue
		}
		if tc.status == 404 {
			if m := wantError(t, w, 404, "not_found"); m["detail"] != "Invalid page." {
				t.Errorf("?%s: detail %v", tc.query, m["detail"])
			}
			continue
		}
		var b struct {
			Previous *string
			Results  []map[string]any
		}
		json.Unmarshal(w.Body.Bytes(), &b)
		prev := ""
		if b.Previous != nil {
			prev = *b.Previous
		}
		if len(b.Results) != tc.count || b.Results[0]["code"] != tc.first || prev != tc.prev {
			t.Errorf("?%s: %d results from %v, previous %q; want %d from %s, previous %q", tc.query, len(b.Results), b.Results[0]["code"], prev, tc.count, tc.first, tc.prev)
		}
	}
	// The account list and the nested list read page=last too.
	mustUser(t, ts, "staff@example.com", true)
	mustUser(t, ts, "ana@example.com", false)
	staff, _ := login(t, ts, "staff@example.com", goodPassword)
	if b := ts.list(t, req{URL: "/api/users/?page=last&page_size=1&ordering=email", Header: bearer(staff)}); b.Count != 2 || len(b.Results) != 1 || b.Results[0]["email"] != "staff@example.com" {
		t.Errorf("users ?page=last = %d %v", b.Count, b.Results)
	}
	if b := ts.list(t, req{URL: "/api/departments/05/municipalities/?page=last&page_size=100"}); b.Count != 125 || len(b.Results) != 25 {
		t.Errorf("nested ?page=last = %d, %d results", b.Count, len(b.Results))
	}
}

// FuzzDecodeObject: any body gets a parse error, a refusal of the whole
// body, field errors or a decoded value, never a panic; a field is set only
// when it has no error.
func FuzzDecodeObject(f *testing.F) {
	for _, s := range []string{`{}`, `[]`, `null`, `5`, `{"phone":5,"bio":[],"birth_date":true,"department_code":{"a":[1,"b'"]}}`,
		`{"first_name":1e400}`, `{"is_staff":"yes","is_active":0.0}`, `{"a":1} x`, `{"phone":"1","phone":null}`, ``, `"\ud800"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		var in struct {
			Phone     *string          `json:"phone"`
			IsStaff   *bool            `json:"is_staff"`
			BirthDate nullable[string] `json:"birth_date"`
			Other     map[string]int   `json:"other"`
		}
		fe, err := decodeObject([]byte(body), &in)
		if err != nil && fe != nil {
			t.Fatalf("both an error and field errors: %v %v", err, fe)
		}
		if fe["phone"] != nil && in.Phone != nil || fe["is_staff"] != nil && in.IsStaff != nil {
			t.Fatalf("a refused field is set: %v", fe)
		}
		var m map[string]any
		if _, err := decodeObject([]byte(body), &m); err == nil && m == nil {
			t.Fatalf("no error and no map for %q", body)
		}
	})
}
