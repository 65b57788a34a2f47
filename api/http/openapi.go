package apihttp

import (
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/isis-project/isis/api"
	"github.com/labstack/echo/v4"
)

// op documents one route for the OpenAPI document.
type op struct {
	Method, Path string // as registered in Echo ("/api/departments/:code")
	ID, Summary  string
	Tag          string
	Auth         string   // "", "user" or "staff"
	Query        []string // names in queryParams
	Body         string   // request schema; "multipart" for the avatar upload
	Status       int
	Resp         string // response schema, "" for none
	Errors       []int
}

var queryParams = map[string]map[string]any{
	// The server reads page and page_size as DRF does (Python's int(), with
	// spaces, a sign or underscores), and page_size whatever it holds: the
	// schemas take what it takes, so a validating proxy refuses nothing it
	// would answer.
	"page": {"name": "page", "in": "query", "description": "1-based page number, or `last`; past the end is 404 (as DRF's PageNumberPagination)",
		"schema": map[string]any{"anyOf": []any{map[string]any{"type": "integer", "minimum": 1},
			map[string]any{"type": "string", "pattern": `^(last|\s*[+-]?[0-9](_?[0-9])*\s*)$`}}}},
	"page_size": {"name": "page_size", "in": "query",
		"description": "results per page: default 50; above 500 is cut to 500; zero, a negative number or anything else means the default",
		"schema":      map[string]any{"anyOf": []any{map[string]any{"type": "integer"}, map[string]any{"type": "string"}}}},
	"search":     {"name": "search", "in": "query", "description": "accent- and case-insensitive; whitespace-separated terms must all match", "schema": map[string]any{"type": "string"}},
	"ordering":   {"name": "ordering", "in": "query", "description": "a field, - for descending; several comma-separated; unknown fields are ignored", "schema": map[string]any{"type": "string"}},
	"department": {"name": "department", "in": "query", "description": "2-digit DANE department code", "schema": map[string]any{"type": "string", "pattern": "^[0-9]{2}$"}},
}

var list = []string{"page", "page_size", "search", "ordering"}

