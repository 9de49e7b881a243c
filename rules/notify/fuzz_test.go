package notify

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// fuzzSecret is what the fuzzed replies may echo; it must never come out.
const fuzzSecret = "FUZZ-S3CRET"

func fuzzReply(status int, retryAfter string, body []byte) *reply {
	if status < 100 || status > 999 {
		status = 200
	}
	return &reply{status: status, header: http.Header{"Retry-After": {retryAfter}}, body: body}
}

// checkOutcome holds for every classifier: no secret in the error, a
// RetryAfterError only with retry=true and a wait within bounds.
func checkOutcome(t *testing.T, retry bool, err error) {
	t.Helper()
	if err == nil {
		if retry {
			t.Fatal("retry without an error")
		}
		return
	}
	if strings.Contains(err.Error(), fuzzSecret) {
		t.Fatalf("secret in error: %v", err)
	}
	if !utf8.ValidString(err.Error()) {
		t.Fatalf("invalid UTF-8 in error: %q", err.Error())
	}
	var ra *RetryAfterError
	if errors.As(err, &ra) {
		if !retry {
			t.Fatal("RetryAfterError without retry")
		}
		if ra.After < 0 || ra.After > maxRetryAfter {
			t.Fatalf("wait out of bounds: %v", ra.After)
		}
	}
}

func FuzzTelegramReply(f *testing.F) {
	f.Add(200, "", []byte(`{"ok":true,"result":{"message_id":1}}`))
	f.Add(429, "", []byte(`{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 15","parameters":{"retry_after":15}}`))
	f.Add(400, "", []byte(`{"ok":false,"error_code":400,"description":"Bad Request: group chat was upgraded","parameters":{"migrate_to_chat_id":-1001}}`))
	f.Add(429, "Wed, 21 Oct 2015 07:28:00 GMT", []byte(`{"ok":false,"error_code":429,"parameters":{"retry_after":-5}}`))
	f.Add(502, "10", []byte("<html>"+fuzzSecret))
	f.Add(200, "", []byte(`{"ok":false,"description":"`+fuzzSecret+`\xff"}`))
	f.Fuzz(func(t *testing.T, status int, retryAfter string, body []byte) {
		res := classifyTelegram(fuzzReply(status, retryAfter, body), redactor{fuzzSecret}, testNow)
		checkOutcome(t, res.retry, res.err)
		if res.migrateTo != 0 && (res.err == nil || res.retry) {
			t.Fatal("a migration is a final error of this send")
		}
	})
}

func FuzzWeComReply(f *testing.F) {
	f.Add(200, "", []byte(`{"errcode":0,"errmsg":"ok","access_token":"t","expires_in":7200}`))
	f.Add(200, "", []byte(`{"errcode":42001,"errmsg":"access_token expired"}`))
	f.Add(200, "", []byte(`{"errcode":60020,"errmsg":"not allow to access from your ip"}`))
	f.Add(200, "", []byte(`{"errcode":45009,"errmsg":"`+fuzzSecret+`"}`))
	f.Add(503, "5", []byte(fuzzSecret))
	f.Add(200, "", []byte(`{"errcode":1e99}`))
	f.Fuzz(func(t *testing.T, status int, retryAfter string, body []byte) {
		for _, tokenRetry := range []bool{false, true} {
			_, retry, err := classifyWeCom(fuzzReply(status, retryAfter, body), redactor{fuzzSecret}, tokenRetry, true, testNow)
			checkOutcome(t, retry, err)
		}
	})
}

func FuzzSMSReplies(f *testing.F) {
	f.Add(201, "", []byte(`{"sid":"SM1"}`))
	f.Add(400, "", []byte(`{"code":21211,"message":"`+fuzzSecret+`"}`))
	f.Add(200, "", []byte(`{"Code":"OK","Message":"OK"}`))
	f.Add(200, "", []byte(`{"Code":"isv.BUSINESS_LIMIT_CONTROL","Message":"`+fuzzSecret+`"}`))
	f.Add(200, "", []byte(`{"Response":{"SendStatusSet":[{"PhoneNumber":"+86","Code":"Ok"},{"PhoneNumber":"+1","Code":"InternalError"}]}}`))
	f.Add(200, "", []byte(`{"Response":{"Error":{"Code":"RequestLimitExceeded","Message":"`+fuzzSecret+`"}}}`))
	f.Add(429, "1", []byte(""))
	f.Fuzz(func(t *testing.T, status int, retryAfter string, body []byte) {
		r := fuzzReply(status, retryAfter, body)
		red := redactor{fuzzSecret}
		retry, err := classifyTwilio(r, red, testNow)
		checkOutcome(t, retry, err)
		retry, err = classifyAliyun(r, red, testNow)
		checkOutcome(t, retry, err)
		_, retry, err = classifyTencent(r, red, testNow)
		if err == nil && retry {
			t.Fatal("retry without an error")
		}
		checkOutcome(t, retry, err)
	})
}

