package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

func TestRetryAfterError(t *testing.T) {
	base := errors.New("telegram: error 429: Too Many Requests")
	var err error = fmt.Errorf("outer: %w", &RetryAfterError{After: 15 * time.Second, Err: base})
	require.ErrorIs(t, err, base)
	requireRetryAfter(t, err, 15*time.Second)
	require.Equal(t, "outer: telegram: error 429: Too Many Requests (retry after 15s)", err.Error())
}

func TestParseRetryAfter(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"", 0, false},
		{"0", 0, true},
		{"15", 15 * time.Second, true},
		{" 15 ", 15 * time.Second, true},
		{"-1", 0, false},
		{"1.5", 0, false},
		{"15s", 0, false},
		{"soon", 0, false},
		{"86401", maxRetryAfter, true},
		{"99999999999999999999999999", maxRetryAfter, true},
		{testNow.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, true},
		{testNow.Add(-time.Hour).Format(http.TimeFormat), 0, true},
		{testNow.Add(48 * time.Hour).Format(http.TimeFormat), maxRetryAfter, true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, ok := parseRetryAfter(tc.in, testNow)
			require.Equal(t, tc.ok, ok)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestRedactor(t *testing.T) {
	const secret = "123456:AA+b/c d"
	red := redactor{secret}
	for _, form := range []string{secret, url.QueryEscape(secret), url.PathEscape(secret)} {
		require.Equal(t, "x <secret> y", red.string("x "+form+" y"))
	}

	inner := errors.New("dial tcp: lookup " + secret)
	ue := &url.Error{Op: "Post", URL: "https://api.telegram.org/bot" + url.PathEscape(secret) + "/sendMessage?k=" + url.QueryEscape(secret), Err: inner}
	err := red.err(ue)
	require.NotContains(t, err.Error(), "AA")
	var got *url.Error
	require.ErrorAs(t, err, &got)
	require.Equal(t, "https://api.telegram.org/bot<secret>/sendMessage?k=<secret>", got.URL)
	require.Equal(t, "dial tcp: lookup <secret>", got.Err.Error())

	// A wrapped one keeps its text, redacted, and cannot be unwrapped into
	// the secret.
	err = red.err(fmt.Errorf("wrapped: %w", ue))
	require.True(t, strings.HasPrefix(err.Error(), `wrapped: Post "https://api.telegram.org/bot<secret>/sendMessage?k=<secret>"`), err.Error())
	require.False(t, errors.As(err, &got))

	// Errors without a secret keep their identity.
	require.ErrorIs(t, red.err(&url.Error{Op: "Get", URL: "https://x", Err: context.Canceled}), context.Canceled)
	require.NoError(t, red.err(nil))
}

func TestCutBytesAndClip(t *testing.T) {
	require.Equal(t, "ab", cutBytes("abc", 2))
	require.Equal(t, "", cutBytes("告", 2))
	require.Equal(t, "告", cutBytes("告警", 5))
	require.Equal(t, "告警", cutBytes("告警", 6))
	require.Equal(t, "", cutBytes("abc", -1))

	require.Equal(t, "告警", clip("告警", 2))
	require.Equal(t, "告…", clip("告警信息", 2))
	require.Equal(t, "a\uFFFDb", clip("a\xffb", 5))
	require.True(t, utf8.ValidString(clip(strings.Repeat("\xff告", 100), 7)))
	require.Equal(t, 7, utf8.RuneCountInString(clip(strings.Repeat("告", 100), 7)))
}

func TestSecretNeverShows(t *testing.T) {
	const raw = "hunter2-raw-value"
	s := Secret(raw)
	type holder struct {
		Token Secret `yaml:"token" json:"token"`
	}
	for _, out := range []string{
		s.String(),
		fmt.Sprint(s),
		fmt.Sprintf("%v %s %q %d %x %X %#v %+v %10s", s, s, s, s, s, s, s, s, s),
		fmt.Sprintf("%v %+v %#v", holder{s}, holder{s}, holder{s}),
		fmt.Sprintf("%v", &holder{s}),
	} {
		require.NotContains(t, out, raw)
		require.Contains(t, out, "<secret>")
	}
	require.Equal(t, `"<secret>"`, fmt.Sprintf("%q", s))

	y, err := yaml.Marshal(holder{s})
	require.NoError(t, err)
	require.Equal(t, "token: <secret>\n", string(y))
	j, err := json.Marshal(holder{s})
	require.NoError(t, err)
	require.JSONEq(t, `{"token":"<secret>"}`, string(j))
	j, err = json.Marshal(holder{})
	require.NoError(t, err)
	require.JSONEq(t, `{"token":""}`, string(j))

	logger, buf := captureLogger()
	logger.Info("Config", "token", s, "holder", holder{s})
	text := &syncBuffer{}
	slog.New(slog.NewTextHandler(text, nil)).Info("Config", "token", s)
	require.NotContains(t, buf.String()+text.String(), raw)

	require.Equal(t, raw, string(s))
}

func TestReadSecretFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
		return p
	}
	got, err := resolveSecret("bot_token", "", write("token", "  123:abc\n"))
	require.NoError(t, err)
	require.Equal(t, "123:abc", got)

	got, err = resolveSecret("bot_token", "inline", "")
	require.NoError(t, err)
	require.Equal(t, "inline", got)

	_, err = resolveSecret("bot_token", "", write("empty", " \n"))
	require.ErrorContains(t, err, "bot_token_file: ")
	require.ErrorContains(t, err, "is empty")

	_, err = resolveSecret("bot_token", "", filepath.Join(dir, "missing"))
	require.ErrorContains(t, err, "bot_token_file: ")
	require.ErrorIs(t, err, os.ErrNotExist)

	_, err = resolveSecret("bot_token", "", write("big", strings.Repeat("x", maxSecretFile+1)))
	require.ErrorContains(t, err, "larger than")
}

