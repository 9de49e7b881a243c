package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"
)

// Webhook posts the Alertmanager webhook v4 payload, so that anything that
// accepts Alertmanager's webhook accepts ours.
type Webhook struct {
	url string
	// shown is the URL as errors show it: without credentials, query, or
	// (when it came from a file) path.
	shown    string
	max      int
	username string
	password string
	bearer   string
	client   *http.Client
	logger   *slog.Logger
	red      redactor
	now      func() time.Time
}

var _ Notifier = (*Webhook)(nil)

// NewWebhook validates cfg, reads its secret files and returns the notifier.
func NewWebhook(cfg WebhookConfig, client *http.Client, logger *slog.Logger) (*Webhook, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	w := &Webhook{
		url:    cfg.URL,
		max:    cfg.MaxAlerts,
		client: defaultClient(client),
		logger: discardLogger(logger).With("integration", "webhook"),
		now:    time.Now,
	}
	fromFile := cfg.URLFile != ""
	if fromFile {
		s, err := readSecretFile(cfg.URLFile)
		if err != nil {
			return nil, fmt.Errorf("url_file: %w", err)
		}
		if err := validURL(s); err != nil {
			return nil, fmt.Errorf("url_file: %w", err)
		}
		w.url = s
	}
	u, err := url.Parse(w.url)
	if err != nil {
		// validURL accepted it, so this cannot happen; keep the URL out of
		// the error all the same.
		return nil, errors.New("url: cannot be parsed")
	}
	w.shown = shownURL(u, fromFile)
	if cfg.BasicAuth != nil {
		w.username = cfg.BasicAuth.Username
		if cfg.BasicAuth.Password != "" || cfg.BasicAuth.PasswordFile != "" {
			if w.password, err = resolveSecret("basic_auth.password", cfg.BasicAuth.Password, cfg.BasicAuth.PasswordFile); err != nil {
				return nil, err
			}
		}
	}
	if cfg.BearerToken != "" || cfg.BearerTokenFile != "" {
		if w.bearer, err = resolveSecret("bearer_token", cfg.BearerToken, cfg.BearerTokenFile); err != nil {
			return nil, err
		}
	}
	pw, _ := u.User.Password()
	w.red = redactor{w.password, w.bearer, pw}
	if fromFile {
		w.red = append(w.red, w.url)
	}
	return w, nil
}

// shownURL is u without user info and query; the path is hidden too when the
// URL is a secret (read from url_file), as in Slack-style webhook paths.
func shownURL(u *url.URL, secretPath bool) string {
	out := u.Scheme + "://" + u.Host
	if secretPath {
		out += "/" + redacted
	} else {
		out += u.EscapedPath()
	}
	if u.RawQuery != "" {
		out += "?" + redacted
	}
	return out
}

func (w *Webhook) String() string { return "webhook " + w.shown }

// webhookPayload is Alertmanager's webhook v4 body.
type webhookPayload struct {
	Version           string            `json:"version"`
	GroupKey          string            `json:"groupKey"`
	TruncatedAlerts   int               `json:"truncatedAlerts"`
	Status            string            `json:"status"`
	Receiver          string            `json:"receiver"`
	GroupLabels       map[string]string `json:"groupLabels"`
	CommonLabels      map[string]string `json:"commonLabels"`
	CommonAnnotations map[string]string `json:"commonAnnotations"`
	ExternalURL       string            `json:"externalURL"`
	Alerts            []Alert           `json:"alerts"`
}

// payload builds the v4 body, keeping at most max alerts (0 = all) and
// sending maps as {} rather than null, as Alertmanager does.
func payload(m *Message, max int) webhookPayload {
	alerts := m.Alerts
	truncated := 0
	if max > 0 && len(alerts) > max {
		truncated = len(alerts) - max
		alerts = alerts[:max]
	}
	out := make([]Alert, len(alerts))
	for i, a := range alerts {
		a.Labels = nonNil(a.Labels)
		a.Annotations = nonNil(a.Annotations)
		out[i] = a
	}
	return webhookPayload{
		Version:           "4",
		GroupKey:          m.GroupKey,
		TruncatedAlerts:   truncated,
		Status:            m.status(),
		Receiver:          m.Receiver,
		GroupLabels:       nonNil(m.GroupLabels),
		CommonLabels:      nonNil(m.CommonLabels),
		CommonAnnotations: nonNil(m.CommonAnnotations),
		ExternalURL:       m.ExternalURL,
		Alerts:            out,
	}
}

func nonNil(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// Notify posts the message. 2xx succeeds; 429 and 5xx may be retried
// (honouring Retry-After); any other status is final.
func (w *Webhook) Notify(ctx context.Context, m *Message) (bool, error) {
	if m == nil {
		return false, errors.New("webhook: no message")
	}
	p := payload(m, w.max)
	if p.TruncatedAlerts > 0 {
		w.logger.Warn("Alerts truncated", "group_key", m.GroupKey, "sent", len(p.Alerts), "truncated", p.TruncatedAlerts)
	}
	req, err := newJSONRequest(ctx, w.url, p)
	if err != nil {
		return false, fmt.Errorf("webhook: %w", w.transportErr(err))
	}
	switch {
	case w.bearer != "":
		req.Header.Set("Authorization", "Bearer "+w.bearer)
	case w.username != "":
		req.SetBasicAuth(w.username, w.password)
	}
	r, err := do(w.client, req)
	if err != nil {
		return true, fmt.Errorf("webhook: %w", w.transportErr(err))
	}
	retry, err := classifyStatus(r, w.red, w.now())
	if err != nil {
		return retry, fmt.Errorf("webhook: POST %s: %w", w.shown, err)
	}
	w.logger.Debug("Notification sent", "group_key", m.GroupKey, "alerts", len(p.Alerts))
	return false, nil
}

// transportErr redacts a transport error, showing the URL as w.shown.
func (w *Webhook) transportErr(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return &url.Error{Op: ue.Op, URL: w.shown, Err: w.red.plain(ue.Err)}
	}
	return w.red.err(err)
}
