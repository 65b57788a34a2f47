package apihttp

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
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

// bindJSON decodes a JSON object body into dst, DRF-style: an empty body is
// {}, other media types get 415, bad JSON 400 parse_error, a value of the
// wrong type 400 invalid naming the field.
func (s *Server) bindJSON(c echo.Context, dst any) error {
	r := c.Request()
	if r.ContentLength > s.Config.MaxBodyBytes {
		drain(r.Body)
		return api.Errorf(api.ETOOLARGE, "Request body is too large (limit %d bytes).", s.Config.MaxBodyBytes)
	}
	ct := r.Header.Get("Content-Type")
	if hasBody(c) || ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			drain(r.Body)
			if ct == "" {
				return api.Errorf(api.EUNSUPPORTEDMEDIA, "Unsupported media type \"\" in request; send application/json.")
			}
			return api.Errorf(api.EUNSUPPORTEDMEDIA, "Unsupported media type %q in request.", truncate(ct, 100))
		}
	}
	b, err := readBody(c, s.Config.MaxBodyBytes)
	if err != nil {
		return err
	}
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		b = []byte("{}")
	}
	if b[0] != '{' {
		if !json.Valid(b) {
			return parseError(json.Unmarshal(b, new(any)))
		}
		return api.Errorf(api.EPARSE, "JSON parse error - expected an object.")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(dst); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			var fe api.FieldErrors
			fe.Add(te.Field, fmt.Sprintf("Expected %s, got %s.", jsonKind(te.Type.Kind().String()), te.Value))
			return fe.Err()
		}
		return parseError(err)
	}
	if dec.More() {
		return api.Errorf(api.EPARSE, "JSON parse error - extra data after the object.")
	}
	return nil
}

func parseError(err error) error {
	msg := "invalid JSON"
	if err != nil {
		msg = err.Error()
		msg = strings.TrimPrefix(msg, "json: ")
	}
	return api.Errorf(api.EPARSE, "JSON parse error - %s", truncate(msg, 200))
}

func jsonKind(k string) string {
	switch k {
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	case "int", "int64", "int32", "float64", "uint", "uint64":
		return "a number"
	case "slice":
		return "a list"
	case "map", "struct", "ptr":
		return "an object"
	}
	return k
}
