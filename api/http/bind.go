package apihttp

import (
	"bytes"
	"encoding/json"
	"io"
	"math"
	"math/big"
	"mime"
	"net/http"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"github.com/isis-project/isis/api"
	"github.com/labstack/echo/v4"
)

// drainLimit bounds how much of an oversized body is read and discarded so
// the client still receives the 413, as nginx does.
const drainLimit = 16 << 20

// readBody returns the request body, at most limit bytes: ETOOLARGE past it
// (after draining up to drainLimit).
func readBody(c echo.Context, limit int64) ([]byte, error) {
	r := c.Request()
	if r.ContentLength > limit {
		drain(r.Body)
		return nil, api.Errorf(api.ETOOLARGE, "Request body is too large (limit %d bytes).", limit)
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return nil, api.WrapError(api.EPARSE, "Could not read the request body.", err)
	}
	if int64(len(b)) > limit {
		drain(r.Body)
		return nil, api.Errorf(api.ETOOLARGE, "Request body is too large (limit %d bytes).", limit)
	}
	return b, nil
}

func drain(r io.Reader) { _, _ = io.CopyN(io.Discard, r, drainLimit) }

// hasBody reports whether the request carries a body.
func hasBody(c echo.Context) bool {
	r := c.Request()
	return r.ContentLength > 0 || (r.ContentLength < 0 && r.Body != nil && r.Body != http.NoBody)
}

// bindJSON decodes a JSON object body into dst (a pointer to a struct) as
// bindFields does, and returns its field errors as one error.
func (s *Server) bindJSON(c echo.Context, dst any) error {
	fe, err := s.bindFields(c, dst)
	if err != nil {
		return err
	}
	return fe.Err()
}

// bindFields decodes a JSON object body into dst, DRF-style: an empty body
// is {}, other media types get 415, bad JSON 400 parse_error, a body that is
// not an object 400 invalid (non_field_errors, DRF's words). Then every
// field is read as a DRF serializer field of its Go type (see decodeField):
// the messages for all the bad fields come back together, those fields left
// unset, for the handler to add its own checks of the other fields to.
func (s *Server) bindFields(c echo.Context, dst any) (api.FieldErrors, error) {
	r := c.Request()
	if r.ContentLength > s.Config.MaxBodyBytes {
		drain(r.Body)
		return nil, api.Errorf(api.ETOOLARGE, "Request body is too large (limit %d bytes).", s.Config.MaxBodyBytes)
	}
	ct := r.Header.Get("Content-Type")
	if hasBody(c) || ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			drain(r.Body)
			if ct == "" {
				return nil, api.Errorf(api.EUNSUPPORTEDMEDIA, "Unsupported media type \"\" in request; send application/json.")
			}
			return nil, api.Errorf(api.EUNSUPPORTEDMEDIA, "Unsupported media type %q in request.", truncate(ct, 100))
		}
	}
	b, err := readBody(c, s.Config.MaxBodyBytes)
	if err != nil {
		return nil, err
	}
	return decodeObject(b, dst)
}

// decodeObject is bindFields after the body is read.
func decodeObject(b []byte, dst any) (api.FieldErrors, error) {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		b = []byte("{}")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var top any
	if err := dec.Decode(&top); err != nil {
		return nil, parseError(err)
	}
	if dec.More() {
		return nil, api.Errorf(api.EPARSE, "JSON parse error - extra data after the object.")
	}
	if _, ok := top.(map[string]any); !ok {
		var fe api.FieldErrors
		if top == nil {
			fe.Add(nonFieldErrors, "No data provided")
		} else {
			fe.Add(nonFieldErrors, "Invalid data. Expected a dictionary, but got "+pyType(top)+".")
		}
		return nil, fe.Err()
	}
	if m, ok := dst.(*map[string]any); ok {
		*m = top.(map[string]any)
		return nil, nil
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, parseError(err)
	}
	var fe api.FieldErrors
	v := reflect.ValueOf(dst).Elem()
	t := v.Type()
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name == "" || name == "-" {
			continue
		}
		if m, ok := raw[name]; ok {
			if msg := decodeField(v.Field(i).Addr().Interface(), m); msg != "" {
				fe.Add(name, msg)
			}
		}
	}
	return fe, nil
}

