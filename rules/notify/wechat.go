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
	"sync"
	"time"
)

// WeChat Work content limits in UTF-8 bytes (CJK runes take three).
const (
	wecomTextMaxBytes     = 2048
	wecomMarkdownMaxBytes = 4096
)

// tokenTTL is how long an access_token is used before it is fetched again;
// WeChat Work issues them for 7200s.
const tokenTTL = 2 * time.Hour

// WeChat Work errcodes with a meaning for delivery.
const (
	wecomOK              = 0
	wecomBusy            = -1    // system busy
	wecomTokenInvalid    = 40014 // invalid access_token
	wecomTokenExpired    = 42001 // access_token expired
	wecomFrequencyLimit  = 45009 // API frequency limit
	wecomContentTooLong  = 40058 // content exceeds max length
	wecomIPNotTrusted    = 60020 // caller IP not on the app's trusted list
	wecomInvalidSecret   = 40001
	wecomInvalidCorpID   = 40013
	wecomInvalidAgentID  = 40056
	wecomInvalidRobotKey = 93000
)

// wecomHints explain the errcodes a configuration can cause.
var wecomHints = map[int]string{
	wecomTokenInvalid:    "access_token invalid",
	wecomTokenExpired:    "access_token expired",
	wecomFrequencyLimit:  "API frequency limit reached",
	wecomContentTooLong:  "content too long",
	wecomIPNotTrusted:    "this host's IP address is not on the app's trusted IP list (企业可信IP); add it in the WeChat Work admin console",
	wecomInvalidSecret:   "check api_secret",
	wecomInvalidCorpID:   "check corp_id",
	wecomInvalidAgentID:  "check agent_id",
	wecomInvalidRobotKey: "check the robot key",
}

// WeComError is an errcode returned by WeChat Work.
type WeComError struct {
	Code int
	Msg  string
}

func (e *WeComError) Error() string {
	s := fmt.Sprintf("errcode %d: %s", e.Code, e.Msg)
	if hint := wecomHints[e.Code]; hint != "" {
		s += " (" + hint + ")"
	}
	return s
}

// wecomReply is the envelope of every WeChat Work API reply.
type wecomReply struct {
	ErrCode      int    `json:"errcode"`
	ErrMsg       string `json:"errmsg"`
	AccessToken  string `json:"access_token"`
	ExpiresIn    int64  `json:"expires_in"`
	InvalidUser  string `json:"invaliduser"`
	InvalidParty string `json:"invalidparty"`
	InvalidTag   string `json:"invalidtag"`
}

// classifyWeCom reads a WeChat Work reply (untrusted input). tokenRetry says
// whether an invalid or expired access_token may be cured by fetching a new
// one; quoteBody whether an unreadable body may be quoted in the error (not
// for gettoken, whose body carries a token).
func classifyWeCom(r *reply, red redactor, tokenRetry, quoteBody bool, now time.Time) (wecomReply, bool, error) {
	var wr wecomReply
	if r.status != http.StatusOK {
		err := fmt.Errorf("HTTP %d %s", r.status, http.StatusText(r.status))
		if quoteBody {
			err = statusError(r, red)
		}
		if retryableStatus(r.status) {
			return wr, true, withRetryAfter(err, r.header, now)
		}
		return wr, false, err
	}
	if err := json.Unmarshal(r.body, &wr); err != nil {
		if quoteBody {
			return wr, false, fmt.Errorf("unreadable reply: %s", bodyExcerpt(r.body, red))
		}
		return wr, false, errors.New("unreadable reply")
	}
	if wr.ErrCode == wecomOK {
		return wr, false, nil
	}
	err := &WeComError{Code: wr.ErrCode, Msg: quote(red, wr.ErrMsg, maxErrorBody)}
	switch wr.ErrCode {
	case wecomBusy, wecomFrequencyLimit:
		return wr, true, err
	case wecomTokenExpired, wecomTokenInvalid:
		return wr, tokenRetry, err
	default:
		// 60020 (untrusted IP), 40058 (too long), bad ids and secrets: the
		// same request fails again until the configuration changes.
		return wr, false, err
	}
}

// fitWeCom renders m for WeChat Work within the byte limit of the message
// type, dropping whole alerts first and cutting on a rune boundary only if
// the text still does not fit.
func fitWeCom(m *Message, messageType string) (content string, dropped int) {
	mk, limit := plainText, wecomTextMaxBytes
	if messageType == MessageTypeMarkdown {
		mk, limit = wecomMarkdown, wecomMarkdownMaxBytes
	}
	content, dropped = fitMessage(m, mk, limit, byteLen)
	if len(content) > limit {
		content = cutBytes(content, limit-len("…")) + "…"
	}
	return content, dropped
}

