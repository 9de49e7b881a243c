package notify

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"
)

// AliyunSMS sends a template SMS through Alibaba Cloud's dysmsapi SendSms,
// signed with the RPC v1 HMAC-SHA1 scheme.
type AliyunSMS struct {
	endpoint     string
	keyID        string
	keySecret    string
	signName     string
	templateCode string
	region       string
	params       []string
	maxRunes     int
	numbers      string // comma list, without "+"
	client       *http.Client
	logger       *slog.Logger
	red          redactor
	now          func() time.Time
	nonce        func() string
}

var _ Notifier = (*AliyunSMS)(nil)

// NewAliyunSMS validates cfg (provider aliyun), reads its secret file and
// returns the notifier.
func NewAliyunSMS(cfg SMSConfig, client *http.Client, logger *slog.Logger) (*AliyunSMS, error) {
	if cfg.Provider != ProviderAliyun {
		return nil, fmt.Errorf("provider: %q is not aliyun", cfg.Provider)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	secret, err := resolveSecret("access_key_secret", cfg.AccessKeySecret, cfg.AccessKeySecretFile)
	if err != nil {
		return nil, err
	}
	names, maxRunes := templateParams(cfg)
	numbers := make([]string, len(cfg.To))
	for i, n := range cfg.To {
		// Aliyun takes international numbers as country code + number
		// without "+", and Chinese ones with or without 86.
		numbers[i] = strings.TrimPrefix(n, "+")
	}
	return &AliyunSMS{
		endpoint:     orDefault(cfg.URL, DefaultAliyunURL),
		keyID:        cfg.AccessKeyID,
		keySecret:    secret,
		signName:     cfg.SignName,
		templateCode: cfg.TemplateCode,
		region:       orDefault(cfg.RegionID, DefaultAliyunRegion),
		params:       names,
		maxRunes:     maxRunes,
		numbers:      strings.Join(numbers, ","),
		client:       defaultClient(client),
		logger:       discardLogger(logger).With("integration", "sms", "provider", ProviderAliyun),
		red:          redactor{secret},
		now:          time.Now,
		nonce:        randomNonce,
	}, nil
}

func (a *AliyunSMS) String() string { return "sms aliyun " + a.templateCode }

func randomNonce() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b)
}

// Notify sends one SendSms call to every number (Aliyun accepts or refuses
// the batch as a whole).
func (a *AliyunSMS) Notify(ctx context.Context, m *Message) (bool, error) {
	if m == nil {
		return false, errors.New("sms aliyun: no message")
	}
	f := smsFieldsOf(m)
	vars := make(map[string]string, len(a.params))
	for _, name := range a.params {
		vars[name] = f.param(name, a.maxRunes)
	}
	templateParam, err := json.Marshal(vars)
	if err != nil {
		return false, fmt.Errorf("sms aliyun: %w", err)
	}
	params := url.Values{
		"AccessKeyId":      {a.keyID},
		"Action":           {"SendSms"},
		"Format":           {"JSON"},
		"PhoneNumbers":     {a.numbers},
		"RegionId":         {a.region},
		"SignName":         {a.signName},
		"SignatureMethod":  {"HMAC-SHA1"},
		"SignatureNonce":   {a.nonce()},
		"SignatureVersion": {"1.0"},
		"TemplateCode":     {a.templateCode},
		"TemplateParam":    {string(templateParam)},
		"Timestamp":        {a.now().UTC().Format("2006-01-02T15:04:05Z")},
		"Version":          {"2017-05-25"},
	}
	canonical := aliyunCanonicalQuery(params)
	signature := aliyunSignature(a.keySecret, aliyunStringToSign(http.MethodPost, canonical))
	body := canonical + "&Signature=" + aliyunEncode(signature)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.endpoint, strings.NewReader(body))
	if err != nil {
		return false, fmt.Errorf("sms aliyun: %w", a.red.err(err))
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	r, err := do(a.client, req)
	if err != nil {
		return true, fmt.Errorf("sms aliyun: %w", a.red.err(err))
	}
	if retry, err := classifyAliyun(r, a.red, a.now()); err != nil {
		return retry, fmt.Errorf("sms aliyun: %w", err)
	}
	a.logger.Debug("Notification sent", "group_key", m.GroupKey, "numbers", strings.Count(a.numbers, ",")+1)
	return false, nil
}

// aliyunEncode is the RPC percent-encoding: RFC 3986 unreserved characters
// stay, everything else is %XX (space is %20, not +; * is %2A; ~ stays).
func aliyunEncode(s string) string {
	e := url.QueryEscape(s)
	e = strings.ReplaceAll(e, "+", "%20")
	e = strings.ReplaceAll(e, "*", "%2A")
	return strings.ReplaceAll(e, "%7E", "~")
}

// aliyunCanonicalQuery sorts the parameters by name and joins the encoded
// name=value pairs with "&" (one value per name).
func aliyunCanonicalQuery(params url.Values) string {
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	pairs := make([]string, len(keys))
	for i, k := range keys {
		pairs[i] = aliyunEncode(k) + "=" + aliyunEncode(params.Get(k))
	}
	return strings.Join(pairs, "&")
}

// aliyunStringToSign is METHOD&%2F&encode(canonical query).
func aliyunStringToSign(method, canonical string) string {
	return method + "&" + aliyunEncode("/") + "&" + aliyunEncode(canonical)
}

// aliyunSignature is base64(HMAC-SHA1(secret + "&", stringToSign)).
func aliyunSignature(secret, stringToSign string) string {
	mac := hmac.New(sha1.New, []byte(secret+"&"))
	mac.Write([]byte(stringToSign))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// aliyunRetryable are codes that may clear by themselves: throttling, the
// per-number flow control (one SMS a minute by default), server faults, and
// a nonce collision.
var aliyunRetryable = map[string]bool{
	"isp.SYSTEM_ERROR":           true,
	"isv.BUSINESS_LIMIT_CONTROL": true,
	"Throttling":                 true,
	"Throttling.User":            true,
	"Throttling.Api":             true,
	"ServiceUnavailable":         true,
	"InternalError":              true,
	"SignatureNonceUsed":         true,
}

// classifyAliyun reads a SendSms reply (untrusted input).
func classifyAliyun(r *reply, red redactor, now time.Time) (bool, error) {
	var ar struct {
		Code      string `json:"Code"`
		Message   string `json:"Message"`
		RequestID string `json:"RequestId"`
	}
	if err := json.Unmarshal(r.body, &ar); err != nil || ar.Code == "" {
		err := fmt.Errorf("unreadable reply: %w", statusError(r, red))
		if retryableStatus(r.status) {
			return true, withRetryAfter(err, r.header, now)
		}
		// A 2xx without a code may have been sent: do not page twice.
		return false, err
	}
	if ar.Code == "OK" && r.status/100 == 2 {
		return false, nil
	}
	err := fmt.Errorf("%s: %s (HTTP %d, request %s)", quote(red, ar.Code, 64), quote(red, ar.Message, maxErrorBody), r.status, quote(red, ar.RequestID, 64))
	if aliyunRetryable[ar.Code] || r.status >= 500 || r.status == http.StatusTooManyRequests {
		return true, withRetryAfter(err, r.header, now)
	}
	return false, err
}
