package watcher

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/ballast-cloud/ballast/web/store"
)

// listArgs are a collection request's validated query arguments.
type listArgs struct {
	page store.Page
	// filters are the filter arguments given, in request order; next links
	// keep them (Watcher drops them).
	filters [][2]string
	values  url.Values
}

func (l listArgs) get(name string) string { return l.values.Get(name) }

// listSpec describes a collection's query arguments.
type listSpec struct {
	collection string
	// filters are the accepted filter names; uuidFilters must be UUIDs.
	filters, uuidFilters []string
	// intMarker: services page by integer id.
	intMarker bool
}

func invalidInput(field, value, reason string) *apiError {
	return badRequest("Invalid input for field/attribute %s. Value: '%s'. %s", field, truncate(value), reason)
}

// parseList validates the query arguments in Watcher's order: argument
// names and types (WSME), then sort key, limit and sort direction.
func (a *API) parseList(r *http.Request, spec listSpec) (listArgs, error) {
	q := r.URL.Query()
	args := listArgs{values: url.Values{}}
	known := append([]string{"marker", "limit", "sort_key", "sort_dir"}, spec.filters...)
	for _, kv := range strings.Split(r.URL.RawQuery, "&") {
		if kv == "" {
			continue
		}
		k, _, _ := strings.Cut(kv, "=")
		name, err := url.QueryUnescape(k)
		if err != nil {
			return args, badRequest("Invalid query string: %s", jsonErr(err))
		}
		if !slices.Contains(known, name) {
			return args, badRequest("Unknown argument: %q", name)
		}
		if _, seen := args.values[name]; seen {
			continue
		}
		v := q.Get(name)
		args.values.Set(name, v)
		if slices.Contains(spec.filters, name) && v != "" {
			args.filters = append(args.filters, [2]string{name, v})
		}
	}
	if m := args.get("marker"); m != "" {
		if spec.intMarker {
			if _, err := strconv.ParseInt(m, 10, 64); err != nil {
				return args, invalidInput("marker", m, "unable to convert to int")
			}
		} else if !store.IsUUIDLike(m) {
			return args, invalidInput("marker", m, "Expected a uuid but received "+m)
		}
		args.page.Marker = m
	}
	for _, f := range spec.uuidFilters {
		if v := args.get(f); v != "" && !store.IsUUIDLike(v) {
			return args, invalidInput(f, v, "Expected a uuid but received "+v)
		}
	}
	limit := a.cfg.MaxLimit
	if l, ok := args.values["limit"]; ok {
		n, err := strconv.Atoi(strings.TrimSpace(l[0]))
		if err != nil {
			return args, invalidInput("limit", l[0], "unable to convert to int")
		}
		limit = n
	}
	args.page.SortKey = args.get("sort_key")
	if _, ok := args.values["sort_key"]; ok && args.page.SortKey == "" {
		return args, badRequest("Invalid sort key: ")
	}
	if err := store.CheckSortKey(spec.collection, args.page.SortKey); err != nil {
		return args, err
	}
	if limit <= 0 {
		return args, badRequest("Limit must be positive")
	}
	args.page.Limit = min(limit, a.cfg.MaxLimit)
	args.page.SortDir = args.get("sort_dir")
	if _, ok := args.values["sort_dir"]; ok && args.page.SortDir != "asc" && args.page.SortDir != "desc" {
		return args, badRequest("Invalid sort direction: %s. Acceptable values are 'asc' or 'desc'", args.page.SortDir)
	}
	return args, nil
}

// baseURL is the scheme and host links are built on (Watcher's host_url).
func (a *API) baseURL(r *http.Request) string {
	if a.cfg.ExternalURL != "" {
		return a.cfg.ExternalURL
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// nextLink is Watcher's `next`: present only when the page is full. It
// keeps the filters, which Watcher's drops.
func (a *API) nextLink(r *http.Request, resource string, args listArgs, n int, lastMarker string) (string, bool) {
	if n == 0 || n != args.page.Limit {
		return "", false
	}
	var b strings.Builder
	b.WriteString(a.baseURL(r))
	b.WriteString("/v1/")
	b.WriteString(resource)
	b.WriteByte('?')
	for _, f := range args.filters {
		b.WriteString(url.QueryEscape(f[0]) + "=" + url.QueryEscape(f[1]) + "&")
	}
	key, dir := args.page.SortKey, args.page.SortDir
	if key == "" {
		key = "id"
	}
	if dir == "" {
		dir = "asc"
	}
	fmt.Fprintf(&b, "sort_key=%s&sort_dir=%s&limit=%d&marker=%s", url.QueryEscape(key), url.QueryEscape(dir),
		args.page.Limit, url.QueryEscape(lastMarker))
	return b.String(), true
}

// collectionBody is {"<plural>": items, "next": url}.
func (a *API) collectionBody(r *http.Request, plural, resourceURL string, args listArgs, items []obj, lastMarker string) obj {
	body := obj{plural: items}
	if next, ok := a.nextLink(r, resourceURL, args, len(items), lastMarker); ok {
		body["next"] = next
	}
	return body
}

// collectionHandler serves a Watcher collection: it validates the list
// arguments, fetches a page, renders each item (summary or detail) and adds
// the next link.
func collectionHandler[T any](a *API, spec listSpec, detail bool, fetch func(*http.Request, listArgs) ([]T, error),
	view func(*http.Request, *T, bool) obj, marker func(*T) string) handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		args, err := a.parseList(r, spec)
		if err != nil {
			return err
		}
		list, err := fetch(r, args)
		if err != nil {
			return err
		}
		items := make([]obj, len(list))
		last := ""
		for i := range list {
			items[i], last = view(r, &list[i], detail), marker(&list[i])
		}
		name := spec.collection
		return writeJSON(w, http.StatusOK, a.collectionBody(r, name, resourceURL(name, detail), args, items, last))
	}
}