// ops lists every route the server registers, documented.
var ops = []op{
	{"GET", "/api", "apiRoot", "API root (HEAD too, for smoke tests)", "health", "", nil, "", 200, "Root", nil},
	{"GET", "/api/health", "health", "The process is up (no database access); 503 while it drains for a shutdown", "health", "", nil, "", 200, "Health", []int{503}},
	{"GET", "/api/ready", "ready", "Database reachable and migrations applied", "health", "", nil, "", 200, "Ready", []int{503}},
	{"GET", "/api/schema", "schema", "This OpenAPI document", "health", "", nil, "", 200, "", nil},

	{"POST", "/api/token", "tokenObtain", "Obtain an access and a refresh token (throttled)", "auth", "", nil, "TokenObtain", 200, "TokenPair", []int{400, 401, 413, 415, 429}},
	{"POST", "/api/token/refresh", "tokenRefresh", "A new access token (and refresh token when rotation is on)", "auth", "", nil, "TokenRefresh", 200, "TokenRefreshed", []int{400, 401}},
	{"POST", "/api/token/verify", "tokenVerify", "Check a token", "auth", "", nil, "TokenVerify", 200, "Empty", []int{400, 401}},
	{"POST", "/api/token/blacklist", "tokenBlacklist", "Log out: blacklist a refresh token", "auth", "", nil, "TokenRefresh", 200, "Empty", []int{400, 401}},
	{"POST", "/api/auth/register", "register", "Create an account (throttled)", "auth", "", nil, "Register", 201, "User", []int{400, 429}},
	{"POST", "/api/auth/google", "googleLogin", "Sign in with a Google ID token (404 unless GOOGLE_CLIENT_ID is set)", "auth", "", nil, "GoogleLogin", 200, "TokenPair", []int{400, 401, 404, 409, 429, 503}},
	{"POST", "/api/auth/google/link", "googleLink", "Link a Google account to yours (then sign in with either; 404 unless GOOGLE_CLIENT_ID is set)", "auth", "user", nil, "GoogleLogin", 204, "", []int{400, 401, 404, 409, 429, 503}},
	{"DELETE", "/api/auth/google/link", "googleUnlink", "Unlink your Google account (409 when it is the only way in)", "auth", "user", nil, "", 204, "", []int{401, 404, 409}},

	{"GET", "/api/users/me", "userMe", "The current user", "users", "user", nil, "", 200, "User", []int{401}},
	{"PATCH", "/api/users/me", "userMeUpdate", "Change your names", "users", "user", nil, "UserMeUpdate", 200, "User", []int{400, 401}},
	{"PUT", "/api/users/me", "userMeReplace", "Change your names", "users", "user", nil, "UserMeUpdate", 200, "User", []int{400, 401}},
	{"POST", "/api/users/me/password", "userPassword", "Change your password (ends your other sessions)", "users", "user", nil, "PasswordChange", 200, "Detail", []int{400, 401, 429}},
	{"GET", "/api/users", "userList", "List users", "users", "staff", list, "", 200, "UserPage", []int{401, 403, 404}},
	{"GET", "/api/users/:id", "userView", "A user (staff, or yourself)", "users", "user", nil, "", 200, "User", []int{401, 403, 404}},
	{"PATCH", "/api/users/:id", "userUpdate", "Update a user", "users", "staff", nil, "UserUpdate", 200, "User", []int{400, 401, 403, 404}},
	{"PUT", "/api/users/:id", "userReplace", "Update a user", "users", "staff", nil, "UserUpdate", 200, "User", []int{400, 401, 403, 404}},
	{"DELETE", "/api/users/:id", "userDelete", "Deactivate a user", "users", "staff", nil, "", 204, "", []int{401, 403, 404}},

	{"GET", "/api/profiles/me", "profileMe", "Your profile", "profiles", "user", nil, "", 200, "Profile", []int{401}},
	{"PATCH", "/api/profiles/me", "profileMeUpdate", "Update your profile", "profiles", "user", nil, "ProfileUpdate", 200, "Profile", []int{400, 401}},
	{"PUT", "/api/profiles/me", "profileMeReplace", "Update your profile", "profiles", "user", nil, "ProfileUpdate", 200, "Profile", []int{400, 401}},
	{"PUT", "/api/profiles/me/avatar", "avatarUpload", "Upload your avatar (JPEG, PNG or WebP, at most MAX_UPLOAD_BYTES)", "profiles", "user", nil, "multipart", 200, "Profile", []int{400, 401, 408, 413, 415, 503}},
	{"POST", "/api/profiles/me/avatar", "avatarUploadPost", "Upload your avatar (as PUT)", "profiles", "user", nil, "multipart", 200, "Profile", []int{400, 401, 408, 413, 415, 503}},
	{"DELETE", "/api/profiles/me/avatar", "avatarDelete", "Remove your avatar", "profiles", "user", nil, "", 204, "", []int{401, 503}},
	{"GET", "/api/profiles/:id", "profileView", "A profile", "profiles", "user", nil, "", 200, "Profile", []int{401, 404}},

	{"GET", "/api/departments", "departmentList", "Departments (ETag, If-None-Match)", "geography", "", list, "", 200, "DepartmentPage", []int{304, 404}},
	{"POST", "/api/departments", "departmentCreate", "Create a department", "geography", "staff", nil, "DepartmentCreate", 201, "Department", []int{400, 401, 403}},
	{"GET", "/api/departments/:code", "departmentView", "A department", "geography", "", nil, "", 200, "Department", []int{304, 404}},
	{"PATCH", "/api/departments/:code", "departmentUpdate", "Rename a department", "geography", "staff", nil, "DepartmentUpdate", 200, "Department", []int{400, 401, 403, 404}},
	{"PUT", "/api/departments/:code", "departmentReplace", "Rename a department", "geography", "staff", nil, "DepartmentUpdate", 200, "Department", []int{400, 401, 403, 404}},
	{"DELETE", "/api/departments/:code", "departmentDelete", "Delete a department (409 while it has municipalities)", "geography", "staff", nil, "", 204, "", []int{401, 403, 404, 409}},
	{"GET", "/api/departments/:code/municipalities", "departmentMunicipalities", "A department's municipalities", "geography", "", list, "", 200, "MunicipalityPage", []int{304, 404}},
	{"GET", "/api/municipalities", "municipalityList", "Municipalities", "geography", "", append([]string{"department"}, list...), "", 200, "MunicipalityPage", []int{304, 400, 404}},
	{"POST", "/api/municipalities", "municipalityCreate", "Create a municipality", "geography", "staff", nil, "MunicipalityCreate", 201, "Municipality", []int{400, 401, 403}},
	{"GET", "/api/municipalities/:code", "municipalityView", "A municipality", "geography", "", nil, "", 200, "Municipality", []int{304, 404}},
	{"PATCH", "/api/municipalities/:code", "municipalityUpdate", "Rename a municipality", "geography", "staff", nil, "MunicipalityUpdate", 200, "Municipality", []int{400, 401, 403, 404}},
	{"PUT", "/api/municipalities/:code", "municipalityReplace", "Rename a municipality", "geography", "staff", nil, "MunicipalityUpdate", 200, "Municipality", []int{400, 401, 403, 404}},
	{"DELETE", "/api/municipalities/:code", "municipalityDelete", "Delete a municipality (409 while profiles use it)", "geography", "staff", nil, "", 204, "", []int{401, 403, 404, 409}},

	{"GET", "/static/*", "staticFile", "Static assets (the API docs page is /static/docs/)", "static", "", nil, "", 200, "", []int{404}},
	{"GET", "/media/*", "mediaFile", "Uploaded media on disk (when S3 is not used)", "static", "", nil, "", 200, "", []int{404}},
}

