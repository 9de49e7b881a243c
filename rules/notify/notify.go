// Package notify owns alert delivery to people and systems: one Notifier per
// integration (webhook, telegram, wechat, wechat_robot, sms), built from a
// receiver's configuration in one wiring file (receivers.go).
//
// A notifier sends one message once and classifies the outcome: it says
// whether trying again may succeed and, when the far end asked for a wait,
// returns a *RetryAfterError. It must not retry, wait, group, deduplicate or
// filter resolved alerts: the dispatcher does all of that. No credential ever
// appears in an error or a log line written here.
package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Alert is one alert as delivered (Alertmanager webhook v4 field names).
type Alert struct {
	Status       string            `json:"status"` // "firing" or "resolved"
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
	Fingerprint  string            `json:"fingerprint"`
}

// Message is one notification: a group of alerts for one receiver.
type Message struct {
	Receiver          string
	GroupKey          string
	Status            string // "firing" if any alert fires, else "resolved"
	GroupLabels       map[string]string
	CommonLabels      map[string]string
	CommonAnnotations map[string]string
	ExternalURL       string
	Alerts            []Alert
}

// Notifier delivers a message. retry says whether trying again may succeed
// (5xx, timeouts, rate limits, expired tokens); a RetryAfterError asks for a
// given wait (Telegram's parameters.retry_after, HTTP Retry-After).
type Notifier interface {
	Notify(ctx context.Context, m *Message) (retry bool, err error)
}

// RetryAfterError is returned, always with retry=true, when the far end said
// how long to wait before the next attempt. Find it with errors.As.
type RetryAfterError struct {
	After time.Duration
	Err   error
}

func (e *RetryAfterError) Error() string {
	return fmt.Sprintf("%v (retry after %s)", e.Err, e.After)
}

func (e *RetryAfterError) Unwrap() error { return e.Err }

const (
	statusFiring   = "firing"
	statusResolved = "resolved"

	// maxResponseBody bounds what is read of any reply: the replies we parse
	// are a few hundred bytes, and a hostile or broken peer must not make us
	// buffer more.
	maxResponseBody = 64 << 10
	// maxDrain bounds how much of an unread body is discarded so that the
	// connection can be reused; past it, closing is cheaper.
	maxDrain = 1 << 20
	// maxErrorBody is how much of a reply body an error quotes.
	maxErrorBody = 256
	// maxRetryAfter clamps a requested wait: the dispatcher's context bounds
	// retries anyway, and a clamp keeps absurd values from overflowing.
	maxRetryAfter = 24 * time.Hour

	userAgent = "Ballast"
)

// status returns m.Status, or derives it from the alerts when it is unset.
func (m *Message) status() string {
	if m.Status != "" {
		return m.Status
	}
	if firing, _ := m.counts(); firing > 0 {
		return statusFiring
	}
	return statusResolved
}

// counts returns how many alerts fire and how many are resolved.
func (m *Message) counts() (firing, resolved int) {
	for _, a := range m.Alerts {
		if a.Status == statusResolved {
			resolved++
		} else {
			firing++
		}
	}
	return firing, resolved
}

// reply is a bounded read of an HTTP response.
type reply struct {
	status int
	header http.Header
	body   []byte
}

// do sends req (built with its context) through client, reads at most
// maxResponseBody of the reply, and drains and closes the body. The
// transport error it returns is unredacted: callers pass it through their
// redactor.
func do(client *http.Client, req *http.Request) (*reply, error) {
	req.Header.Set("User-Agent", userAgent)
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer func() {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDrain))
		_ = resp.Body.Close()
	}()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBody))
	if err != nil {
		return nil, fmt.Errorf("read reply: %w", err)
	}
	return &reply{status: resp.StatusCode, header: resp.Header, body: body}, nil
}

