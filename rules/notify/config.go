package notify

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
)

// ReceiverConfig lists the integrations of one receiver. Every integration
// config has send_resolved (default per integration, as in Alertmanager) and
// every secret x an x_file twin read when the notifier is built.
type ReceiverConfig struct {
	Name         string              `yaml:"name"`
	Webhooks     []WebhookConfig     `yaml:"webhook_configs,omitempty"`
	Telegrams    []TelegramConfig    `yaml:"telegram_configs,omitempty"`
	WeChats      []WeChatConfig      `yaml:"wechat_configs,omitempty"`
	WeChatRobots []WeChatRobotConfig `yaml:"wechat_robot_configs,omitempty"`
	SMS          []SMSConfig         `yaml:"sms_configs,omitempty"`
}

// Validate checks every integration, naming each bad field with its place
// (e.g. "telegram_configs[0].chat_id: required", the YAML path). Secret files are not read here.
func (r *ReceiverConfig) Validate() error {
	var errs []error
	if strings.TrimSpace(r.Name) == "" {
		errs = append(errs, fieldError{"name", "required"})
	}
	for i := range r.Webhooks {
		errs = append(errs, r.Webhooks[i].problems().in(fmt.Sprintf("webhook_configs[%d]", i))...)
	}
	for i := range r.Telegrams {
		errs = append(errs, r.Telegrams[i].problems().in(fmt.Sprintf("telegram_configs[%d]", i))...)
	}
	for i := range r.WeChats {
		errs = append(errs, r.WeChats[i].problems().in(fmt.Sprintf("wechat_configs[%d]", i))...)
	}
	for i := range r.WeChatRobots {
		errs = append(errs, r.WeChatRobots[i].problems().in(fmt.Sprintf("wechat_robot_configs[%d]", i))...)
	}
	for i := range r.SMS {
		errs = append(errs, r.SMS[i].problems().in(fmt.Sprintf("sms_configs[%d]", i))...)
	}
	return errors.Join(errs...)
}

// WebhookConfig posts the Alertmanager webhook v4 JSON payload.
type WebhookConfig struct {
	// SendResolved defaults to true.
	SendResolved *bool `yaml:"send_resolved,omitempty"`
	// URL receives the POST; URLFile holds it instead (for URLs that carry
	// a token). Exactly one is required.
	URL     string `yaml:"url,omitempty"`
	URLFile string `yaml:"url_file,omitempty"`
	// MaxAlerts caps the alerts sent (0 = all); the rest are counted in
	// truncatedAlerts.
	MaxAlerts int `yaml:"max_alerts,omitempty"`
	// BasicAuth and BearerToken (or BearerTokenFile) are alternatives.
	BasicAuth       *BasicAuth `yaml:"basic_auth,omitempty"`
	BearerToken     Secret     `yaml:"bearer_token,omitempty"`
	BearerTokenFile string     `yaml:"bearer_token_file,omitempty"`
}

// BasicAuth is HTTP basic authentication.
type BasicAuth struct {
	Username     string `yaml:"username"`
	Password     Secret `yaml:"password,omitempty"`
	PasswordFile string `yaml:"password_file,omitempty"`
}

// Validate checks the config, naming the bad field.
func (c *WebhookConfig) Validate() error { return c.problems().join() }

func (c *WebhookConfig) problems() problems {
	var p problems
	switch {
	case c.URL == "" && c.URLFile == "":
		p.add("url", "required (or url_file)")
	case c.URL != "" && c.URLFile != "":
		p.add("url", "set url or url_file, not both")
	case c.URL != "":
		p.checkURL("url", c.URL)
	}
	if c.MaxAlerts < 0 {
		p.add("max_alerts", "must be 0 (all) or more, got %d", c.MaxAlerts)
	}
	bearer := c.BearerToken != "" || c.BearerTokenFile != ""
	p.optionalSecret("bearer_token", c.BearerToken, c.BearerTokenFile)
	if c.BasicAuth != nil {
		if bearer {
			p.add("basic_auth", "set basic_auth or bearer_token, not both")
		}
		if c.BasicAuth.Username == "" {
			p.add("basic_auth.username", "required")
		}
		p.optionalSecret("basic_auth.password", c.BasicAuth.Password, c.BasicAuth.PasswordFile)
	}
	return p
}

// Telegram parse modes accepted in parse_mode.
const (
	ParseModeHTML       = "HTML"
	ParseModeMarkdownV2 = "MarkdownV2"
)

// DefaultTelegramAPIURL is the Bot API server.
const DefaultTelegramAPIURL = "https://api.telegram.org"

