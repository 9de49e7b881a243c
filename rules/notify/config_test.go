package notify

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

const exampleReceiver = `
name: ops
webhook_configs:
  - url: https://hooks.example.com/alerts
    max_alerts: 20
    bearer_token: webhook-bearer-secret
telegram_configs:
  - bot_token: "123456:telegram-bot-secret"
    chat_id: -1001234567890
    message_thread_id: 42
    parse_mode: HTML
    send_resolved: false
wechat_configs:
  - corp_id: ww0123456789
    agent_id: 1000002
    api_secret: wechat-app-secret
    to_party: "2|3"
    message_type: markdown
wechat_robot_configs:
  - key: wechat-robot-secret
    message_type: text
    mentioned_list: ["wangqing", "@all"]
    mentioned_mobile_list: ["13800001111"]
sms_configs:
  - provider: twilio
    to: ["+15551234567"]
    account_sid: AC0123
    auth_token: twilio-token-secret
    from: "+15550006666"
  - provider: aliyun
    to: ["+8613800001111"]
    access_key_id: LTAI-test
    access_key_secret: aliyun-key-secret
    sign_name: 巴拉斯特
    template_code: SMS_123456
    template_params: [severity, alertname, target]
  - provider: tencent
    to: ["+8613800001111"]
    secret_id: AKIDtest
    secret_key: tencent-key-secret
    sdk_app_id: "1400006666"
    sign_name: 巴拉斯特
    template_id: "1110"
    region: ap-beijing
    param_max_runes: 12
    send_resolved: true
`

var exampleSecrets = []string{
	"webhook-bearer-secret", "telegram-bot-secret", "wechat-app-secret", "wechat-robot-secret",
	"twilio-token-secret", "aliyun-key-secret", "tencent-key-secret",
}

func decodeReceiver(t *testing.T, s string) ReceiverConfig {
	t.Helper()
	var cfg ReceiverConfig
	dec := yaml.NewDecoder(strings.NewReader(s))
	dec.KnownFields(true)
	require.NoError(t, dec.Decode(&cfg))
	return cfg
}

func TestReceiverConfigYAML(t *testing.T) {
	cfg := decodeReceiver(t, exampleReceiver)
	require.NoError(t, cfg.Validate())
	require.Equal(t, ReceiverConfig{
		Name: "ops",
		Webhooks: []WebhookConfig{{
			URL: "https://hooks.example.com/alerts", MaxAlerts: 20, BearerToken: "webhook-bearer-secret",
		}},
		Telegrams: []TelegramConfig{{
			BotToken: "123456:telegram-bot-secret", ChatID: -1001234567890, MessageThreadID: 42,
			ParseMode: "HTML", SendResolved: ptr(false),
		}},
		WeChats: []WeChatConfig{{
			CorpID: "ww0123456789", AgentID: "1000002", APISecret: "wechat-app-secret", ToParty: "2|3", MessageType: "markdown",
		}},
		WeChatRobots: []WeChatRobotConfig{{
			Key: "wechat-robot-secret", MessageType: "text",
			MentionedList: []string{"wangqing", "@all"}, MentionedMobileList: []string{"13800001111"},
		}},
		SMS: []SMSConfig{
			{Provider: "twilio", To: []string{"+15551234567"}, AccountSID: "AC0123", AuthToken: "twilio-token-secret", From: "+15550006666"},
			{Provider: "aliyun", To: []string{"+8613800001111"}, AccessKeyID: "LTAI-test", AccessKeySecret: "aliyun-key-secret",
				SignName: "巴拉斯特", TemplateCode: "SMS_123456", TemplateParams: []string{"severity", "alertname", "target"}},
			{Provider: "tencent", To: []string{"+8613800001111"}, SecretID: "AKIDtest", SecretKey: "tencent-key-secret",
				SDKAppID: "1400006666", SignName: "巴拉斯特", TemplateID: "1110", Region: "ap-beijing", ParamMaxRunes: 12, SendResolved: ptr(true)},
		},
	}, cfg)

	// A dump of the configuration shows no secret.
	out, err := yaml.Marshal(cfg)
	require.NoError(t, err)
	for _, s := range exampleSecrets {
		require.NotContains(t, string(out), s)
	}
	require.Contains(t, string(out), "bot_token: <secret>")
}

