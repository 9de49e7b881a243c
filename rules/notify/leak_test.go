package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// leakSubject is a notifier with the secrets it must never show.
type leakSubject struct {
	name    string
	secrets []string
	// apiError formats the integration's own error body around a text.
	apiError string
	// statusOnly integrations judge a reply by its HTTP status alone, so
	// any 200 is a success.
	statusOnly bool
	// route wraps the scenario's handler, e.g. to answer gettoken first.
	route func(scenario http.HandlerFunc) http.HandlerFunc
	build func(t *testing.T, base string, client *http.Client, logger *slog.Logger) Notifier
}

const (
	leakBearer      = "wh-bearer-S3CRET"
	leakPassword    = "wh-password-S3CRET"
	leakBotToken    = "987654:BOT-S3CRET-token"
	leakCorpSecret  = "corp-S3CRET/+="
	leakAccessToken = "access-token-S3CRET/+="
	leakRobotKey    = "robot-key-S3CRET"
	leakTwilio      = "twilio-S3CRET"
	leakAliyun      = "aliyun-S3CRET/+"
	leakTencent     = "tencent-S3CRET"
)

func leakSubjects() []leakSubject {
	direct := func(h http.HandlerFunc) http.HandlerFunc { return h }
	// wecomRoute answers gettoken with leakAccessToken and hands send to
	// the scenario, so that the send URL carries the token.
	wecomRoute := func(h http.HandlerFunc) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if strings.HasSuffix(r.URL.Path, "/gettoken") {
				_, _ = fmt.Fprintf(w, `{"errcode":0,"access_token":%q,"expires_in":7200}`, leakAccessToken)
				return
			}
			h(w, r)
		}
	}
	return []leakSubject{
		{
			name: "webhook bearer", secrets: []string{leakBearer}, apiError: `{"error":%q}`, statusOnly: true, route: direct,
			build: func(t *testing.T, base string, c *http.Client, l *slog.Logger) Notifier {
				n, err := NewWebhook(WebhookConfig{URL: base + "/hook", BearerToken: leakBearer}, c, l)
				require.NoError(t, err)
				return n
			},
		},
		{
			name: "webhook basic auth", secrets: []string{leakPassword}, apiError: `{"error":%q}`, statusOnly: true, route: direct,
			build: func(t *testing.T, base string, c *http.Client, l *slog.Logger) Notifier {
				n, err := NewWebhook(WebhookConfig{URL: base + "/hook", BasicAuth: &BasicAuth{Username: "u", Password: leakPassword}}, c, l)
				require.NoError(t, err)
				return n
			},
		},
		{
			name: "telegram", secrets: []string{leakBotToken}, apiError: `{"ok":false,"error_code":400,"description":%q}`, route: direct,
			build: func(t *testing.T, base string, c *http.Client, l *slog.Logger) Notifier {
				n, err := NewTelegram(TelegramConfig{APIURL: base, BotToken: leakBotToken, ChatID: 1}, c, l)
				require.NoError(t, err)
				return n
			},
		},
		{
			name: "wechat send", secrets: []string{leakCorpSecret, leakAccessToken}, apiError: `{"errcode":40001,"errmsg":%q}`, route: wecomRoute,
			build: func(t *testing.T, base string, c *http.Client, l *slog.Logger) Notifier {
				n, err := NewWeChat(WeChatConfig{APIURL: base + "/cgi-bin/", CorpID: "c", AgentID: "1", APISecret: leakCorpSecret, ToUser: "u"}, c, l)
				require.NoError(t, err)
				return n
			},
		},
		{
			name: "wechat gettoken", secrets: []string{leakCorpSecret}, apiError: `{"errcode":40001,"errmsg":%q}`, route: direct,
			build: func(t *testing.T, base string, c *http.Client, l *slog.Logger) Notifier {
				n, err := NewWeChat(WeChatConfig{APIURL: base + "/cgi-bin/", CorpID: "c", AgentID: "1", APISecret: leakCorpSecret, ToUser: "u"}, c, l)
				require.NoError(t, err)
				return n
			},
		},
		{
			name: "wechat robot", secrets: []string{leakRobotKey}, apiError: `{"errcode":93000,"errmsg":%q}`, route: direct,
			build: func(t *testing.T, base string, c *http.Client, l *slog.Logger) Notifier {
				n, err := NewWeChatRobot(WeChatRobotConfig{URL: base + "/cgi-bin/webhook/send", Key: leakRobotKey}, c, l)
				require.NoError(t, err)
				return n
			},
		},
		{
			name: "sms twilio", secrets: []string{leakTwilio}, apiError: `{"code":20003,"message":%q}`, statusOnly: true, route: direct,
			build: func(t *testing.T, base string, c *http.Client, l *slog.Logger) Notifier {
				n, err := NewTwilio(SMSConfig{Provider: ProviderTwilio, URL: base, AccountSID: "AC1", AuthToken: leakTwilio,
					From: "+15550006666", To: []string{"+15550000001", "+15550000002"}}, c, l)
				require.NoError(t, err)
				return n
			},
		},
		{
			name: "sms aliyun", secrets: []string{leakAliyun}, apiError: `{"Code":"SignatureDoesNotMatch","Message":%q}`, route: direct,
			build: func(t *testing.T, base string, c *http.Client, l *slog.Logger) Notifier {
				n, err := NewAliyunSMS(SMSConfig{Provider: ProviderAliyun, URL: base, AccessKeyID: "LTAI", AccessKeySecret: leakAliyun,
					SignName: "s", TemplateCode: "SMS_1", To: []string{"+8613800001111"}}, c, l)
				require.NoError(t, err)
				return n
			},
		},
		{
			name: "sms tencent", secrets: []string{leakTencent}, apiError: `{"Response":{"Error":{"Code":"AuthFailure.SignatureFailure","Message":%q}}}`, route: direct,
			build: func(t *testing.T, base string, c *http.Client, l *slog.Logger) Notifier {
				n, err := NewTencentSMS(SMSConfig{Provider: ProviderTencent, URL: base, SecretID: "AKID", SecretKey: leakTencent,
					SDKAppID: "1", SignName: "s", TemplateID: "1", To: []string{"+8613800001111"}}, c, l)
				require.NoError(t, err)
				return n
			},
		},
	}
}

