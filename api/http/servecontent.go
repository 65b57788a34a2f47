package apihttp

import (
	"io"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
)

// serveContent is http.ServeContent with the error answers it makes on its
// own (416 for a Range it cannot satisfy or parse, 412 for a failed
// If-Match or If-Unmodified-Since) in the JSON error envelope, as every other
// non-2xx answer is, instead of text/plain or an empty body.
func serveContent(c echo.Context, name string, modtime time.Time, content io.ReadSeeker) error {
	w := &contentErrorWriter{ResponseWriter: c.Response()}
	http.ServeContent(w, c.Request(), name, modtime, content)
	var code, detail string
	switch w.status {
	case 0:
		return nil
	case http.StatusRequestedRangeNotSatisfiable:
		code, detail = "range_not_satisfiable", "The Range header cannot be satisfied for this file."
	case http.StatusPreconditionFailed:
		code, detail = "precondition_failed", "A precondition (If-Match or If-Unmodified-Since) failed."
	default:
		code, detail = "bad_request", http.StatusText(w.status)
	}
	h := c.Response().Header()
	h.Del("X-Content-Type-Options") // what http.Error set for its text/plain body
	h.Set("Cache-Control", "no-store")
	b, err := marshal(errorBody{Detail: detail, Code: code, RequestID: requestID(c)})
	if err != nil {
		return err
	}
	return writeBlobJSON(c, w.status, b)
}

// contentErrorWriter holds back an error status and its body; everything
// else goes through.
type contentErrorWriter struct {
	http.ResponseWriter
	status int // an error status held back, 0 if none
}

func (w *contentErrorWriter) WriteHeader(code int) {
	if code >= 400 {
		w.status = code
		return
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *contentErrorWriter) Write(b []byte) (int, error) {
	if w.status != 0 {
		return len(b), nil
	}
	return w.ResponseWriter.Write(b)
}
