package notify

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const testBotToken = "123456:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"

func newTestTelegram(t *testing.T, srv *recorder, cfg TelegramConfig) *Telegram {
	t.Helper()
	cfg.APIURL = srv.URL + "/"
	if cfg.BotToken == "" && cfg.BotTokenFile == "" {
		cfg.BotToken = testBotToken
	}
	if cfg.ChatID == 0 {
		cfg.ChatID = -1001234567890
	}
	tg, err := NewTelegram(cfg, srv.Client(), nil)
	require.NoError(t, err)
	tg.now = fixedNow
	return tg
}

func TestTelegramRequest(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  TelegramConfig
		want map[string]any
	}{
		{
			name: "defaults",
			want: map[string]any{
				"chat_id": float64(-1001234567890), "parse_mode": "HTML",
				"disable_notification": false, "disable_web_page_preview": true,
			},
		},
		{
			name: "topic, silent, markdownv2",
			cfg:  TelegramConfig{MessageThreadID: 42, DisableNotifications: true, ParseMode: ParseModeMarkdownV2},
			want: map[string]any{
				"chat_id": float64(-1001234567890), "parse_mode": "MarkdownV2", "message_thread_id": float64(42),
				"disable_notification": true, "disable_web_page_preview": true,
			},
		},
		{
			name: "token file",
			cfg:  TelegramConfig{BotTokenFile: writeFile(t, "token", testBotToken+"\n")},
			want: map[string]any{
				"chat_id": float64(-1001234567890), "parse_mode": "HTML",
				"disable_notification": false, "disable_web_page_preview": true,
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newRecorder(t, replyWith(200, `{"ok":true,"result":{"message_id":1}}`))
			tg := newTestTelegram(t, srv, tc.cfg)
			m := testMessage(1)
			m.Alerts[0].Labels["instance"] = "<host-1>"
			retry, err := tg.Notify(context.Background(), m)
			require.NoError(t, err)
			require.False(t, retry)

			reqs := srv.requests()
			require.Len(t, reqs, 1)
			r := reqs[0]
			require.Equal(t, "POST", r.Method)
			require.Equal(t, "/bot"+testBotToken+"/sendMessage", r.Path)
			require.Empty(t, r.Query)
			require.Equal(t, "application/json", r.Header.Get("Content-Type"))

			var body map[string]any
			require.NoError(t, json.Unmarshal(r.Body, &body))
			text, _ := body["text"].(string)
			delete(body, "text")
			require.Equal(t, tc.want, body)
			if tc.cfg.ParseMode == ParseModeMarkdownV2 {
				require.Contains(t, text, `*\[FIRING:1\] HostDiskSaturated*`)
				require.Contains(t, text, `instance\=<host\-1\>`)
			} else {
				require.Contains(t, text, "<b>[FIRING:1] HostDiskSaturated</b>")
				require.Contains(t, text, "instance=&lt;host-1&gt;")
			}
			// chat_id is a JSON number, not a string.
			require.Contains(t, string(r.Body), `"chat_id":-1001234567890`)
		})
	}
}

func TestTelegramErrors(t *testing.T) {
	for _, tc := range []struct {
		name    string
		status  int
		body    string
		headers []string
		retry   bool
		after   time.Duration
		wantErr string
	}{
		{
			name: "flood", status: 429,
			body:  `{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 15","parameters":{"retry_after":15}}`,
			retry: true, after: 15 * time.Second, wantErr: "telegram: error 429: Too Many Requests: retry after 15",
		},
		{
			name: "flood with header only", status: 429, headers: []string{"Retry-After", "3"},
			body:  `{"ok":false,"error_code":429,"description":"Too Many Requests"}`,
			retry: true, after: 3 * time.Second, wantErr: "error 429",
		},
		{
			name: "flood without a wait", status: 429,
			body:  `{"ok":false,"error_code":429,"description":"Too Many Requests"}`,
			retry: true, wantErr: "error 429",
		},
		{
			name: "absurd retry_after is clamped", status: 429,
			body:  `{"ok":false,"error_code":429,"description":"slow down","parameters":{"retry_after":9223372036854775807}}`,
			retry: true, after: maxRetryAfter, wantErr: "error 429",
		},
		{
			name: "entities", status: 400,
			body:    `{"ok":false,"error_code":400,"description":"Bad Request: can't parse entities: Unsupported start tag \"x\" at byte offset 10"}`,
			wantErr: `telegram: error 400: Bad Request: can't parse entities`,
		},
		{
			name: "chat not found", status: 400,
			body:    `{"ok":false,"error_code":400,"description":"Bad Request: chat not found"}`,
			wantErr: "error 400: Bad Request: chat not found",
		},
		{
			name: "bad token", status: 401,
			body:    `{"ok":false,"error_code":401,"description":"Unauthorized"}`,
			wantErr: "error 401: Unauthorized",
		},
		{
			name: "kicked", status: 403,
			body:    `{"ok":false,"error_code":403,"description":"Forbidden: bot was kicked from the supergroup chat"}`,
			wantErr: "error 403: Forbidden: bot was kicked",
		},
		{
			name: "server error", status: 500,
			body:  `{"ok":false,"error_code":500,"description":"Internal Server Error"}`,
			retry: true, wantErr: "error 500",
		},
		{
			name: "gateway page", status: 502, body: "<html>Bad Gateway</html>", headers: []string{"Retry-After", "5"},
			retry: true, after: 5 * time.Second, wantErr: "telegram: unreadable reply: HTTP 502 Bad Gateway: <html>Bad Gateway</html>",
		},
		{
			name: "unreadable 200", status: 200, body: "<html>captive portal</html>",
			wantErr: "telegram: unreadable reply: HTTP 200 OK: <html>captive portal</html>",
		},
		{
			name: "unreadable 404", status: 404, body: "not found",
			wantErr: "unreadable reply: HTTP 404 Not Found",
		},
		{
			name: "ok false on 200", status: 200,
			body:    `{"ok":false,"error_code":400,"description":"Bad Request: message text is empty"}`,
			wantErr: "error 400: Bad Request: message text is empty",
		},
		{
			name: "ok false without a code", status: 200, body: `{"ok":false}`,
			wantErr: "telegram: error 200: ",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newRecorder(t, replyWith(tc.status, tc.body, tc.headers...))
			tg := newTestTelegram(t, srv, TelegramConfig{})
			retry, err := tg.Notify(context.Background(), testMessage(1))
			require.Equal(t, tc.retry, retry)
			require.ErrorContains(t, err, tc.wantErr)
			var ra *RetryAfterError
			if tc.after > 0 {
				requireRetryAfter(t, err, tc.after)
			} else {
				require.False(t, errors.As(err, &ra))
			}
			require.Len(t, srv.requests(), 1, "a notifier never retries by itself")
		})
	}
}