// noSlashTag groups the operations on the paths without the trailing slash.
const noSlashTag = "without the trailing slash"

var echoParam = regexp.MustCompile(`:([a-z_]+)`)

// openAPIPath turns an Echo path into the documented one (DRF's trailing slash).
func openAPIPath(p string) string {
	p = echoParam.ReplaceAllString(p, "{$1}")
	p = strings.Replace(p, "*", "{path}", 1)
	if strings.HasSuffix(p, "{path}") {
		return p
	}
	return p + "/"
}

func obj(props map[string]any, required ...string) map[string]any {
	o := map[string]any{"type": "object", "properties": props}
	if len(required) > 0 {
		o["required"] = required
	}
	return o
}

func str() map[string]any               { return map[string]any{"type": "string"} }
func strf(format string) map[string]any { return map[string]any{"type": "string", "format": format} }

// orNull makes a schema nullable. A nullable place is written out, not as
// a $ref: OpenAPI 3.0 ignores nullable beside a $ref, and an allOf wrapper
// is read as non-nullable by some validators (Prism's JSON Schema one).
func orNull(s map[string]any) map[string]any {
	if _, isRef := s["$ref"]; isRef {
		panic("orNull: write the schema out, not a $ref")
	}
	c := map[string]any{}
	for k, v := range s {
		c[k] = v
	}
	c["nullable"] = true
	return c
}
func ref(name string) map[string]any { return map[string]any{"$ref": "#/components/schemas/" + name} }
func pageSchema(item string) map[string]any {
	return obj(map[string]any{
		"count": map[string]any{"type": "integer"}, "next": orNull(strf("uri")), "previous": orNull(strf("uri")),
		"results": map[string]any{"type": "array", "items": ref(item)},
	}, "count", "next", "previous", "results")
}