func TestValidateNamesTheField(t *testing.T) {
	for _, tc := range []struct {
		name string
		yaml string
		want []string
	}{
		{"no name", `webhook_configs: [{url: "https://x"}]`, []string{"name: required"}},
		{"empty receiver", `name: blackhole`, nil},
		{"webhook", `
name: r
webhook_configs:
  - {}
  - {url: "ftp://x", url_file: /f}
  - {url: "notaurl", max_alerts: -1, bearer_token: a, bearer_token_file: b}
  - {url: "https://x", bearer_token: a, basic_auth: {password: p, password_file: f}}`, []string{
			"webhook_configs[0].url: required (or url_file)",
			"webhook_configs[1].url: set url or url_file, not both",
			"webhook_configs[2].url: must be an absolute http:// or https:// URL",
			"webhook_configs[2].max_alerts: must be 0 (all) or more, got -1",
			"webhook_configs[2].bearer_token: set bearer_token or bearer_token_file, not both",
			"webhook_configs[3].basic_auth: set basic_auth or bearer_token, not both",
			"webhook_configs[3].basic_auth.username: required",
			"webhook_configs[3].basic_auth.password: set basic_auth.password or basic_auth.password_file, not both",
		}},
		{"telegram", `
name: r
telegram_configs:
  - {parse_mode: Markdown, message_thread_id: -1, api_url: "api.telegram.org"}
  - {bot_token: a, bot_token_file: b, chat_id: 1}`, []string{
			"telegram_configs[0].chat_id: required",
			"telegram_configs[0].bot_token: required (or bot_token_file)",
			`telegram_configs[0].parse_mode: "Markdown" is not one of HTML, MarkdownV2`,
			"telegram_configs[0].message_thread_id: must be 0 (none) or more, got -1",
			"telegram_configs[0].api_url: must be an absolute http:// or https:// URL",
			"telegram_configs[1].bot_token: set bot_token or bot_token_file, not both",
		}},
		{"wechat", `
name: r
wechat_configs:
  - {agent_id: abc, message_type: news}`, []string{
			"wechat_configs[0].corp_id: required",
			`wechat_configs[0].agent_id: "abc" is not a number`,
			"wechat_configs[0].api_secret: required (or api_secret_file)",
			"wechat_configs[0].to_user: one of to_user, to_party, to_tag is required",
			`wechat_configs[0].message_type: "news" is not one of text, markdown`,
		}},
		{"wechat robot", `
name: r
wechat_robot_configs:
  - {mentioned_list: [a], mentioned_mobile_list: ["1"]}
  - {key: k, message_type: text, mentioned_list: [""]}`, []string{
			"wechat_robot_configs[0].key: required (or key_file)",
			"wechat_robot_configs[0].mentioned_list: needs message_type text",
			"wechat_robot_configs[0].mentioned_mobile_list: needs message_type text",
			"wechat_robot_configs[1].mentioned_list[0]: empty",
		}},
		{"sms", `
name: r
sms_configs:
  - {}
  - {provider: twilio, to: ["13800001111", "+15551234567", "+15551234567"]}
  - {provider: aliyun, to: ["+8613800001111"], template_params: [host]}
  - {provider: tencent, to: ["+8613800001111"], param_max_runes: -1}
  - {provider: pigeon, to: ["+8613800001111"]}`, []string{
			"sms_configs[0].provider: required (twilio, aliyun or tencent)",
			"sms_configs[0].to: required: at least one E.164 number",
			"sms_configs[1].account_sid: required",
			"sms_configs[1].auth_token: required (or auth_token_file)",
			"sms_configs[1].from: set exactly one of from and messaging_service_sid",
			`sms_configs[1].to[0]: "13800001111" is not an E.164 number like +8613800001111`,
			"sms_configs[1].to[2]: +15551234567 is listed twice",
			"sms_configs[2].access_key_id: required",
			"sms_configs[2].access_key_secret: required (or access_key_secret_file)",
			"sms_configs[2].sign_name: required",
			"sms_configs[2].template_code: required",
			`sms_configs[2].template_params[0]: "host" is not one of status, severity, alertname, target, summary, count`,
			"sms_configs[3].secret_id: required",
			"sms_configs[3].secret_key: required (or secret_key_file)",
			"sms_configs[3].sdk_app_id: required",
			"sms_configs[3].sign_name: required",
			"sms_configs[3].template_id: required",
			"sms_configs[3].param_max_runes: must be 0 (default) or more, got -1",
			`sms_configs[4].provider: "pigeon" is not one of twilio, aliyun, tencent`,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := decodeReceiver(t, tc.yaml)
			err := cfg.Validate()
			if tc.want == nil {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			for _, w := range tc.want {
				require.ErrorContains(t, err, w)
			}
			require.Len(t, strings.Split(err.Error(), "\n"), len(tc.want), err.Error())
		})
	}
}

func TestTypeValidateIsRelative(t *testing.T) {
	require.EqualError(t, (&TelegramConfig{BotToken: "t"}).Validate(), "chat_id: required")
	require.NoError(t, (&TelegramConfig{BotToken: "t", ChatID: 1}).Validate())
	require.NoError(t, (&WebhookConfig{URL: "http://x"}).Validate())
	require.NoError(t, (&WeChatRobotConfig{Key: "k"}).Validate())
	require.ErrorContains(t, (&WeChatConfig{}).Validate(), "corp_id: required")
	require.ErrorContains(t, (&SMSConfig{Provider: ProviderAliyun, To: make([]string, 1001)}).Validate(), "to: aliyun takes at most 1000 numbers, got 1001")
}

func TestBuild(t *testing.T) {
	cfg := decodeReceiver(t, exampleReceiver)
	ints, err := Build(cfg, nil, nil)
	require.NoError(t, err)
	type row struct {
		Name         string
		Index        int
		SendResolved bool
	}
	var got []row
	for _, i := range ints {
		got = append(got, row{i.Name, i.Index, i.SendResolved})
	}
	require.Equal(t, []row{
		{"webhook", 0, true},
		{"telegram", 0, false}, // overridden
		{"wechat", 0, false},
		{"wechat_robot", 0, false},
		{"sms", 0, false},
		{"sms", 1, false},
		{"sms", 2, true}, // overridden
	}, got)
	require.IsType(t, &Webhook{}, ints[0].Notifier)
	require.IsType(t, &Telegram{}, ints[1].Notifier)
	require.IsType(t, &WeChat{}, ints[2].Notifier)
	require.IsType(t, &WeChatRobot{}, ints[3].Notifier)
	require.IsType(t, &Twilio{}, ints[4].Notifier)
	require.IsType(t, &AliyunSMS{}, ints[5].Notifier)
	require.IsType(t, &TencentSMS{}, ints[6].Notifier)

	// Defaults are filled in by the constructors.
	tg := ints[1].Notifier.(*Telegram)
	require.Equal(t, "https://api.telegram.org/bot123456:telegram-bot-secret/sendMessage", tg.endpoint)
	require.Equal(t, ParseModeHTML, tg.parseMode)
	wc := ints[2].Notifier.(*WeChat)
	require.Equal(t, "https://qyapi.weixin.qq.com/cgi-bin/gettoken", wc.tokenURL)
	require.Equal(t, "https://qyapi.weixin.qq.com/cgi-bin/message/send", wc.sendURL)
	robot := ints[3].Notifier.(*WeChatRobot)
	require.Equal(t, "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=wechat-robot-secret", robot.endpoint)
	al := ints[5].Notifier.(*AliyunSMS)
	require.Equal(t, DefaultAliyunRegion, al.region)
	require.Equal(t, DefaultParamMaxRunes, al.maxRunes)
	tc := ints[6].Notifier.(*TencentSMS)
	require.Equal(t, "ap-beijing", tc.region)
	require.Equal(t, DefaultTemplateParams, tc.params)

	// Printing a notifier shows no secret either.
	for _, i := range ints {
		for _, verb := range []string{"%v", "%s"} {
			out := strings.TrimSpace(sprintf(verb, i.Notifier))
			for _, s := range exampleSecrets {
				require.NotContains(t, out, s)
			}
		}
	}

	// The defaults of send_resolved without overrides.
	ints, err = Build(ReceiverConfig{
		Name:         "defaults",
		Telegrams:    []TelegramConfig{{BotToken: "t", ChatID: 1}},
		WeChatRobots: []WeChatRobotConfig{{Key: "k"}},
	}, nil, nil)
	require.NoError(t, err)
	require.True(t, ints[0].SendResolved)
	require.False(t, ints[1].SendResolved)
}

func TestBuildReadsSecretFiles(t *testing.T) {
	cfg := ReceiverConfig{
		Name:         "files",
		Telegrams:    []TelegramConfig{{BotTokenFile: writeFile(t, "bot", "42:from-file\n"), ChatID: 1}},
		WeChats:      []WeChatConfig{{CorpID: "c", AgentID: "1", APISecretFile: writeFile(t, "wx", " wx-file \n"), ToUser: "u"}},
		WeChatRobots: []WeChatRobotConfig{{KeyFile: writeFile(t, "key", "robot-file")}},
		SMS: []SMSConfig{{Provider: ProviderTencent, SecretID: "i", SecretKeyFile: writeFile(t, "tc", "tc-file"), SDKAppID: "1",
			SignName: "s", TemplateID: "1", To: []string{"+8613800001111"}}},
	}
	ints, err := Build(cfg, nil, nil)
	require.NoError(t, err)
	require.Contains(t, ints[0].Notifier.(*Telegram).endpoint, "/bot42:from-file/")
	require.Equal(t, "wx-file", ints[1].Notifier.(*WeChat).secret)
	require.Equal(t, "robot-file", ints[2].Notifier.(*WeChatRobot).key)
	require.Equal(t, "tc-file", ints[3].Notifier.(*TencentSMS).secretKey)
}

func TestBuildErrors(t *testing.T) {
	_, err := Build(ReceiverConfig{Name: "ops", Telegrams: []TelegramConfig{{BotToken: "t"}}}, nil, nil)
	require.EqualError(t, err, "telegram_configs[0].chat_id: required")

	ints, err := Build(ReceiverConfig{
		Name:      "ops",
		Webhooks:  []WebhookConfig{{URL: "https://x"}},
		Telegrams: []TelegramConfig{{BotToken: "t", ChatID: 1}, {BotTokenFile: "/nonexistent/token", ChatID: 1}},
		SMS: []SMSConfig{{Provider: ProviderTwilio, AccountSID: "AC1", AuthTokenFile: writeFile(t, "empty", "\n"),
			From: "+15550006666", To: []string{"+15550000001"}}},
	}, nil, nil)
	require.Nil(t, ints)
	require.ErrorContains(t, err, "telegram_configs[1].bot_token_file: open /nonexistent/token: no such file or directory")
	require.ErrorContains(t, err, "sms_configs[0].auth_token_file: ")
	require.ErrorContains(t, err, "is empty")
}
