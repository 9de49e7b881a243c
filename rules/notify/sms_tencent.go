package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

const (
	tencentService     = "sms"
	tencentVersion     = "2021-01-11"
	tencentContentType = "application/json; charset=utf-8"
	tc3Algorithm       = "TC3-HMAC-SHA256"
	tc3SignedHeaders   = "content-type;host"
)

// TencentSMS sends a template SMS through Tencent Cloud SMS SendSms,
// signed with TC3-HMAC-SHA256.
type TencentSMS struct {
	endpoint   string
	host       string
	secretID   string
	secretKey  string
	sdkAppID   string
	signName   string
	templateID string
	region     string
	params     []string
	maxRunes   int
	to         []string
	client     *http.Client
	logger     *slog.Logger
	red        redactor
	now        func() time.Time
	sent       delivered
}

var _ Notifier = (*TencentSMS)(nil)

// NewTencentSMS validates cfg (provider tencent), reads its secret file and
// returns the notifier.
func NewTencentSMS(cfg SMSConfig, client *http.Client, logger *slog.Logger) (*TencentSMS, error) {
	if cfg.Provider != ProviderTencent {
		return nil, fmt.Errorf("provider: %q is not tencent", cfg.Provider)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	key, err := resolveSecret("secret_key", cfg.SecretKey, cfg.SecretKeyFile)
	if err != nil {
		return nil, err
	}
	endpoint := orDefault(cfg.URL, DefaultTencentURL)
	u, err := url.Parse(endpoint)
	if err != nil {
		return nil, fmt.Errorf("url: %w", err)
	}
	names, maxRunes := templateParams(cfg)
	return &TencentSMS{
		endpoint:   endpoint,
		host:       u.Host,
		secretID:   cfg.SecretID,
		secretKey:  key,
		sdkAppID:   cfg.SDKAppID,
		signName:   cfg.SignName,
		templateID: cfg.TemplateID,
		region:     orDefault(cfg.Region, DefaultTencentRegion),
		params:     names,
		maxRunes:   maxRunes,
		to:         cfg.To,
		client:     defaultClient(client),
		logger:     discardLogger(logger).With("integration", "sms", "provider", ProviderTencent),
		red:        redactor{key},
		now:        time.Now,
	}, nil
}

func (t *TencentSMS) String() string { return "sms tencent " + t.templateID }

type tencentRequest struct {
	PhoneNumberSet   []string `json:"PhoneNumberSet"`
	SmsSdkAppID      string   `json:"SmsSdkAppId"`
	SignName         string   `json:"SignName"`
	TemplateID       string   `json:"TemplateId"`
	TemplateParamSet []string `json:"TemplateParamSet"`
}

// Notify sends one SendSms call to the numbers not yet reached for this
// message; Tencent reports each number's outcome separately.
func (t *TencentSMS) Notify(ctx context.Context, m *Message) (bool, error) {
	if m == nil {
		return false, errors.New("sms tencent: no message")
	}
	f := smsFieldsOf(m)
	vars := make([]string, len(t.params))
	for i, name := range t.params {
		vars[i] = f.param(name, t.maxRunes)
	}
	key := messageKey(m, strings.Join(vars, "\x00"))
	to := t.sent.pending(key, t.to)
	if len(to) == 0 {
		t.sent.done(key)
		return false, nil
	}
	payload, err := json.Marshal(tencentRequest{
		PhoneNumberSet: to, SmsSdkAppID: t.sdkAppID, SignName: t.signName,
		TemplateID: t.templateID, TemplateParamSet: vars,
	})
	if err != nil {
		return false, fmt.Errorf("sms tencent: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.endpoint, bytes.NewReader(payload))
	if err != nil {
		return false, fmt.Errorf("sms tencent: %w", t.red.err(err))
	}
	now := t.now()
	req.Header.Set("Content-Type", tencentContentType)
	req.Header.Set("X-TC-Action", "SendSms")
	req.Header.Set("X-TC-Version", tencentVersion)
	req.Header.Set("X-TC-Region", t.region)
	req.Header.Set("X-TC-Timestamp", strconv.FormatInt(now.Unix(), 10))
	req.Header.Set("Authorization", tc3Authorization(t.secretID, t.secretKey, tencentService, t.host, tencentContentType, payload, now))
	r, err := do(t.client, req)
	if err != nil {
		return true, fmt.Errorf("sms tencent: %w", t.red.err(err))
	}
	sent, retry, err := classifyTencent(r, t.red, now)
	t.sent.mark(key, sent...)
	if err != nil {
		return retry, fmt.Errorf("sms tencent: %w", err)
	}
	t.sent.done(key)
	t.logger.Debug("Notification sent", "group_key", m.GroupKey, "numbers", len(to))
	return false, nil
}

// tc3Authorization is the Authorization header value of a TC3-HMAC-SHA256
// signed POST to "/" with signed headers content-type and host.
func tc3Authorization(secretID, secretKey, service, host, contentType string, payload []byte, ts time.Time) string {
	date := ts.UTC().Format("2006-01-02")
	canonical := tc3CanonicalRequest(host, contentType, payload)
	sts := tc3StringToSign(ts, service, canonical)
	return fmt.Sprintf("%s Credential=%s/%s/%s/tc3_request, SignedHeaders=%s, Signature=%s",
		tc3Algorithm, secretID, date, service, tc3SignedHeaders, tc3Signature(secretKey, date, service, sts))
}

// tc3CanonicalRequest is method, URI, query, canonical headers (each ended
// by a newline), signed headers and the hex SHA-256 of the payload, joined
// by newlines.
func tc3CanonicalRequest(host, contentType string, payload []byte) string {
	sum := sha256.Sum256(payload)
	return strings.Join([]string{
		http.MethodPost,
		"/",
		"",
		"content-type:" + strings.ToLower(contentType) + "\nhost:" + strings.ToLower(host) + "\n",
		tc3SignedHeaders,
		hex.EncodeToString(sum[:]),
	}, "\n")
}

// tc3StringToSign is algorithm, timestamp, credential scope and the hex
// SHA-256 of the canonical request, joined by newlines.
func tc3StringToSign(ts time.Time, service, canonical string) string {
	sum := sha256.Sum256([]byte(canonical))
	return strings.Join([]string{
		tc3Algorithm,
		strconv.FormatInt(ts.Unix(), 10),
		ts.UTC().Format("2006-01-02") + "/" + service + "/tc3_request",
		hex.EncodeToString(sum[:]),
	}, "\n")
}

// tc3Signature derives the signing key from "TC3"+secretKey through the
// date, the service and "tc3_request", and signs stringToSign with it.
func tc3Signature(secretKey, date, service, stringToSign string) string {
	k := hmacSHA256([]byte("TC3"+secretKey), date)
	k = hmacSHA256(k, service)
	k = hmacSHA256(k, "tc3_request")
	return hex.EncodeToString(hmacSHA256(k, stringToSign))
}

func hmacSHA256(key []byte, msg string) []byte {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(msg))
	return mac.Sum(nil)
}

// tencentRetryable says whether an error code may clear by itself: server
// faults, API throttling and the 30-second per-number limit.
func tencentRetryable(code string) bool {
	return strings.HasPrefix(code, "InternalError") ||
		strings.HasPrefix(code, "RequestLimitExceeded") ||
		code == "LimitExceeded.PhoneNumberThirtySecondLimit" ||
		code == "LimitExceeded.DeliveryFrequencyLimit"
}

type tencentReply struct {
	Response struct {
		Error *struct {
			Code    string `json:"Code"`
			Message string `json:"Message"`
		} `json:"Error"`
		SendStatusSet []struct {
			PhoneNumber string `json:"PhoneNumber"`
			Code        string `json:"Code"`
			Message     string `json:"Message"`
		} `json:"SendStatusSet"`
		RequestID string `json:"RequestId"`
	} `json:"Response"`
}

// classifyTencent reads a SendSms reply (untrusted input), returning the
// numbers reached.
func classifyTencent(r *reply, red redactor, now time.Time) (sent []string, retry bool, err error) {
	var tr tencentReply
	if err := json.Unmarshal(r.body, &tr); err != nil || (tr.Response.Error == nil && len(tr.Response.SendStatusSet) == 0) {
		err := fmt.Errorf("unreadable reply: %w", statusError(r, red))
		if retryableStatus(r.status) {
			return nil, true, withRetryAfter(err, r.header, now)
		}
		return nil, false, err
	}
	if e := tr.Response.Error; e != nil {
		err := fmt.Errorf("%s: %s (request %s)", quote(red, e.Code, 64), quote(red, e.Message, maxErrorBody), quote(red, tr.Response.RequestID, 64))
		if tencentRetryable(e.Code) || retryableStatus(r.status) {
			return nil, true, withRetryAfter(err, r.header, now)
		}
		return nil, false, err
	}
	var errs []error
	for _, s := range tr.Response.SendStatusSet {
		if s.Code == "Ok" {
			sent = append(sent, s.PhoneNumber)
			continue
		}
		errs = append(errs, fmt.Errorf("to %s: %s: %s", quote(red, s.PhoneNumber, 32), quote(red, s.Code, 64), quote(red, s.Message, maxErrorBody)))
		retry = retry || tencentRetryable(s.Code)
	}
	return sent, retry, errors.Join(errs...)
}