// TelegramConfig sends through the Telegram Bot API (sendMessage).
type TelegramConfig struct {
	// SendResolved defaults to true.
	SendResolved *bool `yaml:"send_resolved,omitempty"`
	// APIURL defaults to DefaultTelegramAPIURL.
	APIURL string `yaml:"api_url,omitempty"`
	// BotToken or BotTokenFile (exactly one) is the bot's token.
	BotToken     Secret `yaml:"bot_token,omitempty"`
	BotTokenFile string `yaml:"bot_token_file,omitempty"`
	// ChatID is the chat (supergroups are -100…).
	ChatID int64 `yaml:"chat_id"`
	// MessageThreadID is a forum topic, 0 for none.
	MessageThreadID int64 `yaml:"message_thread_id,omitempty"`
	// ParseMode is HTML (default) or MarkdownV2; values are escaped for it.
	ParseMode string `yaml:"parse_mode,omitempty"`
	// DisableNotifications sends silently.
	DisableNotifications bool `yaml:"disable_notifications,omitempty"`
}

// Validate checks the config, naming the bad field.
func (c *TelegramConfig) Validate() error { return c.problems().join() }

func (c *TelegramConfig) problems() problems {
	var p problems
	p.checkURL("api_url", c.APIURL)
	p.requiredSecret("bot_token", c.BotToken, c.BotTokenFile)
	if c.ChatID == 0 {
		p.add("chat_id", "required")
	}
	if c.MessageThreadID < 0 {
		p.add("message_thread_id", "must be 0 (none) or more, got %d", c.MessageThreadID)
	}
	switch c.ParseMode {
	case "", ParseModeHTML, ParseModeMarkdownV2:
	default:
		p.add("parse_mode", "%q is not one of HTML, MarkdownV2", c.ParseMode)
	}
	return p
}

// WeChat message types accepted in message_type.
const (
	MessageTypeText     = "text"
	MessageTypeMarkdown = "markdown"
)

// Default WeChat Work endpoints.
const (
	DefaultWeChatAPIURL   = "https://qyapi.weixin.qq.com/cgi-bin/"
	DefaultWeChatRobotURL = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send"
)

// WeChatConfig sends through the WeChat Work (WeCom) app message API.
type WeChatConfig struct {
	// SendResolved defaults to false.
	SendResolved *bool `yaml:"send_resolved,omitempty"`
	// APIURL defaults to DefaultWeChatAPIURL; gettoken and message/send are
	// resolved against it.
	APIURL string `yaml:"api_url,omitempty"`
	CorpID string `yaml:"corp_id"`
	// AgentID is the app's numeric agent id.
	AgentID string `yaml:"agent_id"`
	// APISecret or APISecretFile (exactly one) is the app's secret.
	APISecret     Secret `yaml:"api_secret,omitempty"`
	APISecretFile string `yaml:"api_secret_file,omitempty"`
	// ToUser, ToParty and ToTag are "|"-separated recipients; at least one
	// is required ("@all" in to_user pages the whole corp, so it is never a
	// default).
	ToUser  string `yaml:"to_user,omitempty"`
	ToParty string `yaml:"to_party,omitempty"`
	ToTag   string `yaml:"to_tag,omitempty"`
	// MessageType is text (default) or markdown.
	MessageType string `yaml:"message_type,omitempty"`
}

var digitsRE = regexp.MustCompile(`^[0-9]+$`)

// Validate checks the config, naming the bad field.
func (c *WeChatConfig) Validate() error { return c.problems().join() }

func (c *WeChatConfig) problems() problems {
	var p problems
	p.checkURL("api_url", c.APIURL)
	if c.CorpID == "" {
		p.add("corp_id", "required")
	}
	switch {
	case c.AgentID == "":
		p.add("agent_id", "required")
	case !digitsRE.MatchString(c.AgentID):
		p.add("agent_id", "%q is not a number", c.AgentID)
	}
	p.requiredSecret("api_secret", c.APISecret, c.APISecretFile)
	if c.ToUser == "" && c.ToParty == "" && c.ToTag == "" {
		p.add("to_user", "one of to_user, to_party, to_tag is required")
	}
	p.messageType(c.MessageType)
	return p
}

// WeChatRobotConfig sends through a WeChat Work group robot webhook.
type WeChatRobotConfig struct {
	// SendResolved defaults to false.
	SendResolved *bool `yaml:"send_resolved,omitempty"`
	// URL defaults to DefaultWeChatRobotURL; the key is added as ?key=.
	URL string `yaml:"url,omitempty"`
	// Key or KeyFile (exactly one) is the robot's key: the whole credential.
	Key     Secret `yaml:"key,omitempty"`
	KeyFile string `yaml:"key_file,omitempty"`
	// MessageType is markdown (default) or text.
	MessageType string `yaml:"message_type,omitempty"`
	// MentionedList (user ids, "@all") and MentionedMobileList (phone
	// numbers) are mentioned by text messages only.
	MentionedList       []string `yaml:"mentioned_list,omitempty"`
	MentionedMobileList []string `yaml:"mentioned_mobile_list,omitempty"`
}

