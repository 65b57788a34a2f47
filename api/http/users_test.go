package apihttp

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"
)

func TestUsersMe(t *testing.T) {
	ts := newTestServer(t, nil)
	u := mustUser(t, ts, "ana@example.com", false)
	access, refresh := login(t, ts, "ana@example.com", goodPassword)

	w := ts.do(t, req{Method: "PATCH", URL: "/api/users/me/", Header: bearer(access),
		Body: `{"first_name":"  Ana María ","last_name":"Gómez","is_staff":true,"email":"evil@example.com"}`})
	m := decode(t, w)
	if w.Code != 200 || m["first_name"] != "Ana María" || m["last_name"] != "Gómez" || m["is_staff"] != false || m["email"] != "ana@example.com" {
		t.Fatalf("PATCH me = %d %v", w.Code, m)
	}
	wantError(t, ts.do(t, req{Method: "PATCH", URL: "/api/users/me/", Body: `{"first_name":"x"}`}), 401, "not_authenticated")

	// Password change.
	m = wantError(t, ts.do(t, req{Method: "POST", URL: "/api/users/me/password/", Header: bearer(access),
		Body: `{"old_password":"wrong","new_password":"12345678"}`}), 400, "invalid")
	errs := m["errors"].(map[string]any)
	if errs["old_password"] == nil || !strings.Contains(fmt.Sprint(errs["new_password"]), "entirely numeric") {
		t.Errorf("password errors = %v", errs)
	}
	w = ts.do(t, req{Method: "POST", URL: "/api/users/me/password/", Header: bearer(access),
		Body: `{"old_password":"` + goodPassword + `","new_password":"another-good-pass-77"}`})
	if w.Code != 200 {
		t.Fatalf("password change = %d %s", w.Code, w.Body.String())
	}
	wantError(t, ts.do(t, req{Method: "POST", URL: "/api/token/", Body: `{"email":"ana@example.com","password":"` + goodPassword + `"}`}), 401, "authentication_failed")
	login(t, ts, "ana@example.com", "another-good-pass-77")
	// Sessions from before the change are over.
	wantError(t, ts.do(t, req{Method: "POST", URL: "/api/token/refresh/", Body: jsonBody(map[string]string{"refresh": refresh})}), 401, "token_not_valid")
	_ = u
}

func TestUsersStaff(t *testing.T) {
	ts := newTestServer(t, nil)
	ana := mustUser(t, ts, "ana@example.com", false)
	bob := mustUser(t, ts, "bob@example.com", false)
	mustUser(t, ts, "staff@example.com", true)
	userTok, _ := login(t, ts, "ana@example.com", goodPassword)
	staffTok, _ := login(t, ts, "staff@example.com", goodPassword)
	ts.Users.UpdateUser(context.Background(), bob.ID, userUpdateNames("José", "Muñoz"))

	wantError(t, ts.do(t, req{URL: "/api/users/"}), 401, "not_authenticated")
	wantError(t, ts.do(t, req{URL: "/api/users/", Header: bearer(userTok)}), 403, "permission_denied")
	b := ts.list(t, req{URL: "/api/users/", Header: bearer(staffTok)})
	if b.Count != 3 {
		t.Errorf("users count = %d", b.Count)
	}
	for _, q := range []string{"search=munoz", "search=JOSE", "search=bob%40example"} {
		if b := ts.list(t, req{URL: "/api/users/?" + q, Header: bearer(staffTok)}); b.Count != 1 || b.Results[0]["email"] != "bob@example.com" {
			t.Errorf("%s = %v", q, b.Results)
		}
	}
	for _, row := range ts.list(t, req{URL: "/api/users/", Header: bearer(staffTok)}).Results {
		if _, ok := row["password"]; ok {
			t.Fatal("password in user JSON")
		}
	}

	// Self or staff.
	if w := ts.do(t, req{URL: fmt.Sprintf("/api/users/%d/", ana.ID), Header: bearer(userTok)}); w.Code != 200 {
		t.Errorf("self = %d", w.Code)
	}
	wantError(t, ts.do(t, req{URL: fmt.Sprintf("/api/users/%d/", bob.ID), Header: bearer(userTok)}), 403, "permission_denied")
	wantError(t, ts.do(t, req{URL: "/api/users/999999/", Header: bearer(staffTok)}), 404, "not_found")
	wantError(t, ts.do(t, req{URL: "/api/users/abc/", Header: bearer(staffTok)}), 404, "not_found")
	if w := ts.do(t, req{URL: fmt.Sprintf("/api/users/%d", bob.ID), Header: bearer(staffTok)}); w.Code != 200 {
		t.Errorf("staff view = %d", w.Code)
	}
	wantError(t, ts.do(t, req{Method: "PATCH", URL: fmt.Sprintf("/api/users/%d/", ana.ID), Header: bearer(userTok), Body: `{"is_staff":true}`}), 403, "permission_denied")
	w := ts.do(t, req{Method: "PATCH", URL: fmt.Sprintf("/api/users/%d/", bob.ID), Header: bearer(staffTok), Body: `{"is_staff":true,"last_name":"Muñoz Díaz"}`})
	if m := decode(t, w); w.Code != 200 || m["is_staff"] != true || m["last_name"] != "Muñoz Díaz" {
		t.Errorf("staff PATCH = %d %v", w.Code, m)
	}
	wantError(t, ts.do(t, req{Method: "PATCH", URL: fmt.Sprintf("/api/users/%d/", bob.ID), Header: bearer(staffTok), Body: `{"email":"ANA@example.com"}`}), 400, "invalid")

	// DELETE deactivates.
	anaAccess, anaRefresh := login(t, ts, "ana@example.com", goodPassword)
	if w := ts.do(t, req{Method: "DELETE", URL: fmt.Sprintf("/api/users/%d/", ana.ID), Header: bearer(staffTok)}); w.Code != 204 {
		t.Fatalf("DELETE = %d", w.Code)
	}
	got, err := ts.Users.FindUserByID(context.Background(), ana.ID)
	if err != nil || got.IsActive {
		t.Errorf("after DELETE: %v %+v", err, got)
	}
	wantError(t, ts.do(t, req{URL: "/api/users/me/", Header: bearer(anaAccess)}), 401, "authentication_failed")
	wantError(t, ts.do(t, req{Method: "POST", URL: "/api/token/refresh/", Body: jsonBody(map[string]string{"refresh": anaRefresh})}), 401, "token_not_valid")
}

