package watcher

import (
	"fmt"
	"net/http"
	"strings"
	"unicode/utf16"
)

// apiError is an error answered to the client in Watcher's envelope: the
// WSME fault ({"faultcode", "faultstring", "debuginfo"}) serialised as a
// string inside {"error_message": ...}. Errors raised by pecan's routing
// (404 for an unknown path, 405, the 406 of version negotiation) carry
// pecan's body ({"code", "title", "description"}) instead, as Watcher's
// do.
type apiError struct {
	status int
	msg    string
	// pecan selects pecan's inner body.
	pecan bool
	// header is set on the response (WWW-Authenticate, Allow).
	header http.Header
}

func (e *apiError) Error() string { return e.msg }

func errorf(status int, format string, args ...any) *apiError {
	return &apiError{status: status, msg: fmt.Sprintf(format, args...)}
}

// Watcher's exceptions by status.
func badRequest(format string, args ...any) *apiError {
	return errorf(http.StatusBadRequest, format, args...)
}

func notFoundErr(format string, args ...any) *apiError {
	return errorf(http.StatusNotFound, format, args...)
}

func conflictErr(format string, args ...any) *apiError {
	return errorf(http.StatusConflict, format, args...)
}

// notAcceptable is Watcher's NotAcceptable exception (a feature asked for
// below its microversion).
func notAcceptable() *apiError {
	return errorf(http.StatusNotAcceptable, "Request not acceptable.")
}

func pecanError(status int, description string) *apiError {
	return &apiError{status: status, msg: description, pecan: true}
}

// routeNotFound is pecan's 404 for a path no controller serves.
func routeNotFound() *apiError {
	return pecanError(http.StatusNotFound, "The resource could not be found.")
}

// errorBody renders the envelope byte for byte as Python's json.dumps
// does (", " and ": " separators, non-ASCII escaped).
func errorBody(e *apiError) []byte {
	var inner string
	if e.pecan {
		inner = fmt.Sprintf(`{"code": %d, "title": %s, "description": %s}`, e.status,
			pyQuote(http.StatusText(e.status)), pyQuote(e.msg))
	} else {
		code := "Client"
		if e.status >= 500 {
			code = "Server"
		}
		inner = fmt.Sprintf(`{"faultcode": %s, "faultstring": %s, "debuginfo": null}`, pyQuote(code), pyQuote(e.msg))
	}
	return []byte(`{"error_message": ` + pyQuote(inner) + `}`)
}

// pyQuote is Python's json string encoding with ensure_ascii.
func pyQuote(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\b':
			b.WriteString(`\b`)
		case r == '\f':
			b.WriteString(`\f`)
		case r < 0x20 || (r >= 0x7f && r <= 0xffff):
			fmt.Fprintf(&b, `\u%04x`, r)
		case r > 0xffff:
			r1, r2 := utf16.EncodeRune(r)
			fmt.Fprintf(&b, `\u%04x\u%04x`, r1, r2)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

func writeError(w http.ResponseWriter, e *apiError) {
	for k, vs := range e.header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(e.status)
	_, _ = w.Write(errorBody(e))
}