// Validate checks the config, naming the bad field.
func (c *WeChatRobotConfig) Validate() error { return c.problems().join() }

func (c *WeChatRobotConfig) problems() problems {
	var p problems
	p.checkURL("url", c.URL)
	p.requiredSecret("key", c.Key, c.KeyFile)
	p.messageType(c.MessageType)
	if c.MessageType != MessageTypeText {
		if len(c.MentionedList) > 0 {
			p.add("mentioned_list", "needs message_type text (markdown messages cannot mention)")
		}
		if len(c.MentionedMobileList) > 0 {
			p.add("mentioned_mobile_list", "needs message_type text (markdown messages cannot mention)")
		}
	}
	for i, v := range c.MentionedList {
		if strings.TrimSpace(v) == "" {
			p.add(fmt.Sprintf("mentioned_list[%d]", i), "empty")
		}
	}
	for i, v := range c.MentionedMobileList {
		if strings.TrimSpace(v) == "" {
			p.add(fmt.Sprintf("mentioned_mobile_list[%d]", i), "empty")
		}
	}
	return p
}

// SMS providers accepted in provider.
const (
	ProviderTwilio  = "twilio"
	ProviderAliyun  = "aliyun"
	ProviderTencent = "tencent"
)

// Default SMS endpoints and regions.
const (
	DefaultTwilioURL     = "https://api.twilio.com"
	DefaultAliyunURL     = "https://dysmsapi.aliyuncs.com/"
	DefaultTencentURL    = "https://sms.tencentcloudapi.com/"
	DefaultAliyunRegion  = "cn-hangzhou"
	DefaultTencentRegion = "ap-guangzhou"
)

// Template variables an SMS template may use, and the default list.
var (
	smsParamNames         = []string{"status", "severity", "alertname", "target", "summary", "count"}
	DefaultTemplateParams = []string{"severity", "alertname", "target", "summary"}
)

// DefaultParamMaxRunes caps each template variable; providers limit
// variables to a few dozen characters (the exact limit depends on the
// provider and template kind, so it is configurable).
const DefaultParamMaxRunes = 20

// SMSConfig sends a short text through one SMS provider. Twilio takes free
// text; Aliyun and Tencent take a pre-approved template plus variables.
type SMSConfig struct {
	// SendResolved defaults to false: SMS pages only on firing.
	SendResolved *bool `yaml:"send_resolved,omitempty"`
	// Provider is twilio, aliyun or tencent.
	Provider string `yaml:"provider"`
	// To lists E.164 numbers (+8613800001111).
	To []string `yaml:"to"`
	// URL overrides the provider's endpoint.
	URL string `yaml:"url,omitempty"`

	// Twilio: account SID, auth token, and From or MessagingServiceSID.
	AccountSID          string `yaml:"account_sid,omitempty"`
	AuthToken           Secret `yaml:"auth_token,omitempty"`
	AuthTokenFile       string `yaml:"auth_token_file,omitempty"`
	From                string `yaml:"from,omitempty"`
	MessagingServiceSID string `yaml:"messaging_service_sid,omitempty"`

	// Aliyun (dysmsapi SendSms).
	AccessKeyID         string `yaml:"access_key_id,omitempty"`
	AccessKeySecret     Secret `yaml:"access_key_secret,omitempty"`
	AccessKeySecretFile string `yaml:"access_key_secret_file,omitempty"`
	TemplateCode        string `yaml:"template_code,omitempty"`
	// RegionID defaults to DefaultAliyunRegion.
	RegionID string `yaml:"region_id,omitempty"`

	// Tencent Cloud SMS (SendSms 2021-01-11).
	SecretID      string `yaml:"secret_id,omitempty"`
	SecretKey     Secret `yaml:"secret_key,omitempty"`
	SecretKeyFile string `yaml:"secret_key_file,omitempty"`
	SDKAppID      string `yaml:"sdk_app_id,omitempty"`
	TemplateID    string `yaml:"template_id,omitempty"`
	// Region defaults to DefaultTencentRegion.
	Region string `yaml:"region,omitempty"`

	// SignName is the approved signature (Aliyun and Tencent).
	SignName string `yaml:"sign_name,omitempty"`
	// TemplateParams names the template's variables in order (Tencent's
	// are positional, Aliyun's named); each is one of status, severity,
	// alertname, target, summary, count. Defaults to DefaultTemplateParams.
	TemplateParams []string `yaml:"template_params,omitempty"`
	// ParamMaxRunes caps each variable (default DefaultParamMaxRunes).
	ParamMaxRunes int `yaml:"param_max_runes,omitempty"`
}

var e164RE = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)

// Validate checks the config, naming the bad field.
func (c *SMSConfig) Validate() error { return c.problems().join() }

