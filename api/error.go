package api

import (
	"errors"
	"fmt"
)

// Error codes. Each maps to one HTTP status in api/http; the strings are the
// `code` values of the JSON error envelope.
const (
	EINVALID          = "invalid"                // 400, with field errors
	EPARSE            = "parse_error"            // 400, malformed body
	EBADREQUEST       = "bad_request"            // 400, e.g. a Host not allowed
	EUNAUTHENTICATED  = "not_authenticated"      // 401
	ETOKENINVALID     = "token_not_valid"        // 401
	EAUTHFAILED       = "authentication_failed"  // 401
	EFORBIDDEN        = "permission_denied"      // 403
	ENOTFOUND         = "not_found"              // 404
	EMETHOD           = "method_not_allowed"     // 405
	ETIMEOUT          = "request_timeout"        // 408, the body came too slowly
	ECONFLICT         = "conflict"               // 409
	ETOOLARGE         = "payload_too_large"      // 413
	EUNSUPPORTEDMEDIA = "unsupported_media_type" // 415
	ETHROTTLED        = "throttled"              // 429
	EINTERNAL         = "server_error"           // 500
	EUNAVAILABLE      = "service_unavailable"    // 503
)

// Google account linking conflicts (409).
const (
	// EGOOGLENOTLINKED: Google sign-in to an existing account not linked to
	// that Google account.
	EGOOGLENOTLINKED = "google_account_not_linked"
	// EGOOGLEINUSE: the Google account is linked to another user.
	EGOOGLEINUSE = "google_account_in_use"
)

// Error is the domain error. Message is safe to show to a client; the
// wrapped Err, if any, is for logs only.
type Error struct {
	Code    string
	Message string
	// Fields holds per-field validation messages (code EINVALID).
	Fields FieldErrors
	// Err is the underlying cause, logged but never returned to a client.
	Err error
}

// Error implements the error interface.
func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// WrapError returns an *Error carrying err as its (logged, never shown) cause.
func WrapError(code, message string, err error) *Error {
	return &Error{Code: code, Message: message, Err: err}
}

// ErrorCode returns the code of err, EINTERNAL for errors that are not *Error
// and "" for nil.
func ErrorCode(err error) string {
	var e *Error
	switch {
	case err == nil:
		return ""
	case errors.As(err, &e):
		return e.Code
	default:
		return EINTERNAL
	}
}

// FieldErrors collects validation messages by field name, as DRF does.
type FieldErrors map[string][]string

// Add appends a message for field.
func (f *FieldErrors) Add(field, msg string) {
	if *f == nil {
		*f = FieldErrors{}
	}
	(*f)[field] = append((*f)[field], msg)
}

// Err returns nil when there are no field errors, or an EINVALID *Error.
func (f FieldErrors) Err() error {
	if len(f) == 0 {
		return nil
	}
	return &Error{Code: EINVALID, Message: f.summary(), Fields: f}
}

// summary is the envelope's detail, as the DRF system wrote it: the message
// itself when the body as a whole was refused (non_field_errors only),
// else "Invalid input.".
func (f FieldErrors) summary() string {
	if msgs := f["non_field_errors"]; len(f) == 1 && len(msgs) > 0 {
		return msgs[0]
	}
	return "Invalid input."
}
