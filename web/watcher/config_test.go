package watcher

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

func TestConfig(t *testing.T) {
	var c Config
	require.NoError(t, yaml.Unmarshal([]byte(`
listen_address: ":9322"
external_url: "https://optim.example.com/infra-optim/"
tokens_file: /etc/ballast/tokens.yml
max_limit: 500
login_window: 30m
database: {path: /var/lib/ballast/watcher.db}
audits:
  continuous_audit_interval: 5s
  action_plan_expiry: 12h
  check_periodic_interval: 10m
`), &c))
	c, err := c.WithDefaults()
	require.NoError(t, err)
	require.Equal(t, "https://optim.example.com/infra-optim", c.ExternalURL)
	require.Equal(t, 500, c.MaxLimit)
	require.Equal(t, 30*time.Minute, c.LoginWindow)
	require.Equal(t, "/var/lib/ballast/watcher.db", c.Database.Path)
	require.Equal(t, 5*time.Second, c.Audits.PollInterval)
	require.Equal(t, 12*time.Hour, c.Audits.ActionPlanExpiry)
	require.True(t, *c.EnableWebhooksAuth)
	require.Equal(t, "tokens", c.AuthStrategy)

	for cfg, field := range map[string]string{
		"auth_strategy: keystone\ntokens_file: x":  "watcher.auth_strategy",
		"tokens_file: x\nexternal_url: ftp://x":    "watcher.external_url",
		"tokens_file: x\nlisten_address: nonsense": "watcher.listen_address",
		"tokens_file: x\nmax_limit: -1":            "watcher.max_limit",
		"max_limit: 10":                            "watcher.tokens_file",
		"tokens_file: x\naudits: {workers: -2}":    "watcher.audits: workers",
		"tokens_file: x\nlogin_window: -1s":        "watcher.login_window",
	} {
		var c Config
		require.NoError(t, yaml.Unmarshal([]byte(cfg), &c))
		_, err := c.WithDefaults()
		require.ErrorContains(t, err, field, cfg)
	}
	c = Config{AuthStrategy: "noauth"}
	_, err = c.WithDefaults()
	require.NoError(t, err, "noauth needs no tokens file")
}
