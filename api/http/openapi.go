package apihttp

import (
	"net/http"
	"regexp"
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
	"page":       {"name": "page", "in": "query", "description": "1-based page number; past the end is 404", "schema": map[string]any{"type": "integer", "minimum": 1}},
	"page_size":  {"name": "page_size", "in": "query", "description": "results per page (default 50, at most 500)", "schema": map[string]any{"type": "integer", "minimum": 1, "maximum": 500}},
	"search":     {"name": "search", "in": "query", "description": "accent- and case-insensitive; whitespace-separated terms must all match", "schema": map[string]any{"type": "string"}},
	"ordering":   {"name": "ordering", "in": "query", "description": "a field, - for descending; several comma-separated; unknown fields are ignored", "schema": map[string]any{"type": "string"}},
	"department": {"name": "department", "in": "query", "description": "2-digit DANE department code", "schema": map[string]any{"type": "string", "pattern": "^[0-9]{2}$"}},
}

var list = []string{"page", "page_size", "search", "ordering"}

// ops lists every route the server registers, documented.
var ops = []op{
	{"GET", "/api", "apiRoot", "API root (HEAD too, for smoke tests)", "health", "", nil, "", 200, "Root", nil},
	{"GET", "/api/health", "health", "The process is up (no database access)", "health", "", nil, "", 200, "Health", nil},
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
func orNull(s map[string]any) map[string]any {
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
			"birth_date": orNull(strf("date")), "department": orNull(ref("Place")), "municipality": orNull(ref("Place")),
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
	}
}

var errorText = map[int]string{304: "Not modified (If-None-Match)", 400: "Invalid input", 401: "Not authenticated or bad token",
	403: "Permission denied", 404: "Not found", 408: "Upload too slow", 409: "Conflict", 413: "Payload too large", 415: "Unsupported media type",
	429: "Throttled (Retry-After)", 503: "Service unavailable"}

// OpenAPI builds the document, once.
var OpenAPI = sync.OnceValue(func() map[string]any {
	paths := map[string]any{}
	for _, o := range ops {
		p := openAPIPath(o.Path)
		item, _ := paths[p].(map[string]any)
		if item == nil {
			item = map[string]any{}
			paths[p] = item
		}
		var params []any
		for _, m := range echoParam.FindAllStringSubmatch(o.Path, -1) {
			params = append(params, map[string]any{"name": m[1], "in": "path", "required": true, "schema": str()})
		}
		if strings.Contains(o.Path, "*") {
			params = append(params, map[string]any{"name": "path", "in": "path", "required": true, "schema": str()})
		}
		for _, q := range o.Query {
			params = append(params, queryParams[q])
		}
		resp := map[string]any{"description": http.StatusText(o.Status)}
		if o.Resp != "" {
			resp["content"] = map[string]any{"application/json": map[string]any{"schema": ref(o.Resp)}}
		}
		responses := map[string]any{strconv.Itoa(o.Status): resp}
		codes := append([]int{}, o.Errors...)
		if o.Auth != "" {
			codes = append(codes, 401)
		}
		if o.Auth == "staff" {
			codes = append(codes, 403)
		}
		codes = append(codes, 500)
		sort.Ints(codes)
		for _, code := range codes {
			if code == 304 {
				responses["304"] = map[string]any{"description": errorText[304]}
				continue
			}
			responses[strconv.Itoa(code)] = map[string]any{"$ref": "#/components/responses/Error"}
		}
		operation := map[string]any{"operationId": o.ID, "summary": o.Summary, "tags": []string{o.Tag}, "responses": responses}
		if len(params) > 0 {
			operation["parameters"] = params
		}
		if o.Auth != "" {
			operation["security"] = []any{map[string]any{"bearer": []string{}}}
		}
		switch o.Body {
		case "":
		case "multipart":
			operation["requestBody"] = map[string]any{"required": true, "content": map[string]any{"multipart/form-data": map[string]any{
				"schema": obj(map[string]any{"file": map[string]any{"type": "string", "format": "binary"}}, "file")}}}
		default:
			operation["requestBody"] = map[string]any{"required": true, "content": map[string]any{"application/json": map[string]any{"schema": ref(o.Body)}}}
		}
		item[strings.ToLower(o.Method)] = operation
	}
	return map[string]any{
		"openapi": "3.0.3",
		"info": map[string]any{"title": "isis API", "version": api.Version,
			"description": "Users, profiles and Colombia's DIVIPOLA geography; SimpleJWT-compatible authentication. Every error is the Error envelope."},
		"paths": paths,
		"components": map[string]any{
			"schemas":         schemas(),
			"responses":       map[string]any{"Error": map[string]any{"description": "The error envelope", "content": map[string]any{"application/json": map[string]any{"schema": ref("Error")}}}},
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