func schemas() map[string]any {
	place := obj(map[string]any{"code": str(), "name": str()}, "code", "name")
	return map[string]any{
		"Error": obj(map[string]any{
			"detail": str(), "code": map[string]any{"type": "string", "enum": []string{api.EINVALID, api.EPARSE, api.EBADREQUEST,
				api.EUNAUTHENTICATED, api.ETOKENINVALID, api.EAUTHFAILED, api.EFORBIDDEN, api.ENOTFOUND, api.EMETHOD, api.ECONFLICT,
				api.EGOOGLENOTLINKED, api.EGOOGLEINUSE,
				api.ETOOLARGE, api.EUNSUPPORTEDMEDIA, api.ETHROTTLED, api.EINTERNAL, api.EUNAVAILABLE}},
			"request_id": str(),
			"errors":     map[string]any{"type": "object", "additionalProperties": map[string]any{"type": "array", "items": str()}},
		}, "detail", "code", "request_id"),
		"Root":   obj(map[string]any{"name": str(), "version": str()}),
		"Health": obj(map[string]any{"status": str(), "version": str()}, "status", "version"),
		"Ready": obj(map[string]any{"status": str(), "database": str(), "migrations": str(), "storage": str()},
			"status", "database", "migrations"),
		"Draining":       obj(map[string]any{"status": map[string]any{"type": "string", "enum": []string{"draining"}}}, "status"),
		"Empty":          obj(map[string]any{}),
		"Detail":         obj(map[string]any{"detail": str()}, "detail"),
		"TokenObtain":    obj(map[string]any{"email": strf("email"), "username": map[string]any{"type": "string", "description": "the email, as SimpleJWT's username field"}, "password": strf("password")}, "password"),
		"TokenPair":      obj(map[string]any{"access": str(), "refresh": str()}, "access", "refresh"),
		"TokenRefresh":   obj(map[string]any{"refresh": str()}, "refresh"),
		"TokenRefreshed": obj(map[string]any{"access": str(), "refresh": str()}, "access"),
		"TokenVerify":    obj(map[string]any{"token": str()}, "token"),
		"GoogleLogin":    obj(map[string]any{"id_token": str()}, "id_token"),
		"Register":       obj(map[string]any{"email": strf("email"), "password": strf("password"), "first_name": str(), "last_name": str()}, "email", "password"),
		"User": obj(map[string]any{
			"id": map[string]any{"type": "integer"}, "email": strf("email"), "first_name": str(), "last_name": str(),
			"is_staff": map[string]any{"type": "boolean"}, "is_active": map[string]any{"type": "boolean"},
			"date_joined": strf("date-time"), "last_login": orNull(strf("date-time")),
		}, "id", "email", "first_name", "last_name", "is_staff", "is_active", "date_joined", "last_login"),
		"UserPage":       pageSchema("User"),
		"UserMeUpdate":   obj(map[string]any{"first_name": str(), "last_name": str()}),
		"UserUpdate":     obj(map[string]any{"email": strf("email"), "first_name": str(), "last_name": str(), "is_staff": map[string]any{"type": "boolean"}, "is_active": map[string]any{"type": "boolean"}}),
		"PasswordChange": obj(map[string]any{"old_password": strf("password"), "new_password": strf("password")}, "old_password", "new_password"),
		"Place":          place,
		"Profile": obj(map[string]any{
			"id": map[string]any{"type": "integer"}, "user_id": map[string]any{"type": "integer"}, "phone": str(), "bio": str(),
			"birth_date": orNull(strf("date")), "department": orNull(place), "municipality": orNull(place),
			"avatar_url": orNull(strf("uri")), "updated_at": strf("date-time"),
		}, "id", "user_id", "phone", "bio", "birth_date", "department", "municipality", "avatar_url", "updated_at"),
		"ProfileUpdate": obj(map[string]any{"phone": str(), "bio": str(), "birth_date": orNull(strf("date")),
			"department_code": orNull(str()), "municipality_code": orNull(str())}),
		"Department":         obj(map[string]any{"code": str(), "name": str(), "municipality_count": map[string]any{"type": "integer"}}, "code", "name", "municipality_count"),
		"DepartmentPage":     pageSchema("Department"),
		"DepartmentCreate":   obj(map[string]any{"code": str(), "name": str()}, "code", "name"),
		"DepartmentUpdate":   obj(map[string]any{"name": str()}),
		"Municipality":       obj(map[string]any{"code": str(), "name": str(), "department_code": str(), "department_name": str()}, "code", "name", "department_code", "department_name"),
		"MunicipalityPage":   pageSchema("Municipality"),
		"MunicipalityCreate": obj(map[string]any{"code": str(), "name": str(), "department_code": str()}, "code", "name", "department_code"),
		"MunicipalityUpdate": obj(map[string]any{"name": str()}),
		"Options": obj(map[string]any{"renders": map[string]any{"type": "array", "items": str()},
			"parses": map[string]any{"type": "array", "items": str()}}, "renders", "parses"),
	}
}