func (c *SMSConfig) problems() problems {
	var p problems
	p.checkURL("url", c.URL)
	maxTo := 0
	switch c.Provider {
	case ProviderTwilio:
		if c.AccountSID == "" {
			p.add("account_sid", "required")
		}
		p.requiredSecret("auth_token", c.AuthToken, c.AuthTokenFile)
		if (c.From == "") == (c.MessagingServiceSID == "") {
			p.add("from", "set exactly one of from and messaging_service_sid")
		}
	case ProviderAliyun:
		maxTo = 1000 // PhoneNumbers takes at most 1000 numbers per call.
		if c.AccessKeyID == "" {
			p.add("access_key_id", "required")
		}
		p.requiredSecret("access_key_secret", c.AccessKeySecret, c.AccessKeySecretFile)
		if c.SignName == "" {
			p.add("sign_name", "required")
		}
		if c.TemplateCode == "" {
			p.add("template_code", "required")
		}
	case ProviderTencent:
		maxTo = 200 // PhoneNumberSet takes at most 200 numbers per call.
		if c.SecretID == "" {
			p.add("secret_id", "required")
		}
		p.requiredSecret("secret_key", c.SecretKey, c.SecretKeyFile)
		if c.SDKAppID == "" {
			p.add("sdk_app_id", "required")
		}
		if c.SignName == "" {
			p.add("sign_name", "required")
		}
		if c.TemplateID == "" {
			p.add("template_id", "required")
		}
	case "":
		p.add("provider", "required (twilio, aliyun or tencent)")
	default:
		p.add("provider", "%q is not one of twilio, aliyun, tencent", c.Provider)
	}
	if len(c.To) == 0 {
		p.add("to", "required: at least one E.164 number")
	}
	if maxTo > 0 && len(c.To) > maxTo {
		p.add("to", "%s takes at most %d numbers, got %d", c.Provider, maxTo, len(c.To))
	}
	seen := make(map[string]bool, len(c.To))
	for i, n := range c.To {
		switch {
		case !e164RE.MatchString(n):
			p.add(fmt.Sprintf("to[%d]", i), "%q is not an E.164 number like +8613800001111", n)
		case seen[n]:
			p.add(fmt.Sprintf("to[%d]", i), "%s is listed twice", n)
		}
		seen[n] = true
	}
	for i, name := range c.TemplateParams {
		if !contains(smsParamNames, name) {
			p.add(fmt.Sprintf("template_params[%d]", i), "%q is not one of %s", name, strings.Join(smsParamNames, ", "))
		}
	}
	if c.ParamMaxRunes < 0 {
		p.add("param_max_runes", "must be 0 (default) or more, got %d", c.ParamMaxRunes)
	}
	return p
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// fieldError names a bad field and what is wrong with it.
type fieldError struct {
	Field   string
	Problem string
}

func (e fieldError) Error() string { return e.Field + ": " + e.Problem }

// problems collects fieldErrors so that one load reports every bad field.
type problems []fieldError

func (p *problems) add(field, format string, args ...any) {
	*p = append(*p, fieldError{Field: field, Problem: fmt.Sprintf(format, args...)})
}

// in returns the problems as errors whose fields are prefixed with where
// the config sits ("telegram_configs[0]").
func (p problems) in(prefix string) []error {
	errs := make([]error, len(p))
	for i, fe := range p {
		errs[i] = fieldError{Field: prefix + "." + fe.Field, Problem: fe.Problem}
	}
	return errs
}

func (p problems) join() error {
	errs := make([]error, len(p))
	for i, fe := range p {
		errs[i] = fe
	}
	return errors.Join(errs...)
}

// checkURL accepts an empty value (the default applies) or an absolute
// http(s) URL.
func (p *problems) checkURL(field, s string) {
	if s == "" {
		return
	}
	if err := validURL(s); err != nil {
		p.add(field, "%v", err)
	}
}

func validURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New("must be an absolute http:// or https:// URL")
	}
	return nil
}

// requiredSecret wants exactly one of a secret and its _file twin.
func (p *problems) requiredSecret(field string, inline Secret, file string) {
	switch {
	case inline == "" && file == "":
		p.add(field, "required (or %s_file)", field)
	case inline != "" && file != "":
		p.add(field, "set %s or %s_file, not both", field, field)
	}
}

// optionalSecret wants at most one of a secret and its _file twin.
func (p *problems) optionalSecret(field string, inline Secret, file string) {
	if inline != "" && file != "" {
		p.add(field, "set %s or %s_file, not both", field, field)
	}
}

func (p *problems) messageType(t string) {
	switch t {
	case "", MessageTypeText, MessageTypeMarkdown:
	default:
		p.add("message_type", "%q is not one of text, markdown", t)
	}
}

// orDefault returns v, or def when v is empty.
func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}
