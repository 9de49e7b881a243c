package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

const (
	testCorpSecret  = "corp-secret-Zx9/+q"
	testAccessToken = "ACCESS-TOKEN-abc/+=="
	testRobotKey    = "693a91f6-7xxx-4bc4-97a0-0ec2sifa5aaa"
)

// wecomServer is a fake WeChat Work API: gettoken hands out numbered
// tokens, message/send answers with send.
type wecomServer struct {
	*recorder
	tokens atomic.Int32
}

func newWeComServer(t *testing.T, gettoken, send http.HandlerFunc) *wecomServer {
	t.Helper()
	ws := &wecomServer{}
	if gettoken == nil {
		gettoken = func(w http.ResponseWriter, _ *http.Request) {
			n := ws.tokens.Add(1)
			_, _ = fmt.Fprintf(w, `{"errcode":0,"errmsg":"ok","access_token":"%s-%d","expires_in":7200}`, testAccessToken, n)
		}
	}
	ws.recorder = newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/cgi-bin/gettoken":
			gettoken(w, r)
		case "/cgi-bin/message/send":
			send(w, r)
		default:
			http.NotFound(w, r)
		}
	})
	return ws
}

func (ws *wecomServer) paths() []string {
	var out []string
	for _, r := range ws.requests() {
		out = append(out, r.Method+" "+r.Path)
	}
	return out
}

func newTestWeChat(t *testing.T, ws *wecomServer, cfg WeChatConfig) *WeChat {
	t.Helper()
	cfg.APIURL = ws.URL + "/cgi-bin" // no trailing slash: one is added
	cfg.CorpID = orDefault(cfg.CorpID, "ww0123456789")
	cfg.AgentID = orDefault(cfg.AgentID, "1000002")
	if cfg.APISecretFile == "" {
		cfg.APISecret = testCorpSecret
	}
	if cfg.ToUser == "" && cfg.ToParty == "" && cfg.ToTag == "" {
		cfg.ToUser = "zhangsan|lisi"
	}
	w, err := NewWeChat(cfg, ws.Client(), nil)
	require.NoError(t, err)
	w.now = fixedNow
	return w
}

func TestWeChatRequest(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  WeChatConfig
		want string
	}{
		{
			name: "text",
			cfg:  WeChatConfig{ToUser: "zhangsan|lisi", ToParty: "2", ToTag: "ops"},
			want: `{"touser":"zhangsan|lisi","toparty":"2","totag":"ops","agentid":"1000002","msgtype":"text","text":{"content":%q},"safe":"0"}`,
		},
		{
			name: "markdown",
			cfg:  WeChatConfig{ToParty: "2", MessageType: MessageTypeMarkdown, APISecretFile: writeFile(t, "secret", testCorpSecret+"\n")},
			want: `{"touser":"","toparty":"2","totag":"","agentid":"1000002","msgtype":"markdown","markdown":{"content":%q},"safe":"0"}`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ws := newWeComServer(t, nil, replyWith(200, `{"errcode":0,"errmsg":"ok","invaliduser":""}`))
			w := newTestWeChat(t, ws, tc.cfg)
			retry, err := w.Notify(context.Background(), testMessage(1))
			require.NoError(t, err)
			require.False(t, retry)

			reqs := ws.requests()
			require.Len(t, reqs, 2)
			tok := reqs[0]
			require.Equal(t, "GET", tok.Method)
			require.Equal(t, "/cgi-bin/gettoken", tok.Path)
			require.Equal(t, map[string][]string{"corpid": {"ww0123456789"}, "corpsecret": {testCorpSecret}}, tok.Query)

			send := reqs[1]
			require.Equal(t, "POST", send.Method)
			require.Equal(t, "/cgi-bin/message/send", send.Path)
			require.Equal(t, map[string][]string{"access_token": {testAccessToken + "-1"}}, send.Query)
			require.Equal(t, "application/json", send.Header.Get("Content-Type"))
			content, _ := fitWeCom(testMessage(1), orDefault(tc.cfg.MessageType, MessageTypeText))
			require.JSONEq(t, fmt.Sprintf(tc.want, content), string(send.Body))
		})
	}
}