var errorText = map[int]string{304: "Not modified (If-None-Match)", 400: "Invalid input, or a Host not in ALLOWED_HOSTS",
	401: "Not authenticated, or a bad token", 403: "Permission denied", 404: "Not found", 408: "Upload too slow", 409: "Conflict",
	413: "Payload too large", 415: "Unsupported media type", 429: "Throttled (Retry-After)",
	500: "Server error (the log line with the same request_id holds the detail)", 503: "Service unavailable (Retry-After)"}

// pathParam documents a path parameter: ids are integers, DANE codes
// strings of 2 (department) or 5 (municipality) digits.
func pathParam(route, name string) map[string]any {
	schema := str()
	switch {
	case name == "id":
		schema = map[string]any{"type": "integer", "format": "int64", "minimum": 1}
	case name == "code" && strings.HasPrefix(route, "/api/departments"):
		schema = map[string]any{"type": "string", "pattern": "^[0-9]{2}$"}
	case name == "code":
		schema = map[string]any{"type": "string", "pattern": "^[0-9]{5}$"}
	}
	return map[string]any{"name": name, "in": "path", "required": true, "schema": schema}
}

// errorCodes are the error statuses an operation can answer: its own, and
// those every request can meet on the way.
func errorCodes(o op) []int {
	codes := map[int]bool{500: true}
	for _, c := range o.Errors {
		codes[c] = true
	}
	health := o.Path == "/api/health" || o.Path == "/api/ready" // no Host or token check
	if !health {
		codes[400] = true // a Host not in ALLOWED_HOSTS
		codes[401] = true // a bad or expired token, on any route
	}
	if o.Path != "/api/health" {
		codes[503] = true // the database (a token is looked up in it)
	}
	if o.Auth == "staff" {
		codes[403] = true
	}
	if o.Body != "" {
		codes[400], codes[413], codes[415] = true, true, true
	}
	if strings.Contains(o.Path, ":") || slices.Contains(o.Query, "page") {
		codes[404] = true
	}
	out := make([]int, 0, len(codes))
	for c := range codes {
		out = append(out, c)
	}
	sort.Ints(out)
	return out
}

// publicGeo reports a public geography read: those carry ETag and
// Cache-Control and answer If-None-Match with 304.
func publicGeo(o op) bool {
	return o.Method == http.MethodGet && o.Auth == "" && slices.Contains(o.Errors, 304)
}

func hdrRef(name string) map[string]any {
	return map[string]any{"$ref": "#/components/headers/" + name}
}

// responses documents an operation's answers; head leaves the bodies out.
func responses(o op, head bool) map[string]any {
	ok := map[string]any{"description": http.StatusText(o.Status)}
	headers := map[string]any{"X-Request-ID": hdrRef("X-Request-ID")}
	if publicGeo(o) {
		headers["ETag"], headers["Cache-Control"] = hdrRef("ETag"), hdrRef("Cache-Control")
	}
	ok["headers"] = headers
	switch {
	case head || o.Status == http.StatusNoContent:
	case o.Resp != "":
		ok["content"] = map[string]any{"application/json": map[string]any{"schema": ref(o.Resp)}}
	case o.ID == "schema":
		ok["content"] = map[string]any{"application/json": map[string]any{"schema": map[string]any{"type": "object",
			"additionalProperties": true, "description": "an OpenAPI 3.0 document"}}}
	default: // static and media files
		ok["content"] = map[string]any{"*/*": map[string]any{"schema": map[string]any{"type": "string", "format": "binary"}}}
	}
	out := map[string]any{strconv.Itoa(o.Status): ok}
	suffix := ""
	if head {
		suffix = "Head"
	}
	for _, code := range errorCodes(o) {
		switch {
		case code == 304:
			out["304"] = map[string]any{"description": errorText[304],
				"headers": map[string]any{"X-Request-ID": hdrRef("X-Request-ID"), "ETag": hdrRef("ETag")}}
		case code == 503 && (o.ID == "ready" || o.ID == "health"):
			desc, schema := "The server is draining for a shutdown", ref("Draining")
			if o.ID == "ready" {
				desc = "The database is down, migrations are pending, or the server is draining for a shutdown"
				schema = map[string]any{"oneOf": []any{ref("Ready"), ref("Draining")}}
			}
			r := map[string]any{"description": desc,
				"headers": map[string]any{"X-Request-ID": hdrRef("X-Request-ID"), "Retry-After": hdrRef("Retry-After")}}
			if !head {
				r["content"] = map[string]any{"application/json": map[string]any{"schema": schema}}
			}
			out["503"] = r
		case code == 401:
			out["401"] = map[string]any{"$ref": "#/components/responses/Unauthorized" + suffix}
		case code == 429 || code == 503:
			out[strconv.Itoa(code)] = map[string]any{"$ref": "#/components/responses/RetryLater" + suffix}
		default:
			out[strconv.Itoa(code)] = map[string]any{"$ref": "#/components/responses/Error" + suffix}
		}
	}
	return out
}