// newJSONRequest builds a POST of v as JSON. HTML characters are not
// escaped so that byte counts of the content match what the server sees.
func newJSONRequest(ctx context.Context, endpoint string, v any) (*http.Request, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("encode request: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(bytes.TrimSuffix(buf.Bytes(), []byte("\n"))))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	return req, nil
}

// retryableStatus says whether an HTTP status may succeed later.
func retryableStatus(code int) bool {
	return code == http.StatusTooManyRequests || code >= 500
}

// parseRetryAfter reads an HTTP Retry-After value: delay seconds or an
// HTTP date (relative to now). ok is false for anything else, including
// negative values; waits longer than maxRetryAfter are clamped.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if v[0] >= '0' && v[0] <= '9' {
		secs, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			// Digits too many for uint64 still mean "a very long time".
			var numErr *strconv.NumError
			if errors.As(err, &numErr) && errors.Is(numErr.Err, strconv.ErrRange) {
				return maxRetryAfter, true
			}
			return 0, false
		}
		return clampRetryAfter(secs), true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	d := t.Sub(now)
	if d < 0 {
		d = 0
	}
	return min(d, maxRetryAfter), true
}

// clampRetryAfter turns a count of seconds into a wait of at most
// maxRetryAfter without overflowing.
func clampRetryAfter(secs uint64) time.Duration {
	if secs > uint64(maxRetryAfter/time.Second) {
		return maxRetryAfter
	}
	return time.Duration(secs) * time.Second
}

// withRetryAfter wraps err in a RetryAfterError when the reply carries a
// usable Retry-After header.
func withRetryAfter(err error, h http.Header, now time.Time) error {
	if d, ok := parseRetryAfter(h.Get("Retry-After"), now); ok {
		return &RetryAfterError{After: d, Err: err}
	}
	return err
}

// statusError describes an unexpected HTTP status with the start of the
// body, redacted before it is cut so that no part of a secret survives.
func statusError(r *reply, red redactor) error {
	text := http.StatusText(r.status)
	if text == "" {
		text = "status"
	}
	if excerpt := bodyExcerpt(r.body, red); excerpt != "" {
		return fmt.Errorf("HTTP %d %s: %s", r.status, text, excerpt)
	}
	return fmt.Errorf("HTTP %d %s", r.status, text)
}

// classifyStatus is the rule for integrations without an error body format:
// 2xx succeeds; 429 and 5xx may be retried (honouring Retry-After); any other
// status will fail again.
func classifyStatus(r *reply, red redactor, now time.Time) (bool, error) {
	if r.status/100 == 2 {
		return false, nil
	}
	err := statusError(r, red)
	if retryableStatus(r.status) {
		return true, withRetryAfter(err, r.header, now)
	}
	return false, err
}

// bodyExcerpt returns the first maxErrorBody bytes of a body, redacted,
// trimmed and valid UTF-8.
func bodyExcerpt(body []byte, red redactor) string {
	return quote(red, string(body), maxErrorBody)
}

// quote prepares text from a reply (untrusted) for an error or a log line:
// valid UTF-8, redacted before it is cut (so no part of a secret survives),
// at most n bytes, trimmed.
func quote(red redactor, s string, n int) string {
	return strings.TrimSpace(cutBytes(red.string(strings.ToValidUTF8(s, "\uFFFD")), n))
}

// cutBytes returns the longest prefix of s that is at most n bytes and ends
// on a rune boundary.
func cutBytes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	if n <= 0 {
		return ""
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// redactor replaces every known secret, in its raw and URL-escaped forms,
// by "<secret>".
type redactor []string

func (r redactor) string(s string) string {
	for _, secret := range r {
		if secret == "" {
			continue
		}
		for _, form := range []string{secret, url.QueryEscape(secret), url.PathEscape(secret)} {
			s = strings.ReplaceAll(s, form, redacted)
		}
	}
	return s
}

// err redacts a transport error. A *url.Error (what http.Client.Do
// returns) is rebuilt with a redacted URL (Telegram puts the token in the
// path, WeChat the access_token and robot key in the query) so that
// errors.As finds no secret either, while its cause keeps its type (timeouts,
// context errors). Any other error is handled by plain.
func (r redactor) err(err error) error {
	if ue, ok := err.(*url.Error); ok {
		return &url.Error{Op: ue.Op, URL: r.string(ue.URL), Err: r.plain(ue.Err)}
	}
	return r.plain(err)
}

// plain returns err unchanged if its text holds no secret, else a new error
// with the redacted text and no chain to unwrap into the secret.
func (r redactor) plain(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if red := r.string(msg); red != msg {
		return errors.New(red)
	}
	return err
}

// discardLogger stands in for a nil logger.
func discardLogger(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}

// defaultClient stands in for a nil client.
func defaultClient(c *http.Client) *http.Client {
	if c == nil {
		return http.DefaultClient
	}
	return c
}