// WeChat sends through the WeChat Work app message API, caching the
// access_token.
type WeChat struct {
	tokenURL    string // {api_url}gettoken
	sendURL     string // {api_url}message/send
	corpID      string
	secret      string
	agentID     string
	toUser      string
	toParty     string
	toTag       string
	messageType string
	client      *http.Client
	logger      *slog.Logger
	now         func() time.Time

	mu          sync.Mutex // held while a token is fetched, so only one is
	token       string
	tokenExpiry time.Time
}

var _ Notifier = (*WeChat)(nil)

// NewWeChat validates cfg, reads its secret file and returns the notifier.
func NewWeChat(cfg WeChatConfig, client *http.Client, logger *slog.Logger) (*WeChat, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	secret, err := resolveSecret("api_secret", cfg.APISecret, cfg.APISecretFile)
	if err != nil {
		return nil, err
	}
	api := orDefault(cfg.APIURL, DefaultWeChatAPIURL)
	if !strings.HasSuffix(api, "/") {
		api += "/"
	}
	return &WeChat{
		tokenURL:    api + "gettoken",
		sendURL:     api + "message/send",
		corpID:      cfg.CorpID,
		secret:      secret,
		agentID:     cfg.AgentID,
		toUser:      cfg.ToUser,
		toParty:     cfg.ToParty,
		toTag:       cfg.ToTag,
		messageType: orDefault(cfg.MessageType, MessageTypeText),
		client:      defaultClient(client),
		logger:      discardLogger(logger).With("integration", "wechat"),
		now:         time.Now,
	}, nil
}

func (w *WeChat) String() string { return "wechat agent " + w.agentID }

type wecomContent struct {
	Content             string   `json:"content"`
	MentionedList       []string `json:"mentioned_list,omitempty"`
	MentionedMobileList []string `json:"mentioned_mobile_list,omitempty"`
}

type wecomAppMessage struct {
	ToUser   string        `json:"touser"`
	ToParty  string        `json:"toparty"`
	ToTag    string        `json:"totag"`
	AgentID  string        `json:"agentid"`
	MsgType  string        `json:"msgtype"`
	Text     *wecomContent `json:"text,omitempty"`
	Markdown *wecomContent `json:"markdown,omitempty"`
	Safe     string        `json:"safe"`
}

// Notify sends the message. An expired or invalid token is dropped and the
// call may be retried; 45009 may be retried; 60020, 40058 and other errcodes
// are final and logged at error level, since only a person can fix them.
func (w *WeChat) Notify(ctx context.Context, m *Message) (bool, error) {
	if m == nil {
		return false, errors.New("wechat: no message")
	}
	token, retry, err := w.accessToken(ctx)
	if err != nil {
		return retry, err
	}
	red := redactor{w.secret, token}
	content, dropped := fitWeCom(m, w.messageType)
	if dropped > 0 {
		w.logger.Warn("Message too long; alerts left out", "group_key", m.GroupKey, "dropped_alerts", dropped)
	}
	msg := wecomAppMessage{
		ToUser: w.toUser, ToParty: w.toParty, ToTag: w.toTag,
		AgentID: w.agentID, MsgType: w.messageType, Safe: "0",
	}
	if w.messageType == MessageTypeMarkdown {
		msg.Markdown = &wecomContent{Content: content}
	} else {
		msg.Text = &wecomContent{Content: content}
	}
	req, err := newJSONRequest(ctx, w.sendURL+"?"+url.Values{"access_token": {token}}.Encode(), msg)
	if err != nil {
		return false, fmt.Errorf("wechat: send message: %w", red.err(err))
	}
	r, err := do(w.client, req)
	if err != nil {
		return true, fmt.Errorf("wechat: send message: %w", red.err(err))
	}
	wr, retry, err := classifyWeCom(r, red, true, true, w.now())
	if err != nil {
		var we *WeComError
		if errors.As(err, &we) {
			switch {
			case we.Code == wecomTokenExpired || we.Code == wecomTokenInvalid:
				w.dropToken(token)
			case !retry:
				w.logger.Error("WeChat Work refused the message", "group_key", m.GroupKey, "errcode", we.Code, "errmsg", we.Msg)
			}
		}
		return retry, fmt.Errorf("wechat: send message: %w", err)
	}
	if wr.InvalidUser != "" || wr.InvalidParty != "" || wr.InvalidTag != "" {
		w.logger.Warn("Some recipients are unknown to WeChat Work", "group_key", m.GroupKey,
			"invalid_user", quote(red, wr.InvalidUser, maxErrorBody),
			"invalid_party", quote(red, wr.InvalidParty, maxErrorBody),
			"invalid_tag", quote(red, wr.InvalidTag, maxErrorBody))
	}
	w.logger.Debug("Notification sent", "group_key", m.GroupKey, "alerts", len(m.Alerts)-dropped)
	return false, nil
}