func TestProfiles(t *testing.T) {
	ts := newTestServer(t, nil)
	mustUser(t, ts, "ana@example.com", false)
	tok, _ := login(t, ts, "ana@example.com", goodPassword)
	me := func() map[string]any { return decode(t, ts.do(t, req{URL: "/api/profiles/me/", Header: bearer(tok)})) }
	p := me()
	for _, k := range []string{"id", "user_id", "phone", "bio", "birth_date", "department", "municipality", "avatar_url", "updated_at"} {
		if _, ok := p[k]; !ok {
			t.Errorf("profile lacks %s: %v", k, p)
		}
	}
	if p["department"] != nil || p["municipality"] != nil || p["avatar_url"] != nil || p["birth_date"] != nil {
		t.Errorf("new profile = %v", p)
	}
	patch := func(body string) *httptestRecorder {
		return ts.do(t, req{Method: "PATCH", URL: "/api/profiles/me/", Header: bearer(tok), Body: body})
	}
	w := patch(`{"department_code":"05","municipality_code":"05001","phone":"+57 300 123 4567","bio":"Hola","birth_date":"1990-05-17"}`)
	m := decode(t, w)
	if w.Code != 200 || fmt.Sprint(m["department"]) != "map[code:05 name:Antioquia]" ||
		fmt.Sprint(m["municipality"]) != "map[code:05001 name:Medellín]" || m["birth_date"] != "1990-05-17" || m["phone"] != "+57 300 123 4567" {
		t.Fatalf("PATCH profile = %d %v", w.Code, m)
	}
	for _, tc := range []struct{ body, field string }{
		{`{"department_code":"08","municipality_code":"05001"}`, "municipality_code"},
		{`{"municipality_code":"08001"}`, "municipality_code"},
		{`{"department_code":"00"}`, "department_code"},
		{`{"municipality_code":"99999"}`, "municipality_code"},
		{`{"municipality_code":"abc"}`, "municipality_code"},
		{`{"birth_date":"17/05/1990"}`, "birth_date"},
		{`{"birth_date":"2999-01-01"}`, "birth_date"},
		{`{"phone":"call me maybe"}`, "phone"},
	} {
		m := wantError(t, patch(tc.body), 400, "invalid")
		if m["errors"].(map[string]any)[tc.field] == nil {
			t.Errorf("%s: errors = %v", tc.body, m["errors"])
		}
	}
	if fmt.Sprint(me()["municipality"]) != "map[code:05001 name:Medellín]" {
		t.Error("a rejected PATCH changed the profile")
	}
	// Changing only the department clears a municipality outside it.
	m = decode(t, patch(`{"department_code":"08"}`))
	if m["municipality"] != nil || fmt.Sprint(m["department"]) != "map[code:08 name:Atlántico]" {
		t.Errorf("department change = %v", m)
	}
	// Setting only a municipality when no department: the department follows.
	patch(`{"department_code":null}`)
	m = decode(t, patch(`{"municipality_code":"76001"}`))
	if fmt.Sprint(m["department"]) != "map[code:76 name:Valle del Cauca]" {
		t.Errorf("municipality only = %v", m)
	}
	m = decode(t, patch(`{"municipality_code":null,"birth_date":null}`))
	if m["municipality"] != nil || m["birth_date"] != nil || m["department"] == nil {
		t.Errorf("clearing = %v", m)
	}

	// Others' profiles: authenticated only.
	id := int(p["id"].(float64))
	wantError(t, ts.do(t, req{URL: fmt.Sprintf("/api/profiles/%d/", id)}), 401, "not_authenticated")
	mustUser(t, ts, "bob@example.com", false)
	bobTok, _ := login(t, ts, "bob@example.com", goodPassword)
	if w := ts.do(t, req{URL: fmt.Sprintf("/api/profiles/%d/", id), Header: bearer(bobTok)}); w.Code != 200 {
		t.Errorf("profile by id = %d", w.Code)
	}
	wantError(t, ts.do(t, req{URL: "/api/profiles/999999/", Header: bearer(bobTok)}), 404, "not_found")
	// Deleting a municipality a profile uses is a conflict.
	patch(`{"municipality_code":"76001"}`)
	mustUser(t, ts, "staff@example.com", true)
	staff, _ := login(t, ts, "staff@example.com", goodPassword)
	wantError(t, ts.do(t, req{Method: "DELETE", URL: "/api/municipalities/76001/", Header: bearer(staff)}), 409, "conflict")
}

