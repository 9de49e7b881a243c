package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"
)

// telegramMaxLen is Telegram's message limit, counted here in UTF-16 code
// units of the marked-up text, which is never less than what Telegram counts
// (runes of the text once entities are parsed).
const telegramMaxLen = 4096

// Telegram sends through the Bot API's sendMessage.
type Telegram struct {
	endpoint  string // {api_url}/bot<token>/sendMessage
	threadID  int64
	parseMode string
	markup    markup
	silent    bool
	client    *http.Client
	logger    *slog.Logger
	red       redactor
	now       func() time.Time

	mu     sync.Mutex
	chatID int64 // changes when the group migrates to a supergroup
}

var _ Notifier = (*Telegram)(nil)

// NewTelegram validates cfg, reads its token file and returns the notifier.
func NewTelegram(cfg TelegramConfig, client *http.Client, logger *slog.Logger) (*Telegram, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	token, err := resolveSecret("bot_token", cfg.BotToken, cfg.BotTokenFile)
	if err != nil {
		return nil, err
	}
	t := &Telegram{
		endpoint:  strings.TrimRight(orDefault(cfg.APIURL, DefaultTelegramAPIURL), "/") + "/bot" + token + "/sendMessage",
		threadID:  cfg.MessageThreadID,
		parseMode: orDefault(cfg.ParseMode, ParseModeHTML),
		markup:    telegramHTML,
		silent:    cfg.DisableNotifications,
		client:    defaultClient(client),
		logger:    discardLogger(logger).With("integration", "telegram"),
		red:       redactor{token},
		now:       time.Now,
		chatID:    cfg.ChatID,
	}
	if t.parseMode == ParseModeMarkdownV2 {
		t.markup = telegramMarkdownV2
	}
	return t, nil
}

func (t *Telegram) String() string { return fmt.Sprintf("telegram chat %d", t.chat()) }

func (t *Telegram) chat() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.chatID
}

// migrate moves to the new chat unless another send already did.
func (t *Telegram) migrate(from, to int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.chatID == from {
		t.chatID = to
	}
}

type telegramRequest struct {
	ChatID                int64  `json:"chat_id"`
	Text                  string `json:"text"`
	ParseMode             string `json:"parse_mode"`
	MessageThreadID       int64  `json:"message_thread_id,omitempty"`
	DisableNotification   bool   `json:"disable_notification"`
	DisableWebPagePreview bool   `json:"disable_web_page_preview"`
}

// Notify sends the message. A chat upgraded to a supergroup is followed
// (migrate_to_chat_id) and the message resent once at once; 429 returns a
// RetryAfterError with Telegram's retry_after; other 4xx are final.
func (t *Telegram) Notify(ctx context.Context, m *Message) (bool, error) {
	if m == nil {
		return false, errors.New("telegram: no message")
	}
	text, dropped := fitMessage(m, t.markup, telegramMaxLen, utf16Len)
	if dropped > 0 {
		t.logger.Warn("Message too long; alerts left out", "group_key", m.GroupKey, "dropped_alerts", dropped)
	}
	chat := t.chat()
	res := t.send(ctx, chat, text)
	if res.migrateTo != 0 {
		t.logger.Warn("Telegram chat was upgraded to a supergroup; sending there, update chat_id in the configuration",
			"old_chat_id", chat, "new_chat_id", res.migrateTo)
		t.migrate(chat, res.migrateTo)
		res = t.send(ctx, res.migrateTo, text)
		if res.migrateTo != 0 {
			return false, fmt.Errorf("telegram: chat %d moved again to %d: %w", chat, res.migrateTo, res.err)
		}
	}
	if res.err != nil {
		return res.retry, res.err
	}
	t.logger.Debug("Notification sent", "group_key", m.GroupKey, "alerts", len(m.Alerts)-dropped)
	return false, nil
}

// telegramResult classifies one sendMessage call.
type telegramResult struct {
	retry     bool
	err       error
	migrateTo int64
}

func (t *Telegram) send(ctx context.Context, chat int64, text string) telegramResult {
	req, err := newJSONRequest(ctx, t.endpoint, telegramRequest{
		ChatID:                chat,
		Text:                  text,
		ParseMode:             t.parseMode,
		MessageThreadID:       t.threadID,
		DisableNotification:   t.silent,
		DisableWebPagePreview: true,
	})
	if err != nil {
		return telegramResult{err: fmt.Errorf("telegram: %w", t.red.err(err))}
	}
	r, err := do(t.client, req)
	if err != nil {
		return telegramResult{retry: true, err: fmt.Errorf("telegram: %w", t.red.err(err))}
	}
	return classifyTelegram(r, t.red, t.now())
}

// telegramReply is the Bot API's envelope.
type telegramReply struct {
	OK          bool   `json:"ok"`
	ErrorCode   int    `json:"error_code"`
	Description string `json:"description"`
	Parameters  *struct {
		RetryAfter      int64 `json:"retry_after"`
		MigrateToChatID int64 `json:"migrate_to_chat_id"`
	} `json:"parameters"`
}

// classifyTelegram reads a sendMessage reply (untrusted input).
func classifyTelegram(r *reply, red redactor, now time.Time) telegramResult {
	var tr telegramReply
	if err := json.Unmarshal(r.body, &tr); err != nil {
		err := fmt.Errorf("telegram: unreadable reply: %w", statusError(r, red))
		if r.status/100 == 2 {
			// The message may well have been delivered: do not risk a storm
			// of duplicates by retrying.
			return telegramResult{err: err}
		}
		if retryableStatus(r.status) {
			return telegramResult{retry: true, err: withRetryAfter(err, r.header, now)}
		}
		return telegramResult{err: err}
	}
	if tr.OK && r.status/100 == 2 {
		return telegramResult{}
	}
	code := tr.ErrorCode
	if code == 0 {
		code = r.status
	}
	err := fmt.Errorf("telegram: error %d: %s", code, quote(red, tr.Description, maxErrorBody))
	if p := tr.Parameters; p != nil && p.MigrateToChatID != 0 {
		return telegramResult{err: err, migrateTo: p.MigrateToChatID}
	}
	switch {
	case code == http.StatusTooManyRequests:
		if p := tr.Parameters; p != nil && p.RetryAfter > 0 {
			return telegramResult{retry: true, err: &RetryAfterError{After: clampRetryAfter(uint64(p.RetryAfter)), Err: err}}
		}
		return telegramResult{retry: true, err: withRetryAfter(err, r.header, now)}
	case code >= 500 || r.status >= 500:
		return telegramResult{retry: true, err: withRetryAfter(err, r.header, now)}
	default:
		// 400 (bad chat, unparsable entities), 401 (bad token), 403 (bot
		// blocked or kicked), 404: the same request will fail again.
		return telegramResult{err: err}
	}
}
