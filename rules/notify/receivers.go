package notify

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
)

// Integration is one built notifier of a receiver.
type Integration struct {
	// Name is the integration kind: webhook, telegram, wechat, wechat_robot
	// or sms.
	Name string
	// Index is the config's position in its list (telegram_configs[Index]).
	Index int
	// SendResolved says whether resolved alerts go to this integration;
	// the dispatcher drops them from the message when it is false.
	SendResolved bool
	Notifier     Notifier
}

// Defaults of send_resolved, as in Alertmanager: chat and webhooks hear
// about resolutions, WeChat and SMS (paging) do not.
const (
	defaultSendResolvedWebhook     = true
	defaultSendResolvedTelegram    = true
	defaultSendResolvedWeChat      = false
	defaultSendResolvedWeChatRobot = false
	defaultSendResolvedSMS         = false
)

// Build makes one Notifier per configured integration, in the order above.
// It validates cfg and reads secret files; on any error it returns no
// integrations and every error, each naming the field as Validate does
// ("telegram_configs[1].bot_token_file: …"). The caller adds which receiver.
func Build(cfg ReceiverConfig, client *http.Client, logger *slog.Logger) ([]Integration, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	logger = discardLogger(logger).With("receiver", cfg.Name)
	var (
		out  []Integration
		errs []error
	)
	add := func(name string, i int, sendResolved *bool, def bool, build func(*slog.Logger) (Notifier, error)) {
		n, err := build(logger.With("index", i))
		if err != nil {
			// Validate passed, so err is a single field error such as
			// "bot_token_file: open …".
			errs = append(errs, fmt.Errorf("%s_configs[%d].%w", name, i, err))
			return
		}
		if sendResolved != nil {
			def = *sendResolved
		}
		out = append(out, Integration{Name: name, Index: i, SendResolved: def, Notifier: n})
	}
	for i, c := range cfg.Webhooks {
		add("webhook", i, c.SendResolved, defaultSendResolvedWebhook, func(l *slog.Logger) (Notifier, error) {
			return NewWebhook(c, client, l)
		})
	}
	for i, c := range cfg.Telegrams {
		add("telegram", i, c.SendResolved, defaultSendResolvedTelegram, func(l *slog.Logger) (Notifier, error) {
			return NewTelegram(c, client, l)
		})
	}
	for i, c := range cfg.WeChats {
		add("wechat", i, c.SendResolved, defaultSendResolvedWeChat, func(l *slog.Logger) (Notifier, error) {
			return NewWeChat(c, client, l)
		})
	}
	for i, c := range cfg.WeChatRobots {
		add("wechat_robot", i, c.SendResolved, defaultSendResolvedWeChatRobot, func(l *slog.Logger) (Notifier, error) {
			return NewWeChatRobot(c, client, l)
		})
	}
	for i, c := range cfg.SMS {
		add("sms", i, c.SendResolved, defaultSendResolvedSMS, func(l *slog.Logger) (Notifier, error) {
			return NewSMS(c, client, l)
		})
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}