func TestGeoStaffWrites(t *testing.T) {
	ts := newTestServer(t, nil)
	mustUser(t, ts, "ana@example.com", false)
	mustUser(t, ts, "staff@example.com", true)
	user, _ := login(t, ts, "ana@example.com", goodPassword)
	staff, _ := login(t, ts, "staff@example.com", goodPassword)

	wantError(t, ts.do(t, req{Method: "POST", URL: "/api/departments/", Body: `{"code":"98","name":"Nuevo"}`}), 401, "not_authenticated")
	wantError(t, ts.do(t, req{Method: "POST", URL: "/api/departments/", Header: bearer(user), Body: `{"code":"98","name":"Nuevo"}`}), 403, "permission_denied")
	etag := ts.do(t, req{URL: "/api/departments/"}).Header().Get("ETag")
	w := ts.do(t, req{Method: "POST", URL: "/api/departments/", Header: bearer(staff), Body: `{"code":"98","name":"Nuevo Departamento"}`})
	if m := decode(t, w); w.Code != 201 || m["code"] != "98" || m["municipality_count"] != float64(0) {
		t.Fatalf("create department = %d %v", w.Code, m)
	}
	if w := ts.do(t, req{URL: "/api/departments/", Header: map[string]string{"If-None-Match": etag}}); w.Code != 200 {
		t.Errorf("ETag unchanged after create: %d", w.Code)
	}
	wantError(t, ts.do(t, req{Method: "POST", URL: "/api/departments/", Header: bearer(staff), Body: `{"code":"98","name":"Again"}`}), 400, "invalid")
	wantError(t, ts.do(t, req{Method: "POST", URL: "/api/departments/", Header: bearer(staff), Body: `{"code":"9","name":""}`}), 400, "invalid")

	w = ts.do(t, req{Method: "POST", URL: "/api/municipalities/", Header: bearer(staff), Body: `{"code":"98001","name":"Villa Nueva","department_code":"98"}`})
	if m := decode(t, w); w.Code != 201 || m["department_name"] != "Nuevo Departamento" {
		t.Fatalf("create municipality = %d %v", w.Code, m)
	}
	wantError(t, ts.do(t, req{Method: "POST", URL: "/api/municipalities/", Header: bearer(staff), Body: `{"code":"05999","name":"X","department_code":"98"}`}), 400, "invalid")
	wantError(t, ts.do(t, req{Method: "POST", URL: "/api/municipalities/", Header: bearer(staff), Body: `{"code":"97999","name":"X","department_code":"96"}`}), 400, "invalid")
	if b := ts.list(t, req{URL: "/api/municipalities/?search=villa+nueva&department=98"}); b.Count != 1 {
		t.Errorf("new municipality not searchable: %v", b.Results)
	}
	w = ts.do(t, req{Method: "PATCH", URL: "/api/municipalities/98001/", Header: bearer(staff), Body: `{"name":"Villanueva del Río"}`})
	if m := decode(t, w); w.Code != 200 || m["name"] != "Villanueva del Río" {
		t.Errorf("PATCH municipality = %d %v", w.Code, m)
	}
	wantError(t, ts.do(t, req{Method: "PATCH", URL: "/api/municipalities/98001/", Header: bearer(staff), Body: `{"department_code":"05"}`}), 400, "invalid")
	w = ts.do(t, req{Method: "PATCH", URL: "/api/departments/98/", Header: bearer(staff), Body: `{"name":"Departamento Renombrado"}`})
	if m := decode(t, w); w.Code != 200 || m["name"] != "Departamento Renombrado" || m["municipality_count"] != float64(1) {
		t.Errorf("PATCH department = %d %v", w.Code, m)
	}
	m := wantError(t, ts.do(t, req{Method: "DELETE", URL: "/api/departments/98/", Header: bearer(staff)}), 409, "conflict")
	if !strings.Contains(m["detail"].(string), "municipalities") {
		t.Errorf("409 detail = %v", m["detail"])
	}
	if w := ts.do(t, req{Method: "DELETE", URL: "/api/municipalities/98001/", Header: bearer(staff)}); w.Code != 204 {
		t.Errorf("DELETE municipality = %d", w.Code)
	}
	if w := ts.do(t, req{Method: "DELETE", URL: "/api/departments/98/", Header: bearer(staff)}); w.Code != 204 {
		t.Errorf("DELETE department = %d", w.Code)
	}
	wantError(t, ts.do(t, req{Method: "DELETE", URL: "/api/departments/98/", Header: bearer(staff)}), 404, "not_found")
	wantError(t, ts.do(t, req{Method: "PATCH", URL: "/api/departments/98/", Header: bearer(staff), Body: `{"name":"x"}`}), 404, "not_found")
}