// nonFieldErrors is DRF's key for errors about the whole body.
const nonFieldErrors = "non_field_errors"

const msgNotNull = "This field may not be null."

// decodeField reads one present field as the DRF field of the destination's
// type does, returning DRF's message when it is not accepted:
//   - *string: a CharField: a string, or a number taken as its text; null
//     and other types are refused;
//   - *bool: a BooleanField: true/false and DRF's words for them ("yes",
//     "0", …); null refused;
//   - *nullable[string]: null, a string, or any other value kept (as Python
//     prints it) for the handler to refuse with its field's message.
func decodeField(dst any, m json.RawMessage) string {
	var v any
	d := json.NewDecoder(bytes.NewReader(m))
	d.UseNumber()
	if err := d.Decode(&v); err != nil {
		return "Invalid input."
	}
	switch p := dst.(type) {
	case **string:
		switch x := v.(type) {
		case nil:
			return msgNotNull
		case string:
			*p = &x
		case json.Number:
			s := pyNumber(x)
			*p = &s
		default:
			return "Not a valid string."
		}
	case **bool:
		if v == nil {
			return msgNotNull
		}
		b, ok := drfBool(v)
		if !ok {
			return "Must be a valid boolean."
		}
		*p = &b
	case *nullable[string]:
		p.Set = true
		switch x := v.(type) {
		case nil:
		case string:
			p.Value = &x
		default:
			p.Bad = pyStr(v)
		}
	default:
		if err := json.Unmarshal(m, dst); err != nil {
			return "Invalid input."
		}
	}
	return ""
}

// drfBool is DRF's BooleanField.to_internal_value.
func drfBool(v any) (bool, bool) {
	switch x := v.(type) {
	case bool:
		return x, true
	case string:
		switch x {
		case "t", "T", "y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON", "1":
			return true, true
		case "f", "F", "n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF", "0":
			return false, true
		}
	case json.Number:
		if f, err := x.Float64(); err == nil && (f == 0 || f == 1) {
			return f == 1, true
		}
	}
	return false, false
}

// pyType names a decoded JSON value's type as Python does.
func pyType(v any) string {
	switch x := v.(type) {
	case []any:
		return "list"
	case string:
		return "str"
	case bool:
		return "bool"
	case json.Number:
		if isPyInt(x) {
			return "int"
		}
		return "float"
	}
	return "dict"
}

func isPyInt(n json.Number) bool { return !strings.ContainsAny(string(n), ".eE") }

// pyNumber is Python's str() of a JSON number, as DRF's CharField stores it.
func pyNumber(n json.Number) string {
	if isPyInt(n) {
		if i, ok := new(big.Int).SetString(string(n), 10); ok {
			return i.String()
		}
		return string(n)
	}
	f, err := n.Float64()
	if err != nil {
		return string(n)
	}
	if a := math.Abs(f); f == 0 || (a >= 1e-4 && a < 1e16) {
		s := strconv.FormatFloat(f, 'f', -1, 64)
		if !strings.Contains(s, ".") {
			s += ".0"
		}
		return s
	}
	return strconv.FormatFloat(f, 'e', -1, 64)
}

// pyStr is Python's str() of a decoded JSON value, as DRF quotes a value in
// a message ("Unknown department code True.").
func pyStr(v any) string {
	switch x := v.(type) {
	case nil:
		return "None"
	case bool:
		if x {
			return "True"
		}
		return "False"
	case string:
		return x
	case json.Number:
		return pyNumber(x)
	}
	return truncate(pyRepr(v), 100)
}

func pyRepr(v any) string {
	switch x := v.(type) {
	case string:
		return "'" + strings.ReplaceAll(x, "'", "\\'") + "'"
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = pyRepr(e)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = pyRepr(k) + ": " + pyRepr(x[k])
		}
		return "{" + strings.Join(parts, ", ") + "}"
	}
	return pyStr(v)
}

func parseError(err error) error {
	msg := "invalid JSON"
	if err != nil {
		msg = err.Error()
		msg = strings.TrimPrefix(msg, "json: ")
	}
	return api.Errorf(api.EPARSE, "JSON parse error - %s", truncate(msg, 200))
}