func TestClassifyStatus(t *testing.T) {
	long := strings.Repeat("é", 300) // 600 bytes
	for _, tc := range []struct {
		name      string
		status    int
		header    http.Header
		body      string
		retry     bool
		wantErr   string
		wantAfter time.Duration
	}{
		{name: "200", status: 200},
		{name: "204", status: 204},
		{name: "500", status: 500, body: "boom", retry: true, wantErr: "HTTP 500 Internal Server Error: boom"},
		{name: "503 retry-after", status: 503, header: http.Header{"Retry-After": {"7"}}, retry: true, wantErr: "HTTP 503", wantAfter: 7 * time.Second},
		{name: "429", status: 429, retry: true, wantErr: "HTTP 429 Too Many Requests"},
		{name: "429 retry-after", status: 429, header: http.Header{"Retry-After": {"30"}}, retry: true, wantErr: "HTTP 429", wantAfter: 30 * time.Second},
		{name: "400", status: 400, body: "bad", wantErr: "HTTP 400 Bad Request: bad"},
		{name: "404 ignores retry-after", status: 404, header: http.Header{"Retry-After": {"30"}}, wantErr: "HTTP 404 Not Found"},
		{name: "body cut at 256 bytes", status: 400, body: long, wantErr: "HTTP 400 Bad Request: " + strings.Repeat("é", 128)},
		{name: "odd status", status: 599, retry: true, wantErr: "HTTP 599 status"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &reply{status: tc.status, header: tc.header, body: []byte(tc.body)}
			if r.header == nil {
				r.header = http.Header{}
			}
			retry, err := classifyStatus(r, nil, testNow)
			require.Equal(t, tc.retry, retry)
			if tc.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.wantErr)
			if tc.name == "body cut at 256 bytes" {
				require.Equal(t, tc.wantErr, err.Error())
			}
			var ra *RetryAfterError
			if tc.wantAfter > 0 {
				requireRetryAfter(t, err, tc.wantAfter)
			} else {
				require.False(t, errors.As(err, &ra))
			}
		})
	}
}

func TestDoLimitsTheBody(t *testing.T) {
	big := strings.Repeat("x", 3*maxResponseBody)
	srv := newRecorder(t, replyWith(200, big))
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, srv.URL, nil)
	require.NoError(t, err)
	r, err := do(srv.Client(), req)
	require.NoError(t, err)
	require.Len(t, r.body, maxResponseBody)
	require.Equal(t, []string{userAgent}, srv.requests()[0].Header["User-Agent"])
}