func TestWeChatTokenCache(t *testing.T) {
	ws := newWeComServer(t, nil, replyWith(200, `{"errcode":0,"errmsg":"ok"}`))
	w := newTestWeChat(t, ws, WeChatConfig{})
	now := testNow
	w.now = func() time.Time { return now }
	notify := func() {
		t.Helper()
		_, err := w.Notify(context.Background(), testMessage(1))
		require.NoError(t, err)
	}
	notify()
	now = now.Add(time.Hour)
	notify()
	now = now.Add(time.Hour) // two hours after the fetch: stale
	notify()
	require.Equal(t, []string{
		"GET /cgi-bin/gettoken", "POST /cgi-bin/message/send",
		"POST /cgi-bin/message/send",
		"GET /cgi-bin/gettoken", "POST /cgi-bin/message/send",
	}, ws.paths())
	require.Equal(t, testAccessToken+"-2", ws.requests()[4].Query["access_token"][0])
}

func TestWeChatTokenShortExpiry(t *testing.T) {
	ws := newWeComServer(t, replyWith(200, `{"errcode":0,"access_token":"t","expires_in":60}`), replyWith(200, `{"errcode":0}`))
	w := newTestWeChat(t, ws, WeChatConfig{})
	now := testNow
	w.now = func() time.Time { return now }
	for i := 0; i < 2; i++ {
		_, err := w.Notify(context.Background(), testMessage(1))
		require.NoError(t, err)
		now = now.Add(61 * time.Second)
	}
	require.Equal(t, 2, strings.Count(strings.Join(ws.paths(), ","), "gettoken"))
}

func TestWeChatTokenRefreshedOnExpiry(t *testing.T) {
	for _, code := range []int{wecomTokenExpired, wecomTokenInvalid} {
		t.Run(fmt.Sprint(code), func(t *testing.T) {
			var sends atomic.Int32
			ws := newWeComServer(t, nil, func(w http.ResponseWriter, _ *http.Request) {
				if sends.Add(1) == 1 {
					_, _ = fmt.Fprintf(w, `{"errcode":%d,"errmsg":"access_token expired, hint: [1]"}`, code)
					return
				}
				_, _ = w.Write([]byte(`{"errcode":0,"errmsg":"ok"}`))
			})
			w := newTestWeChat(t, ws, WeChatConfig{})
			retry, err := w.Notify(context.Background(), testMessage(1))
			require.True(t, retry, "a fresh token may succeed")
			require.ErrorContains(t, err, fmt.Sprintf("wechat: send message: errcode %d: access_token expired", code))
			var we *WeComError
			require.ErrorAs(t, err, &we)
			require.Equal(t, code, we.Code)

			retry, err = w.Notify(context.Background(), testMessage(1))
			require.NoError(t, err)
			require.False(t, retry)
			reqs := ws.requests()
			require.Equal(t, []string{
				"GET /cgi-bin/gettoken", "POST /cgi-bin/message/send",
				"GET /cgi-bin/gettoken", "POST /cgi-bin/message/send",
			}, ws.paths())
			require.Equal(t, testAccessToken+"-2", reqs[3].Query["access_token"][0])
		})
	}
}

func TestWeChatSendErrors(t *testing.T) {
	for _, tc := range []struct {
		name     string
		status   int
		body     string
		retry    bool
		wantErr  []string
		loudCode int
	}{
		{name: "rate limited", status: 200, body: `{"errcode":45009,"errmsg":"api freq out of limit"}`, retry: true,
			wantErr: []string{"errcode 45009: api freq out of limit (API frequency limit reached)"}},
		{name: "busy", status: 200, body: `{"errcode":-1,"errmsg":"system busy"}`, retry: true,
			wantErr: []string{"errcode -1: system busy"}},
		{name: "untrusted ip", status: 200, body: `{"errcode":60020,"errmsg":"not allow to access from your ip, hint: [1], from ip: 1.2.3.4"}`,
			wantErr: []string{"errcode 60020: not allow to access from your ip", "trusted IP list"}, loudCode: 60020},
		{name: "too long", status: 200, body: `{"errcode":40058,"errmsg":"text.content exceed max length"}`,
			wantErr: []string{"errcode 40058: text.content exceed max length (content too long)"}, loudCode: 40058},
		{name: "bad agent", status: 200, body: `{"errcode":40056,"errmsg":"invalid agentid"}`,
			wantErr: []string{"errcode 40056: invalid agentid (check agent_id)"}, loudCode: 40056},
		{name: "unknown code", status: 200, body: `{"errcode":81013,"errmsg":"user & party & tag all invalid"}`,
			wantErr: []string{"errcode 81013: user & party & tag all invalid"}, loudCode: 81013},
		{name: "gateway", status: 502, body: "bad gateway", retry: true, wantErr: []string{"HTTP 502 Bad Gateway: bad gateway"}},
		{name: "forbidden", status: 403, body: "no", wantErr: []string{"HTTP 403 Forbidden: no"}},
		{name: "unreadable", status: 200, body: "<html>", wantErr: []string{"unreadable reply: <html>"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ws := newWeComServer(t, nil, replyWith(tc.status, tc.body))
			logger, logs := captureLogger()
			w, err := NewWeChat(WeChatConfig{APIURL: ws.URL + "/cgi-bin/", CorpID: "c", AgentID: "1", APISecret: testCorpSecret, ToUser: "@all"}, ws.Client(), logger)
			require.NoError(t, err)
			retry, err := w.Notify(context.Background(), testMessage(1))
			require.Equal(t, tc.retry, retry)
			for _, want := range tc.wantErr {
				require.ErrorContains(t, err, want)
			}
			if tc.loudCode != 0 {
				require.Contains(t, logs.String(), `"level":"ERROR"`)
				require.Contains(t, logs.String(), fmt.Sprintf(`"errcode":%d`, tc.loudCode))
			}
			// The token stays cached: errors other than 42001/40014 do not
			// spend a gettoken call.
			_, _ = w.Notify(context.Background(), testMessage(1))
			require.Equal(t, 1, strings.Count(strings.Join(ws.paths(), ","), "gettoken"))
		})
	}
}

