package notify

import (
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestWebhookRequest(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  WebhookConfig
		auth string
	}{
		{name: "no auth"},
		{name: "basic", cfg: WebhookConfig{BasicAuth: &BasicAuth{Username: "ballast", Password: "pw"}},
			auth: "Basic " + base64.StdEncoding.EncodeToString([]byte("ballast:pw"))},
		{name: "bearer", cfg: WebhookConfig{BearerToken: "tok"}, auth: "Bearer tok"},
		{name: "bearer file", cfg: WebhookConfig{BearerTokenFile: writeFile(t, "bearer", "tok\n")}, auth: "Bearer tok"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newRecorder(t, replyWith(200, "ok"))
			tc.cfg.URL = srv.URL + "/hooks/alerts?team=ops"
			w, err := NewWebhook(tc.cfg, srv.Client(), nil)
			require.NoError(t, err)

			m := testMessage(2)
			m.Alerts[1].Status = statusResolved
			m.Alerts[1].EndsAt = testNow
			m.Alerts[1].Annotations = nil
			retry, err := w.Notify(context.Background(), m)
			require.NoError(t, err)
			require.False(t, retry)

			reqs := srv.requests()
			require.Len(t, reqs, 1)
			r := reqs[0]
			require.Equal(t, "POST", r.Method)
			require.Equal(t, "/hooks/alerts", r.Path)
			require.Equal(t, map[string][]string{"team": {"ops"}}, r.Query)
			require.Equal(t, "application/json", r.Header.Get("Content-Type"))
			require.Equal(t, "Ballast", r.Header.Get("User-Agent"))
			require.Equal(t, tc.auth, r.Header.Get("Authorization"))
			require.JSONEq(t, `{
				"version": "4",
				"groupKey": "{}:{cluster=\"cn-1\"}",
				"truncatedAlerts": 0,
				"status": "firing",
				"receiver": "ops",
				"groupLabels": {"cluster": "cn-1"},
				"commonLabels": {"alertname": "HostDiskSaturated", "severity": "critical", "cluster": "cn-1"},
				"commonAnnotations": {},
				"externalURL": "https://ballast.example.com",
				"alerts": [
					{"status": "firing",
					 "labels": {"alertname": "HostDiskSaturated", "severity": "critical", "instance": "host-1", "cluster": "cn-1"},
					 "annotations": {"summary": "Disk IO on host-1 is saturated", "description": "sda has been 100% busy for 10m.", "runbook_url": "https://runbooks.example.com/HostDiskSaturated"},
					 "startsAt": "2026-08-22T10:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
					 "generatorURL": "https://ballast.example.com/rules?id=7", "fingerprint": "fp0001"},
					{"status": "resolved",
					 "labels": {"alertname": "HostDiskSaturated", "severity": "critical", "instance": "host-2", "cluster": "cn-1"},
					 "annotations": {},
					 "startsAt": "2026-08-22T10:00:00Z", "endsAt": "2026-08-22T10:30:00Z",
					 "generatorURL": "https://ballast.example.com/rules?id=7", "fingerprint": "fp0002"}
				]
			}`, string(r.Body))
			// The caller's message is not changed by the nil-map filling.
			require.Nil(t, m.Alerts[1].Annotations)
		})
	}
}

func TestWebhookMaxAlerts(t *testing.T) {
	for _, tc := range []struct {
		max, sent, truncated int
	}{
		{0, 5, 0},
		{2, 2, 3},
		{5, 5, 0},
		{10, 5, 0},
	} {
		p := payload(testMessage(5), tc.max)
		require.Len(t, p.Alerts, tc.sent)
		require.Equal(t, tc.truncated, p.TruncatedAlerts)
	}
	p := payload(&Message{}, 0)
	require.NotNil(t, p.GroupLabels)
	require.NotNil(t, p.CommonLabels)
	require.NotNil(t, p.CommonAnnotations)
	require.Equal(t, statusResolved, p.Status)
}