func FuzzRetryAfter(f *testing.F) {
	for _, s := range []string{"", "0", "120", "-1", "1e3", "99999999999999999999", "Wed, 21 Oct 2015 07:28:00 GMT", "Sun, 06 Nov 1994 08:49:37 GMT", "  7 "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		d, ok := parseRetryAfter(v, testNow)
		if !ok && d != 0 {
			t.Fatalf("wait %v without ok", d)
		}
		if d < 0 || d > maxRetryAfter {
			t.Fatalf("wait out of bounds: %v", d)
		}
	})
}

func FuzzReceiverConfigYAML(f *testing.F) {
	f.Add([]byte(exampleReceiver))
	f.Add([]byte("name: r\ntelegram_configs: [{chat_id: 99999999999999999999999}]"))
	f.Add([]byte("name: r\nsms_configs: [{provider: aliyun, to: [1, 2], template_params: [~]}]"))
	f.Add([]byte("name: &a [*a]"))
	f.Add([]byte("webhook_configs: {url: x}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var cfg ReceiverConfig
		if err := yaml.Unmarshal(data, &cfg); err != nil {
			return
		}
		_ = cfg.Validate()
		out, err := yaml.Marshal(cfg)
		if err != nil {
			t.Fatalf("marshal a decoded config: %v", err)
		}
		var again ReceiverConfig
		if err := yaml.Unmarshal(out, &again); err != nil {
			t.Fatalf("a dumped config does not load: %v\n%s", err, out)
		}
	})
}

func FuzzFitMessage(f *testing.F) {
	f.Add("HostDown", "critical", "<b>&amp;", "描述", "https://x/<y>", 3, uint16(4096))
	f.Add("", "", "", "", "", 0, uint16(10))
	f.Add("\xff\xfe", "🔥", strings.Repeat("*_[", 50), strings.Repeat("磁", 2000), "javascript:1", 40, uint16(2048))
	f.Fuzz(func(t *testing.T, name, severity, summary, description, link string, n int, limit uint16) {
		n = max(0, min(n, 60))
		m := &Message{Receiver: name, GroupLabels: map[string]string{"cluster": summary}}
		for i := 0; i < n; i++ {
			m.Alerts = append(m.Alerts, Alert{
				Labels:       map[string]string{"alertname": name, "severity": severity, "instance": description},
				Annotations:  map[string]string{"summary": summary, "description": description, "runbook_url": link},
				GeneratorURL: link,
			})
		}
		for _, tc := range []struct {
			mk   markup
			size func(string) int
			html bool
		}{
			{telegramHTML, utf16Len, true},
			{telegramMarkdownV2, utf16Len, false},
			{wecomMarkdown, byteLen, false},
			{plainText, byteLen, false},
		} {
			text, dropped := fitMessage(m, tc.mk, int(limit), tc.size)
			if dropped < 0 || dropped > n {
				t.Fatalf("dropped %d of %d", dropped, n)
			}
			if !utf8.ValidString(text) {
				t.Fatalf("invalid UTF-8: %q", text)
			}
			// Limits in use are 2048 and more; the title fallback alone may
			// exceed a tiny fuzzed limit.
			if limit >= 2048 && tc.size(text) > int(limit) {
				t.Fatalf("size %d over limit %d", tc.size(text), limit)
			}
			if tc.html {
				stripped := htmlTagRE.ReplaceAllString(text, "")
				if strings.ContainsAny(stripped, "<>") {
					t.Fatalf("unescaped markup in %q", text)
				}
			}
		}
		for _, mt := range []string{MessageTypeText, MessageTypeMarkdown} {
			content, _ := fitWeCom(m, mt)
			if len(content) > wecomMarkdownMaxBytes || !utf8.ValidString(content) {
				t.Fatalf("wecom content of %d bytes", len(content))
			}
		}
		if text := smsFieldsOf(m).text(); utf8.RuneCountInString(text) > smsMaxRunes || !utf8.ValidString(text) {
			t.Fatalf("sms text %q", text)
		}
	})
}
