package apihttp

import (
	"os"
	"strings"

	"github.com/labstack/echo/v4"
)

// queryParam is c.QueryParam(name) for a name with nothing to escape. On a
// query with nothing to unescape it reads the raw query in place: Echo's
// QueryParam parses the whole query into a map (three allocations, a fifth of
// the bytes a cached municipality list allocated per request) before the
// cache is even asked.
func queryParam(c echo.Context, name string) string {
	if v, ok := plainQueryValue(c.Request().URL.RawQuery, name); ok {
		return v
	}
	return c.QueryParam(name)
}

// plainQueryMax is how many parameters plainQueryValue reads; net/url
// refuses a query past its own limit (10,000 by default), which an operator
// can lower with GODEBUG=urlmaxqueryparams: then it always defers to net/url.
var plainQueryMax = func() int {
	if strings.Contains(os.Getenv("GODEBUG"), "urlmaxqueryparams") {
		return 0
	}
	return 32
}()

// plainQueryValue is url.ParseQuery(raw).Get(name) when raw needs no
// unescaping (no '%' or '+'), has no ';' (which net/url refuses) and at most
// plainQueryMax parameters; ok is false otherwise, and the caller must
// parse. name must need no escaping. FuzzPlainQueryValue holds it to
// net/url.
func plainQueryValue(raw, name string) (v string, ok bool) {
	if strings.ContainsAny(raw, "%+;") || strings.Count(raw, "&") >= plainQueryMax {
		return "", false
	}
	for raw != "" {
		var kv string
		kv, raw, _ = strings.Cut(raw, "&")
		if k, val, _ := strings.Cut(kv, "="); k == name {
			return val, true
		}
	}
	return "", true
}