// accessToken returns the cached token or fetches a new one.
func (w *WeChat) accessToken(ctx context.Context) (string, bool, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.token != "" && w.now().Before(w.tokenExpiry) {
		return w.token, false, nil
	}
	red := redactor{w.secret}
	q := url.Values{"corpid": {w.corpID}, "corpsecret": {w.secret}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, w.tokenURL+"?"+q.Encode(), nil)
	if err != nil {
		return "", false, fmt.Errorf("wechat: get access token: %w", red.err(err))
	}
	r, err := do(w.client, req)
	if err != nil {
		return "", true, fmt.Errorf("wechat: get access token: %w", red.err(err))
	}
	wr, retry, err := classifyWeCom(r, red, false, false, w.now())
	if err != nil {
		var we *WeComError
		if errors.As(err, &we) && !retry {
			w.logger.Error("WeChat Work refused an access token", "errcode", we.Code, "errmsg", we.Msg)
		}
		return "", retry, fmt.Errorf("wechat: get access token: %w", err)
	}
	if wr.AccessToken == "" {
		return "", false, errors.New("wechat: get access token: reply has no access_token")
	}
	ttl := tokenTTL
	if wr.ExpiresIn > 0 && wr.ExpiresIn < int64(tokenTTL/time.Second) {
		ttl = time.Duration(wr.ExpiresIn) * time.Second
	}
	w.token, w.tokenExpiry = wr.AccessToken, w.now().Add(ttl)
	return w.token, false, nil
}

// dropToken forgets token unless a newer one replaced it meanwhile.
func (w *WeChat) dropToken(token string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.token == token {
		w.token = ""
	}
}

// WeChatRobot sends through a WeChat Work group robot webhook.
type WeChatRobot struct {
	endpoint    string // url?key=<key>
	key         string
	messageType string
	mentioned   []string
	mobiles     []string
	client      *http.Client
	logger      *slog.Logger
	red         redactor
	now         func() time.Time
}

var _ Notifier = (*WeChatRobot)(nil)

// NewWeChatRobot validates cfg, reads its key file and returns the notifier.
func NewWeChatRobot(cfg WeChatRobotConfig, client *http.Client, logger *slog.Logger) (*WeChatRobot, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	key, err := resolveSecret("key", cfg.Key, cfg.KeyFile)
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(orDefault(cfg.URL, DefaultWeChatRobotURL))
	if err != nil {
		return nil, fmt.Errorf("url: %w", err)
	}
	q := u.Query()
	q.Set("key", key)
	u.RawQuery = q.Encode()
	return &WeChatRobot{
		endpoint:    u.String(),
		key:         key,
		messageType: orDefault(cfg.MessageType, MessageTypeMarkdown),
		mentioned:   cfg.MentionedList,
		mobiles:     cfg.MentionedMobileList,
		client:      defaultClient(client),
		logger:      discardLogger(logger).With("integration", "wechat_robot"),
		red:         redactor{key},
		now:         time.Now,
	}, nil
}

func (w *WeChatRobot) String() string { return "wechat_robot" }

type wecomRobotMessage struct {
	MsgType  string        `json:"msgtype"`
	Text     *wecomContent `json:"text,omitempty"`
	Markdown *wecomContent `json:"markdown,omitempty"`
}

// Notify sends the message; errcodes are classified as for the app API,
// except that a token error cannot be cured (the key is the credential).
func (w *WeChatRobot) Notify(ctx context.Context, m *Message) (bool, error) {
	if m == nil {
		return false, errors.New("wechat_robot: no message")
	}
	content, dropped := fitWeCom(m, w.messageType)
	if dropped > 0 {
		w.logger.Warn("Message too long; alerts left out", "group_key", m.GroupKey, "dropped_alerts", dropped)
	}
	msg := wecomRobotMessage{MsgType: w.messageType}
	if w.messageType == MessageTypeMarkdown {
		msg.Markdown = &wecomContent{Content: content}
	} else {
		msg.Text = &wecomContent{Content: content, MentionedList: w.mentioned, MentionedMobileList: w.mobiles}
	}
	req, err := newJSONRequest(ctx, w.endpoint, msg)
	if err != nil {
		return false, fmt.Errorf("wechat_robot: %w", w.red.err(err))
	}
	r, err := do(w.client, req)
	if err != nil {
		return true, fmt.Errorf("wechat_robot: %w", w.red.err(err))
	}
	if _, retry, err := classifyWeCom(r, w.red, false, true, w.now()); err != nil {
		var we *WeComError
		if errors.As(err, &we) && !retry {
			w.logger.Error("WeChat Work robot refused the message", "group_key", m.GroupKey, "errcode", we.Code, "errmsg", we.Msg)
		}
		return retry, fmt.Errorf("wechat_robot: %w", err)
	}
	w.logger.Debug("Notification sent", "group_key", m.GroupKey, "alerts", len(m.Alerts)-dropped)
	return false, nil
}