func TestTelegramMigratesChat(t *testing.T) {
	var calls atomic.Int32
	srv := newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
		var req telegramRequest
		_ = json.NewDecoder(r.Body).Decode(&req)
		if req.ChatID == -4001 {
			w.WriteHeader(400)
			_, _ = w.Write([]byte(`{"ok":false,"error_code":400,"description":"Bad Request: group chat was upgraded to a supergroup chat","parameters":{"migrate_to_chat_id":-1009876543210}}`))
			return
		}
		calls.Add(1)
		_, _ = w.Write([]byte(`{"ok":true,"result":{}}`))
	})
	logger, logs := captureLogger()
	tg, err := NewTelegram(TelegramConfig{APIURL: srv.URL, BotToken: testBotToken, ChatID: -4001}, srv.Client(), logger)
	require.NoError(t, err)

	retry, err := tg.Notify(context.Background(), testMessage(1))
	require.NoError(t, err)
	require.False(t, retry)
	require.Contains(t, logs.String(), `"new_chat_id":-1009876543210`)
	require.Contains(t, logs.String(), `"integration":"telegram"`)

	// The next message goes straight to the supergroup.
	_, err = tg.Notify(context.Background(), testMessage(1))
	require.NoError(t, err)
	var chats []int64
	for _, r := range srv.requests() {
		var req telegramRequest
		require.NoError(t, json.Unmarshal(r.Body, &req))
		chats = append(chats, req.ChatID)
	}
	require.Equal(t, []int64{-4001, -1009876543210, -1009876543210}, chats)
	require.Equal(t, int32(2), calls.Load())
}

func TestTelegramMigratesOnlyOnce(t *testing.T) {
	var n atomic.Int64
	srv := newRecorder(t, func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(400)
		next := -100 - n.Add(1)
		_ = json.NewEncoder(w).Encode(map[string]any{
			"ok": false, "error_code": 400, "description": "Bad Request: group chat was upgraded to a supergroup chat",
			"parameters": map[string]any{"migrate_to_chat_id": next},
		})
	})
	tg := newTestTelegram(t, srv, TelegramConfig{})
	retry, err := tg.Notify(context.Background(), testMessage(1))
	require.False(t, retry)
	require.ErrorContains(t, err, "moved again")
	require.Len(t, srv.requests(), 2)
}

func TestTelegramTruncatesLongGroups(t *testing.T) {
	srv := newRecorder(t, replyWith(200, `{"ok":true}`))
	logger, logs := captureLogger()
	tg, err := NewTelegram(TelegramConfig{APIURL: srv.URL, BotToken: testBotToken, ChatID: 1}, srv.Client(), logger)
	require.NoError(t, err)
	_, err = tg.Notify(context.Background(), testMessage(200))
	require.NoError(t, err)
	var req telegramRequest
	require.NoError(t, json.Unmarshal(srv.requests()[0].Body, &req))
	require.LessOrEqual(t, utf16Len(req.Text), telegramMaxLen)
	require.Contains(t, req.Text, " more")
	require.True(t, strings.Contains(logs.String(), `"dropped_alerts"`))
	requireBalancedHTML(t, req.Text)
}