// security: bearer for the account routes; none (explicitly) for the
// public ones.
func security(o op) []any {
	if o.Auth == "" {
		return []any{}
	}
	return []any{map[string]any{"bearer": []string{}}}
}

// errorResponses are the shared error answers, with and without a body.
func errorResponses() map[string]any {
	out := map[string]any{}
	for _, r := range []struct {
		name, description, extra string
	}{
		{"Error", "The error envelope", ""},
		{"Unauthorized", "Not authenticated, or a bad token (the error envelope)", "WWW-Authenticate"},
		{"RetryLater", "Throttled or unavailable: try again after Retry-After seconds (the error envelope)", "Retry-After"},
	} {
		headers := map[string]any{"X-Request-ID": hdrRef("X-Request-ID")}
		if r.extra != "" {
			headers[r.extra] = hdrRef(r.extra)
		}
		out[r.name] = map[string]any{"description": r.description, "headers": headers,
			"content": map[string]any{"application/json": map[string]any{"schema": ref("Error")}}}
		out[r.name+"Head"] = map[string]any{"description": r.description + ", without its body (HEAD)", "headers": headers}
	}
	return out
}

func headers() map[string]any {
	h := func(desc string, required bool, schema map[string]any) map[string]any {
		out := map[string]any{"description": desc, "schema": schema}
		if required {
			out["required"] = true
		}
		return out
	}
	return map[string]any{
		"X-Request-ID":     h("The request's id, also in the error envelope and the log line (taken from the request when it is a sane token)", true, str()),
		"ETag":             h("A strong validator of the answer; send it back in If-None-Match", true, str()),
		"Cache-Control":    h("public, max-age=… for the public geography reads", true, str()),
		"Retry-After":      h("Seconds to wait before trying again", true, map[string]any{"type": "integer", "minimum": 0}),
		"WWW-Authenticate": h(`Bearer realm="api"`, true, str()),
		"Allow":            h("The methods this route answers, as DRF lists them", true, str()),
	}
}