func TestWeChatTokenErrors(t *testing.T) {
	for _, tc := range []struct {
		name    string
		status  int
		body    string
		retry   bool
		wantErr string
	}{
		{"bad secret", 200, `{"errcode":40001,"errmsg":"invalid credential"}`, false, "wechat: get access token: errcode 40001: invalid credential (check api_secret)"},
		{"bad corp", 200, `{"errcode":40013,"errmsg":"invalid corpid"}`, false, "errcode 40013: invalid corpid (check corp_id)"},
		{"untrusted ip", 200, `{"errcode":60020,"errmsg":"not allow to access from your ip"}`, false, "errcode 60020"},
		{"busy", 200, `{"errcode":-1,"errmsg":"system busy"}`, true, "errcode -1"},
		{"server error", 500, `{"access_token":"leaky"}`, true, "wechat: get access token: HTTP 500 Internal Server Error"},
		{"not found", 404, "", false, "HTTP 404 Not Found"},
		{"unreadable", 200, `{"access_token":"leaky"`, false, "wechat: get access token: unreadable reply"},
		{"no token", 200, `{"errcode":0,"errmsg":"ok"}`, false, "reply has no access_token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ws := newWeComServer(t, replyWith(tc.status, tc.body), replyWith(200, `{"errcode":0}`))
			w := newTestWeChat(t, ws, WeChatConfig{})
			retry, err := w.Notify(context.Background(), testMessage(1))
			require.Equal(t, tc.retry, retry)
			require.ErrorContains(t, err, tc.wantErr)
			require.NotContains(t, err.Error(), "leaky", "gettoken bodies are never quoted")
			require.Equal(t, []string{"GET /cgi-bin/gettoken"}, ws.paths())
		})
	}
}

func TestWeChatRobotRequest(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  WeChatRobotConfig
		want string
	}{
		{
			name: "markdown default",
			want: `{"msgtype":"markdown","markdown":{"content":%q}}`,
		},
		{
			name: "text with mentions",
			cfg:  WeChatRobotConfig{MessageType: MessageTypeText, MentionedList: []string{"wangqing", "@all"}, MentionedMobileList: []string{"13800001111"}},
			want: `{"msgtype":"text","text":{"content":%q,"mentioned_list":["wangqing","@all"],"mentioned_mobile_list":["13800001111"]}}`,
		},
		{
			name: "key file",
			cfg:  WeChatRobotConfig{KeyFile: writeFile(t, "key", testRobotKey), MessageType: MessageTypeText},
			want: `{"msgtype":"text","text":{"content":%q}}`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newRecorder(t, replyWith(200, `{"errcode":0,"errmsg":"ok"}`))
			tc.cfg.URL = srv.URL + "/cgi-bin/webhook/send?debug=1"
			if tc.cfg.KeyFile == "" {
				tc.cfg.Key = testRobotKey
			}
			w, err := NewWeChatRobot(tc.cfg, srv.Client(), nil)
			require.NoError(t, err)
			retry, err := w.Notify(context.Background(), testMessage(1))
			require.NoError(t, err)
			require.False(t, retry)

			r := srv.requests()[0]
			require.Equal(t, "POST", r.Method)
			require.Equal(t, "/cgi-bin/webhook/send", r.Path)
			require.Equal(t, map[string][]string{"key": {testRobotKey}, "debug": {"1"}}, r.Query)
			require.Equal(t, "application/json", r.Header.Get("Content-Type"))
			content, _ := fitWeCom(testMessage(1), orDefault(tc.cfg.MessageType, MessageTypeMarkdown))
			require.JSONEq(t, fmt.Sprintf(tc.want, content), string(r.Body))
		})
	}
}