func TestWebhookStatuses(t *testing.T) {
	long := strings.Repeat("x", 1000)
	for _, tc := range []struct {
		name    string
		status  int
		body    string
		headers []string
		retry   bool
		after   time.Duration
		wantErr string
	}{
		{name: "200", status: 200},
		{name: "202", status: 202},
		{name: "500", status: 500, body: "boom", retry: true, wantErr: "HTTP 500 Internal Server Error: boom"},
		{name: "502", status: 502, retry: true, wantErr: "HTTP 502 Bad Gateway"},
		{name: "503 retry-after", status: 503, headers: []string{"Retry-After", "12"}, retry: true, after: 12 * time.Second, wantErr: "HTTP 503"},
		{name: "429", status: 429, headers: []string{"Retry-After", "60"}, retry: true, after: time.Minute, wantErr: "HTTP 429 Too Many Requests"},
		{name: "400", status: 400, body: `{"error":"bad payload"}`, wantErr: `HTTP 400 Bad Request: {"error":"bad payload"}`},
		{name: "401", status: 401, wantErr: "HTTP 401 Unauthorized"},
		{name: "404", status: 404, wantErr: "HTTP 404 Not Found"},
		{name: "long body", status: 400, body: long, wantErr: "HTTP 400 Bad Request: " + long[:256]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newRecorder(t, replyWith(tc.status, tc.body, tc.headers...))
			w, err := NewWebhook(WebhookConfig{URL: srv.URL + "/hook"}, srv.Client(), nil)
			require.NoError(t, err)
			w.now = fixedNow
			retry, err := w.Notify(context.Background(), testMessage(1))
			require.Equal(t, tc.retry, retry)
			if tc.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.wantErr)
			require.ErrorContains(t, err, "webhook: POST "+srv.URL+"/hook: ")
			if tc.name == "long body" {
				require.True(t, strings.HasSuffix(err.Error(), long[:256]))
			}
			var ra *RetryAfterError
			if tc.after > 0 {
				requireRetryAfter(t, err, tc.after)
			} else {
				require.False(t, errors.As(err, &ra))
			}
		})
	}
}

func TestWebhookTransportError(t *testing.T) {
	w, err := NewWebhook(WebhookConfig{URL: closedURL(t) + "/hook?token=abc"}, nil, nil)
	require.NoError(t, err)
	retry, err := w.Notify(context.Background(), testMessage(1))
	require.True(t, retry)
	require.ErrorContains(t, err, "/hook?<secret>")
	require.NotContains(t, err.Error(), "abc")

	// A cancelled context is a transport error too.
	srv := newRecorder(t, replyWith(200, ""))
	w, err = NewWebhook(WebhookConfig{URL: srv.URL}, srv.Client(), nil)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = w.Notify(ctx, testMessage(1))
	require.ErrorIs(t, err, context.Canceled)
}

func TestWebhookURLFile(t *testing.T) {
	srv := newRecorder(t, replyWith(500, ""))
	file := writeFile(t, "url", srv.URL+"/services/T000/B000/XXXX\n")
	w, err := NewWebhook(WebhookConfig{URLFile: file}, srv.Client(), nil)
	require.NoError(t, err)
	retry, err := w.Notify(context.Background(), testMessage(1))
	require.True(t, retry)
	require.Equal(t, "/services/T000/B000/XXXX", srv.requests()[0].Path)
	require.ErrorContains(t, err, srv.URL+"/<secret>")
	require.NotContains(t, err.Error(), "XXXX")

	_, err = NewWebhook(WebhookConfig{URLFile: writeFile(t, "bad", "ftp://x")}, nil, nil)
	require.ErrorContains(t, err, "url_file: must be an absolute http:// or https:// URL")
	require.NotContains(t, err.Error(), "ftp")
}

func TestNilMessage(t *testing.T) {
	ns := []Notifier{&Webhook{}, &Telegram{}, &WeChat{}, &WeChatRobot{}, &Twilio{}, &AliyunSMS{}, &TencentSMS{}}
	for _, n := range ns {
		retry, err := n.Notify(context.Background(), nil)
		require.False(t, retry)
		require.ErrorContains(t, err, "no message")
	}
}