// OpenAPI builds the document, once. Every GET is documented with its HEAD,
// and every path with OPTIONS; each path also answers without its trailing
// slash (see info.description).
var OpenAPI = sync.OnceValue(func() map[string]any {
	paths := map[string]any{}
	firstOp := map[string]op{}
	for _, o := range ops {
		p := openAPIPath(o.Path)
		item, _ := paths[p].(map[string]any)
		if item == nil {
			item = map[string]any{}
			paths[p] = item
			firstOp[p] = o
		}
		var params []any
		for _, m := range echoParam.FindAllStringSubmatch(o.Path, -1) {
			params = append(params, pathParam(o.Path, m[1]))
		}
		if strings.Contains(o.Path, "*") {
			params = append(params, map[string]any{"name": "path", "in": "path", "required": true, "schema": str()})
		}
		for _, q := range o.Query {
			params = append(params, queryParams[q])
		}
		operation := map[string]any{"operationId": o.ID, "summary": o.Summary, "tags": []string{o.Tag},
			"responses": responses(o, false), "security": security(o)}
		if len(params) > 0 {
			operation["parameters"] = params
		}
		switch o.Body {
		case "":
		case "multipart":
			form := obj(map[string]any{"file": map[string]any{"type": "string", "format": "binary"}}, "file")
			form["additionalProperties"] = true // other parts are ignored
			operation["requestBody"] = map[string]any{"content": map[string]any{"multipart/form-data": map[string]any{"schema": form}}}
		default:
			// Not required: an empty body is read as {} (as DRF does), and
			// the schema says which fields must be there.
			operation["requestBody"] = map[string]any{"content": map[string]any{"application/json": map[string]any{"schema": ref(o.Body)}}}
		}
		item[strings.ToLower(o.Method)] = operation
		if o.Method == http.MethodGet {
			head := map[string]any{"operationId": o.ID + "Head", "summary": o.Summary + " (HEAD: the headers only)", "tags": []string{o.Tag},
				"responses": responses(o, true), "security": security(o)}
			if len(params) > 0 {
				head["parameters"] = params
			}
			item["head"] = head
		}
	}
	for p, o := range firstOp {
		opts := op{Method: http.MethodOptions, Path: o.Path, Status: http.StatusOK}
		var params []any
		for _, m := range echoParam.FindAllStringSubmatch(o.Path, -1) {
			params = append(params, pathParam(o.Path, m[1]))
		}
		if strings.Contains(o.Path, "*") {
			params = append(params, map[string]any{"name": "path", "in": "path", "required": true, "schema": str()})
		}
		res := responses(opts, false)
		res["200"] = map[string]any{"description": "The methods of this route (Allow) and the media types it reads and writes",
			"headers": map[string]any{"X-Request-ID": hdrRef("X-Request-ID"), "Allow": hdrRef("Allow")},
			"content": map[string]any{"application/json": map[string]any{"schema": ref("Options")}}}
		operation := map[string]any{"operationId": o.ID + "Options", "summary": "The methods this route answers (Allow)",
			"tags": []string{o.Tag}, "responses": res, "security": []any{}}
		if len(params) > 0 {
			operation["parameters"] = params
		}
		paths[p].(map[string]any)["options"] = operation
	}
	// Each path also without its trailing slash: the same operations under
	// their own operationIds (…NoSlash), so that a validating proxy accepts
	// both forms and code generators keep ids unique. x-isis-alias-of names
	// the path they repeat.
	for p := range firstOp {
		if len(p) < 2 || !strings.HasSuffix(p, "/") {
			continue
		}
		alias := map[string]any{"x-isis-alias-of": p}
		for method, v := range paths[p].(map[string]any) {
			o := map[string]any{}
			for k, x := range v.(map[string]any) {
				o[k] = x
			}
			o["operationId"] = o["operationId"].(string) + "NoSlash"
			o["summary"] = o["summary"].(string) + " (path without the trailing slash)"
			o["tags"] = []string{noSlashTag} // together, after the others, on the docs page
			alias[method] = o
		}
		paths[strings.TrimSuffix(p, "/")] = alias
	}
	return map[string]any{
		"openapi": "3.0.3",
		"info": map[string]any{"title": "isis API", "version": api.Version,
			"description": "Users, profiles and Colombia's DIVIPOLA geography; SimpleJWT-compatible authentication. " +
				"Every error is the Error envelope. Every path answers with and without its trailing slash (no redirect, " +
				"so a POST body is kept); both forms are here, those without it marked x-isis-alias-of. Every response carries " +
				"X-Request-ID; a method a route does not answer is 405 with Allow."},
		"servers":  []any{map[string]any{"url": "/"}},
		"security": []any{map[string]any{"bearer": []string{}}},
		"tags": []any{
			map[string]any{"name": "health", "description": "Liveness, readiness, this document"},
			map[string]any{"name": "auth", "description": "Tokens (SimpleJWT-compatible) and accounts"},
			map[string]any{"name": "users", "description": "Users"},
			map[string]any{"name": "profiles", "description": "Profiles and avatars"},
			map[string]any{"name": "geography", "description": "Departments and municipalities (DANE codes)"},
			map[string]any{"name": "static", "description": "Static assets and media"},
			map[string]any{"name": noSlashTag, "description": "The same operations on the paths without their trailing slash"},
		},
		"paths": paths,
		"components": map[string]any{
			"schemas":         schemas(),
			"responses":       errorResponses(),
			"headers":         headers(),
			"securitySchemes": map[string]any{"bearer": map[string]any{"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
		},
	}
})

var openAPIJSON = sync.OnceValues(func() ([]byte, error) { return marshal(OpenAPI()) })

func (s *Server) handleSchema(c echo.Context) error {
	b, err := openAPIJSON()
	if err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "public, max-age=300")
	return writeBlobJSON(c, http.StatusOK, b)
}
