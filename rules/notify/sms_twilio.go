package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Twilio sends a free-text SMS per number through Twilio's Messages API.
type Twilio struct {
	endpoint string // {url}/2010-04-01/Accounts/{sid}/Messages.json
	sid      string
	token    string
	from     string
	service  string
	to       []string
	client   *http.Client
	logger   *slog.Logger
	red      redactor
	now      func() time.Time
	sent     delivered
}

var _ Notifier = (*Twilio)(nil)

// NewTwilio validates cfg (provider twilio), reads its token file and
// returns the notifier.
func NewTwilio(cfg SMSConfig, client *http.Client, logger *slog.Logger) (*Twilio, error) {
	if cfg.Provider != ProviderTwilio {
		return nil, fmt.Errorf("provider: %q is not twilio", cfg.Provider)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	token, err := resolveSecret("auth_token", cfg.AuthToken, cfg.AuthTokenFile)
	if err != nil {
		return nil, err
	}
	return &Twilio{
		endpoint: strings.TrimRight(orDefault(cfg.URL, DefaultTwilioURL), "/") +
			"/2010-04-01/Accounts/" + url.PathEscape(cfg.AccountSID) + "/Messages.json",
		sid:     cfg.AccountSID,
		token:   token,
		from:    cfg.From,
		service: cfg.MessagingServiceSID,
		to:      cfg.To,
		client:  defaultClient(client),
		logger:  discardLogger(logger).With("integration", "sms", "provider", ProviderTwilio),
		red:     redactor{token},
		now:     time.Now,
	}, nil
}

func (t *Twilio) String() string { return "sms twilio " + t.sid }

// Notify sends one SMS per number not yet reached for this message. A 429
// stops the round (the others would be refused too); other failures are
// collected and the call is retryable if any of them is.
func (t *Twilio) Notify(ctx context.Context, m *Message) (bool, error) {
	if m == nil {
		return false, errors.New("sms twilio: no message")
	}
	text := smsFieldsOf(m).text()
	key := messageKey(m, text)
	var (
		errs  []error
		retry bool
	)
	for _, to := range t.sent.pending(key, t.to) {
		r, err := t.send(ctx, to, text)
		if err != nil {
			errs = append(errs, fmt.Errorf("to %s: %w", to, err))
			retry = retry || r
			var ra *RetryAfterError
			if errors.As(err, &ra) || ctx.Err() != nil {
				break
			}
			continue
		}
		t.sent.mark(key, to)
	}
	if len(errs) > 0 {
		return retry, fmt.Errorf("sms twilio: %w", errors.Join(errs...))
	}
	t.sent.done(key)
	t.logger.Debug("Notification sent", "group_key", m.GroupKey, "numbers", len(t.to))
	return false, nil
}

func (t *Twilio) send(ctx context.Context, to, text string) (bool, error) {
	form := url.Values{"To": {to}, "Body": {text}}
	if t.service != "" {
		form.Set("MessagingServiceSid", t.service)
	} else {
		form.Set("From", t.from)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return false, t.red.err(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.SetBasicAuth(t.sid, t.token)
	r, err := do(t.client, req)
	if err != nil {
		return true, t.red.err(err)
	}
	return classifyTwilio(r, t.red, t.now())
}

// classifyTwilio reads a Messages reply (untrusted input): 2xx succeeds,
// 429 and 5xx may be retried, other statuses carry Twilio's error code.
func classifyTwilio(r *reply, red redactor, now time.Time) (bool, error) {
	if r.status/100 == 2 {
		return false, nil
	}
	var tr struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	}
	err := statusError(r, red)
	if json.Unmarshal(r.body, &tr) == nil && (tr.Code != 0 || tr.Message != "") {
		err = fmt.Errorf("error %d: %s (HTTP %d)", tr.Code, quote(red, tr.Message, maxErrorBody), r.status)
	}
	if retryableStatus(r.status) {
		return true, withRetryAfter(err, r.header, now)
	}
	return false, err
}