// TestInjectionShapedInput sends SQL-shaped values to every search and filter
// parameter: each answers normally (no 500) and no table is harmed.
func TestInjectionShapedInput(t *testing.T) {
	ts := newTestServer(t, nil)
	mustUser(t, ts, "staff@example.com", true)
	staff, _ := login(t, ts, "staff@example.com", goodPassword)
	payloads := []string{
		`' OR '1'='1`, `'; DROP TABLE users; --`, `05' OR 1=1 --`, `%' AND pg_sleep(5) --`,
		`" OR ""="`, `\'`, `1; SELECT * FROM users`, `code; DELETE FROM departments`, "\x00", `%_%`,
		`-code,(SELECT 1)`, `name DESC; DROP TABLE municipalities`, "\xff\xfe", "medell\xc3",
	}
	paths := []string{
		"/api/departments/?search=%s", "/api/departments/?ordering=%s", "/api/municipalities/?search=%s",
		"/api/municipalities/?ordering=%s", "/api/municipalities/?department=%s", "/api/municipalities/?page=%s",
		"/api/municipalities/?page_size=%s", "/api/users/?search=%s", "/api/users/?ordering=%s",
		"/api/departments/%s/", "/api/municipalities/%s/", "/api/users/%s/", "/api/departments/05/municipalities/?search=%s",
	}
	for _, p := range paths {
		for _, v := range payloads {
			u := strings.Replace(p, "%s", url.QueryEscape(v), 1)
			w := ts.do(t, req{URL: u, Header: bearer(staff)})
			if w.Code >= 500 || (w.Code != 200 && w.Code != 400 && w.Code != 404) {
				t.Errorf("%s = %d %s", u, w.Code, w.Body.String())
			}
			if strings.Contains(strings.ToLower(w.Body.String()), "syntax") || strings.Contains(w.Body.String(), "pq:") {
				t.Errorf("%s leaks SQL: %s", u, w.Body.String())
			}
		}
	}
	var deps, muns, users int
	ts.DB.Get(&deps, `SELECT count(*) FROM departments`)
	ts.DB.Get(&muns, `SELECT count(*) FROM municipalities`)
	ts.DB.Get(&users, `SELECT count(*) FROM users`)
	if deps != 33 || muns != 1122 || users != 1 {
		t.Errorf("tables changed: %d %d %d", deps, muns, users)
	}
	// Search with LIKE wildcards matches them literally.
	if b := ts.list(t, req{URL: "/api/municipalities/?search=%25"}); b.Count != 0 {
		t.Errorf("%% matched %d rows", b.Count)
	}
}