// echo is every secret in every form a careless server could send back.
func echo(secrets []string) string {
	var parts []string
	for _, s := range secrets {
		parts = append(parts, s, url.QueryEscape(s), url.PathEscape(s))
	}
	return "you sent " + strings.Join(parts, " and ")
}

// TestNoSecretLeaks drives every notifier through every error path it has
// (error statuses, its own API error, unreadable replies, a hang-up, a
// closed server) with a server that echoes the secrets back, and checks
// that neither the error, however printed or unwrapped, nor the log output
// (at debug level) shows a secret.
func TestNoSecretLeaks(t *testing.T) {
	scenarios := []struct {
		name    string
		handler func(s leakSubject) http.HandlerFunc
		closed  bool
		ok      bool
		on200   bool
	}{
		{name: "success", ok: true, handler: func(s leakSubject) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) {
				switch {
				case strings.Contains(s.name, "telegram"):
					_, _ = w.Write([]byte(`{"ok":true}`))
				case strings.Contains(s.name, "wechat"):
					// Partial delivery is logged: the unknown recipients
					// echo the secrets.
					e := echo(s.secrets)
					_, _ = fmt.Fprintf(w, `{"errcode":0,"access_token":%q,"invaliduser":%q,"invalidparty":%q,"invalidtag":%q}`, leakAccessToken, e, e, e)
				case strings.Contains(s.name, "aliyun"):
					_, _ = w.Write([]byte(`{"Code":"OK"}`))
				case strings.Contains(s.name, "tencent"):
					_, _ = w.Write([]byte(`{"Response":{"SendStatusSet":[{"PhoneNumber":"+8613800001111","Code":"Ok"}]}}`))
				default:
					w.WriteHeader(200)
				}
			}
		}},
		{name: "500 echoing", handler: func(s leakSubject) http.HandlerFunc { return replyWith(500, echo(s.secrets)) }},
		{name: "400 echoing", handler: func(s leakSubject) http.HandlerFunc { return replyWith(400, echo(s.secrets)) }},
		{name: "429 echoing", handler: func(s leakSubject) http.HandlerFunc {
			return replyWith(429, echo(s.secrets), "Retry-After", "1")
		}},
		{name: "api error echoing", on200: true, handler: func(s leakSubject) http.HandlerFunc {
			return replyWith(200, fmt.Sprintf(s.apiError, echo(s.secrets)))
		}},
		{name: "api error echoing on 400", handler: func(s leakSubject) http.HandlerFunc {
			return replyWith(400, fmt.Sprintf(s.apiError, echo(s.secrets)))
		}},
		{name: "invalid json echoing", on200: true, handler: func(s leakSubject) http.HandlerFunc {
			return replyWith(200, "{not json "+echo(s.secrets))
		}},
		{name: "hang up", handler: func(leakSubject) http.HandlerFunc { return hangUp }},
		{name: "closed server", closed: true},
	}
	for _, s := range leakSubjects() {
		for _, sc := range scenarios {
			if sc.ok && s.name == "webhook basic auth" {
				continue // same as bearer
			}
			if sc.name == "success" && s.name == "wechat gettoken" {
				continue
			}
			t.Run(s.name+"/"+sc.name, func(t *testing.T) {
				logger, logs := captureLogger()
				var base string
				client := http.DefaultClient
				if sc.closed {
					base = closedURL(t)
				} else {
					srv := newRecorder(t, s.route(sc.handler(s)))
					base, client = srv.URL, srv.Client()
				}
				n := s.build(t, base, client, logger)
				_, err := n.Notify(context.Background(), testMessage(2))
				switch {
				case sc.ok:
					require.NoError(t, err)
				case sc.on200 && s.statusOnly:
					require.NoError(t, err)
				default:
					require.Error(t, err)
				}
				var shown []string
				if err != nil {
					shown = append(shown, err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err))
					for e := err; e != nil; e = errors.Unwrap(e) {
						shown = append(shown, e.Error())
					}
					var ue *url.Error
					if errors.As(err, &ue) {
						shown = append(shown, ue.URL, ue.Err.Error())
					}
				}
				shown = append(shown, logs.String(), fmt.Sprint(n))
				for _, out := range shown {
					for _, secret := range s.secrets {
						for _, form := range []string{secret, url.QueryEscape(secret), url.PathEscape(secret)} {
							require.NotContains(t, out, form)
						}
					}
				}
			})
		}
	}
}

