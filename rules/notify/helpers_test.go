package notify

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var testNow = time.Date(2026, 8, 22, 10, 30, 0, 0, time.UTC)

func fixedNow() time.Time { return testNow }

// testAlert is a firing HostDiskSaturated alert on host-<i>.
func testAlert(i int) Alert {
	return Alert{
		Status: statusFiring,
		Labels: map[string]string{
			"alertname": "HostDiskSaturated",
			"severity":  "critical",
			"instance":  fmt.Sprintf("host-%d", i),
			"cluster":   "cn-1",
		},
		Annotations: map[string]string{
			"summary":     fmt.Sprintf("Disk IO on host-%d is saturated", i),
			"description": "sda has been 100% busy for 10m.",
			"runbook_url": "https://runbooks.example.com/HostDiskSaturated",
		},
		StartsAt:     time.Date(2026, 8, 22, 10, 0, 0, 0, time.UTC),
		GeneratorURL: "https://ballast.example.com/rules?id=7",
		Fingerprint:  fmt.Sprintf("fp%04d", i),
	}
}

// testMessage groups n firing alerts by cluster.
func testMessage(n int) *Message {
	m := &Message{
		Receiver:          "ops",
		GroupKey:          `{}:{cluster="cn-1"}`,
		Status:            statusFiring,
		GroupLabels:       map[string]string{"cluster": "cn-1"},
		CommonLabels:      map[string]string{"alertname": "HostDiskSaturated", "severity": "critical", "cluster": "cn-1"},
		CommonAnnotations: map[string]string{},
		ExternalURL:       "https://ballast.example.com",
	}
	for i := 1; i <= n; i++ {
		m.Alerts = append(m.Alerts, testAlert(i))
	}
	return m
}

// syncBuffer is a bytes.Buffer safe for a logger written from several
// goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// captureLogger logs everything, as JSON, into the returned buffer.
func captureLogger() (*slog.Logger, *syncBuffer) {
	buf := &syncBuffer{}
	return slog.New(slog.NewJSONHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})), buf
}

// recorded is one request as a test server saw it.
type recorded struct {
	Method string
	Path   string
	Query  map[string][]string
	Header http.Header
	Body   []byte
}

// recorder is a test server that records requests and answers with the
// handler given.
type recorder struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []recorded
}

func newRecorder(t *testing.T, handler http.HandlerFunc) *recorder {
	t.Helper()
	rec := &recorder{}
	rec.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rec.mu.Lock()
		rec.reqs = append(rec.reqs, recorded{Method: r.Method, Path: r.URL.Path, Query: r.URL.Query(), Header: r.Header.Clone(), Body: body})
		rec.mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(body))
		handler(w, r)
	}))
	t.Cleanup(rec.Close)
	return rec
}

func (rec *recorder) requests() []recorded {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]recorded(nil), rec.reqs...)
}

// reply answers with a status, optional headers (name, value pairs) and a
// body.
func replyWith(status int, body string, headers ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		for i := 0; i+1 < len(headers); i += 2 {
			w.Header().Set(headers[i], headers[i+1])
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

// hangUp closes the connection without answering: a transport error.
func hangUp(w http.ResponseWriter, _ *http.Request) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err == nil {
		_ = conn.Close()
	}
}

// closedURL is the address of a server that no longer listens.
func closedURL(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.NotFoundHandler())
	u := srv.URL
	srv.Close()
	return u
}

// writeFile writes content into a file in a test directory.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
	return p
}

func ptr[T any](v T) *T { return &v }

// requireRetryAfter asserts err is a RetryAfterError asking for d.
func requireRetryAfter(t *testing.T, err error, d time.Duration) {
	t.Helper()
	var ra *RetryAfterError
	require.ErrorAs(t, err, &ra)
	require.Equal(t, d, ra.After)
}

func sprintf(format string, args ...any) string { return fmt.Sprintf(format, args...) }