func TestWeChatRobotErrors(t *testing.T) {
	for _, tc := range []struct {
		name    string
		status  int
		body    string
		retry   bool
		wantErr string
	}{
		{"rate limited", 200, `{"errcode":45009,"errmsg":"api freq out of limit"}`, true, "wechat_robot: errcode 45009"},
		{"bad key", 200, `{"errcode":93000,"errmsg":"invalid webhook url"}`, false, "errcode 93000: invalid webhook url (check the robot key)"},
		{"too long", 200, `{"errcode":40058,"errmsg":"markdown.content exceed max length 4096"}`, false, "errcode 40058"},
		{"token codes are final here", 200, `{"errcode":42001,"errmsg":"expired"}`, false, "errcode 42001"},
		{"server error", 503, "", true, "HTTP 503 Service Unavailable"},
		{"unreadable", 200, "nope", false, "wechat_robot: unreadable reply: nope"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newRecorder(t, replyWith(tc.status, tc.body))
			w, err := NewWeChatRobot(WeChatRobotConfig{URL: srv.URL, Key: testRobotKey}, srv.Client(), nil)
			require.NoError(t, err)
			retry, err := w.Notify(context.Background(), testMessage(1))
			require.Equal(t, tc.retry, retry)
			require.ErrorContains(t, err, tc.wantErr)
		})
	}
}

func TestWeChatRobotCJKLimits(t *testing.T) {
	srv := newRecorder(t, replyWith(200, `{"errcode":0}`))
	m := testMessage(50)
	for i := range m.Alerts {
		m.Alerts[i].Annotations["summary"] = strings.Repeat("磁盘繁忙", 30)
	}
	for _, tc := range []struct {
		messageType string
		limit       int
	}{{MessageTypeText, 2048}, {MessageTypeMarkdown, 4096}} {
		w, err := NewWeChatRobot(WeChatRobotConfig{URL: srv.URL, Key: testRobotKey, MessageType: tc.messageType}, srv.Client(), nil)
		require.NoError(t, err)
		_, err = w.Notify(context.Background(), m)
		require.NoError(t, err)
		reqs := srv.requests()
		var body struct {
			Text, Markdown *struct{ Content string }
		}
		require.NoError(t, json.Unmarshal(reqs[len(reqs)-1].Body, &body))
		content := body.Markdown
		if content == nil {
			content = body.Text
		}
		require.NotNil(t, content)
		require.LessOrEqual(t, len(content.Content), tc.limit)
		require.True(t, utf8.ValidString(content.Content))
		require.Contains(t, content.Content, " more")
	}
}

func TestClassifyWeComIsPure(t *testing.T) {
	r := &reply{status: 200, header: http.Header{}, body: []byte(`{"errcode":0,"errmsg":"ok","access_token":"x","expires_in":7200}`)}
	wr, retry, err := classifyWeCom(r, nil, true, true, testNow)
	require.NoError(t, err)
	require.False(t, retry)
	require.Equal(t, "x", wr.AccessToken)

	r.body = []byte(`{"errcode":"45009"}`) // a string errcode is not WeChat Work
	_, _, err = classifyWeCom(r, nil, true, true, testNow)
	require.ErrorContains(t, err, "unreadable reply")
	var we *WeComError
	require.False(t, errors.As(err, &we))
}

func TestWeChatLogsUnknownRecipients(t *testing.T) {
	ws := newWeComServer(t, nil, replyWith(200, `{"errcode":0,"errmsg":"ok","invaliduser":"bob","invalidparty":"9"}`))
	logger, logs := captureLogger()
	w, err := NewWeChat(WeChatConfig{APIURL: ws.URL + "/cgi-bin/", CorpID: "c", AgentID: "1", APISecret: testCorpSecret, ToUser: "bob|alice", ToParty: "9"}, ws.Client(), logger)
	require.NoError(t, err)
	retry, err := w.Notify(context.Background(), testMessage(1))
	require.NoError(t, err, "the others got the message")
	require.False(t, retry)
	require.Contains(t, logs.String(), `"level":"WARN"`)
	require.Contains(t, logs.String(), `"invalid_user":"bob","invalid_party":"9","invalid_tag":""`)
}