// TestConcurrentNotify runs every notifier from several goroutines, as the
// dispatcher does for different groups; -race checks the shared state
// (Telegram's chat, WeChat's token, the SMS delivery memory).
func TestConcurrentNotify(t *testing.T) {
	success := func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.Contains(r.URL.Path, "/bot"):
			_, _ = w.Write([]byte(`{"ok":true}`))
		case strings.HasSuffix(r.URL.Path, "/gettoken"):
			_, _ = fmt.Fprintf(w, `{"errcode":0,"access_token":%q}`, leakAccessToken)
		case strings.Contains(r.URL.Path, "/cgi-bin/"):
			_, _ = w.Write([]byte(`{"errcode":0}`))
		case r.Header.Get("X-TC-Action") != "":
			_, _ = w.Write([]byte(`{"Response":{"SendStatusSet":[{"PhoneNumber":"+8613800001111","Code":"Ok"}]}}`))
		case strings.Contains(r.URL.Path, "/Accounts/"):
			w.WriteHeader(201)
		case r.URL.Path == "/":
			_, _ = w.Write([]byte(`{"Code":"OK"}`))
		default:
			w.WriteHeader(200)
		}
	}
	for _, s := range leakSubjects() {
		t.Run(s.name, func(t *testing.T) {
			srv := newRecorder(t, success)
			n := s.build(t, srv.URL, srv.Client(), nil)
			errs := make(chan error, 8)
			for g := 0; g < cap(errs); g++ {
				go func() {
					m := testMessage(1 + g%3)
					m.GroupKey = fmt.Sprint("group-", g)
					_, err := n.Notify(context.Background(), m)
					errs <- err
				}()
			}
			for g := 0; g < cap(errs); g++ {
				require.NoError(t, <-errs)
			}
		})
	}
}