// obj is a JSON object being built.
type obj = map[string]any

// links are a resource's self and bookmark links.
func (a *API) links(r *http.Request, resource, id string) []obj {
	base := a.baseURL(r)
	return []obj{
		{"href": base + "/v1/" + resource + "/" + id, "rel": "self"},
		{"href": base + "/" + resource + "/" + id, "rel": "bookmark"},
	}
}

// isoTime is Python's datetime.isoformat() of a UTC time: microseconds
// only when not zero; aware times end in +00:00.
func isoTime(t time.Time, aware bool) string {
	t = t.UTC()
	layout := "2006-01-02T15:04:05"
	if t.Nanosecond()/1000 != 0 {
		layout += ".000000"
	}
	s := t.Format(layout)
	if aware {
		s += "+00:00"
	}
	return s
}

// awareTime renders a timestamp column (created_at and friends) or null.
func awareTime(t *time.Time) any {
	if t == nil {
		return nil
	}
	return isoTime(*t, true)
}

// naiveTime renders next_run_time, start_time and end_time, which Watcher
// keeps as naive UTC.
func naiveTime(t *time.Time) any {
	if t == nil {
		return nil
	}
	return isoTime(*t, false)
}

// parseTimeValue reads a datetime as WSME does: ISO 8601, with or without
// an offset (naive means UTC), with "T" or a space.
func parseTimeValue(field, s string) (time.Time, error) {
	v := strings.TrimSpace(s)
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05.999999999Z07:00",
		"2006-01-02 15:04:05.999999999", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, invalidInput(field, s, "Wrong type. Expected a datetime in ISO 8601 format, e.g. 2026-11-21T10:00:00")
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// maxBodyBytes bounds a request body.
const maxBodyBytes = 1 << 20

// readBody reads a JSON object body. An empty body is missing (WSME's
// "Missing argument") unless optional.
func readBody(r *http.Request, argument string, optional bool) (map[string]json.RawMessage, error) {
	b, err := io.ReadAll(io.LimitReader(r.Body, maxBodyBytes+1))
	if err != nil {
		return nil, badRequest("Cannot read the request body: %v", err)
	}
	if len(b) > maxBodyBytes {
		return nil, errorf(http.StatusRequestEntityTooLarge, "Request body larger than %d bytes", maxBodyBytes)
	}
	if len(bytes.TrimSpace(b)) == 0 {
		if optional {
			return map[string]json.RawMessage{}, nil
		}
		return nil, badRequest("Missing argument: %q", argument)
	}
	var m map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&m); err != nil {
		return nil, badRequest("Invalid JSON body: %s", jsonErr(err))
	}
	if dec.More() {
		return nil, badRequest("Invalid JSON body: unexpected data after the object")
	}
	if m == nil {
		return nil, badRequest("Invalid JSON body: want an object")
	}
	return m, nil
}

// checkKnown refuses attributes a body type does not have, as WSME does.
func checkKnown(m map[string]json.RawMessage, argument string, known ...string) error {
	for k := range m {
		if !slices.Contains(known, k) {
			return badRequest("Unknown attribute for argument %s: %s", argument, k)
		}
	}
	return nil
}

// pyType names a JSON value's Python type, for WSME's type errors.
func pyType(raw json.RawMessage) string {
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return "<class 'str'>"
	}
	switch x := v.(type) {
	case nil:
		return "<class 'NoneType'>"
	case bool:
		return "<class 'bool'>"
	case float64:
		if x == float64(int64(x)) && !strings.ContainsAny(string(raw), ".eE") {
			return "<class 'int'>"
		}
		return "<class 'float'>"
	case string:
		return "<class 'str'>"
	case []any:
		return "<class 'list'>"
	}
	return "<class 'dict'>"
}

func wrongType(field string, raw json.RawMessage, want string) *apiError {
	return invalidInput(field, string(raw), fmt.Sprintf("Wrong type. Expected '%s', got '%s'", want, pyType(raw)))
}

// strArg reads an optional string attribute; null is absent.
func strArg(m map[string]json.RawMessage, field string) (string, bool, error) {
	raw, ok := m[field]
	if !ok || string(raw) == "null" {
		return "", false, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", false, wrongType(field, raw, "<class 'str'>")
	}
	return s, true, nil
}

// boolArg reads an optional boolean attribute (WSME also takes "true",
// "1", ...).
func boolArg(m map[string]json.RawMessage, field string) (bool, bool, error) {
	raw, ok := m[field]
	if !ok || string(raw) == "null" {
		return false, false, nil
	}
	var b bool
	if err := json.Unmarshal(raw, &b); err == nil {
		return b, true, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		if v, err := strconv.ParseBool(strings.ToLower(strings.TrimSpace(s))); err == nil {
			return v, true, nil
		}
	}
	return false, false, wrongType(field, raw, "<class 'bool'>")
}

// objArg reads an optional JSON object attribute.
func objArg(m map[string]json.RawMessage, field string) (map[string]any, bool, error) {
	raw, ok := m[field]
	if !ok || string(raw) == "null" {
		return nil, false, nil
	}
	var v map[string]any
	if err := json.Unmarshal(raw, &v); err != nil || v == nil {
		return nil, false, wrongType(field, raw, "<class 'dict'>")
	}
	return v, true, nil
}

// routeUUID checks a path parameter WSME types as a UUID.
func routeUUID(field, v string) (string, error) {
	u, err := uuid.Parse(v)
	if err != nil {
		return "", invalidInput(field, v, "Expected a uuid but received "+v)
	}
	return u.String(), nil
}
