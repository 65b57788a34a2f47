package apihttp

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/isis-project/isis/api"
	"github.com/labstack/echo/v4"
)

// codeStatus maps domain error codes to HTTP statuses, in one place.
var codeStatus = map[string]int{
	api.EINVALID:          http.StatusBadRequest,
	api.EPARSE:            http.StatusBadRequest,
	api.EBADREQUEST:       http.StatusBadRequest,
	api.EUNAUTHENTICATED:  http.StatusUnauthorized,
	api.ETOKENINVALID:     http.StatusUnauthorized,
	api.EAUTHFAILED:       http.StatusUnauthorized,
	api.EFORBIDDEN:        http.StatusForbidden,
	api.ENOTFOUND:         http.StatusNotFound,
	api.EMETHOD:           http.StatusMethodNotAllowed,
	api.ETIMEOUT:          http.StatusRequestTimeout,
	api.ECONFLICT:         http.StatusConflict,
	api.EGOOGLENOTLINKED:  http.StatusConflict,
	api.EGOOGLEINUSE:      http.StatusConflict,
	api.ETOOLARGE:         http.StatusRequestEntityTooLarge,
	api.EUNSUPPORTEDMEDIA: http.StatusUnsupportedMediaType,
	api.ETHROTTLED:        http.StatusTooManyRequests,
	api.EINTERNAL:         http.StatusInternalServerError,
	api.EUNAVAILABLE:      http.StatusServiceUnavailable,
}

// statusCode maps other statuses Echo may produce to a code.
var statusCode = map[int]string{
	http.StatusBadRequest:            api.EBADREQUEST,
	http.StatusUnauthorized:          api.EUNAUTHENTICATED,
	http.StatusForbidden:             api.EFORBIDDEN,
	http.StatusNotFound:              api.ENOTFOUND,
	http.StatusMethodNotAllowed:      api.EMETHOD,
	http.StatusRequestTimeout:        api.ETIMEOUT,
	http.StatusConflict:              api.ECONFLICT,
	http.StatusRequestEntityTooLarge: api.ETOOLARGE,
	http.StatusUnsupportedMediaType:  api.EUNSUPPORTEDMEDIA,
	http.StatusTooManyRequests:       api.ETHROTTLED,
	http.StatusServiceUnavailable:    api.EUNAVAILABLE,
}

// errorBody is the one JSON error envelope.
type errorBody struct {
	Detail    string          `json:"detail"`
	Code      string          `json:"code"`
	RequestID string          `json:"request_id"`
	Errors    api.FieldErrors `json:"errors,omitempty"`
}

// toAPIError turns any error a handler or Echo returns into an *api.Error.
func toAPIError(err error, c echo.Context) *api.Error {
	var ae *api.Error
	if errors.As(err, &ae) {
		if _, ok := codeStatus[ae.Code]; !ok {
			return api.WrapError(api.EINTERNAL, "A server error occurred.", err)
		}
		if ae.Code == api.EINTERNAL {
			return api.WrapError(api.EINTERNAL, "A server error occurred.", err)
		}
		return ae
	}
	var he *echo.HTTPError
	if errors.As(err, &he) {
		switch he.Code {
		case http.StatusNotFound:
			return api.Errorf(api.ENOTFOUND, "Not found.")
		case http.StatusMethodNotAllowed:
			return api.Errorf(api.EMETHOD, "Method %q not allowed.", c.Request().Method)
		case http.StatusRequestEntityTooLarge:
			return api.Errorf(api.ETOOLARGE, "Request body is too large.")
		case http.StatusUnsupportedMediaType:
			return api.Errorf(api.EUNSUPPORTEDMEDIA, "Unsupported media type %q in request.", c.Request().Header.Get("Content-Type"))
		}
		if code, ok := statusCode[he.Code]; ok {
			return api.WrapError(code, http.StatusText(he.Code)+".", err)
		}
		return api.WrapError(api.EINTERNAL, "A server error occurred.", err)
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return api.Errorf(api.ETOOLARGE, "Request body is too large.")
	}
	return api.WrapError(api.EINTERNAL, "A server error occurred.", err)
}

// handleError is Echo's HTTPErrorHandler: it writes every failure as the one
// envelope. The cause of a 5xx stays in the log line of the same request.
func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	ae := toAPIError(err, c)
	status := codeStatus[ae.Code]
	if status >= 500 || ae.Err != nil {
		setLogError(c, err)
	}
	h := c.Response().Header()
	h.Set("Cache-Control", "no-store")
	switch status {
	case http.StatusUnauthorized:
		h.Set("WWW-Authenticate", `Bearer realm="api"`)
	case http.StatusServiceUnavailable:
		if h.Get("Retry-After") == "" {
			h.Set("Retry-After", "5")
		}
	}
	body := errorBody{Detail: ae.Message, Code: ae.Code, RequestID: requestID(c), Errors: ae.Fields}
	if ae.Code != api.EINVALID {
		body.Errors = nil
	}
	if body.Detail == "" {
		body.Detail = http.StatusText(status)
	}
	if err := c.JSON(status, body); err != nil {
		s.Logger.Error("write error response", "request_id", requestID(c), "error", fmt.Sprint(err))
	}
}
