package nova_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"go.yaml.in/yaml/v3"

	"github.com/ballast-cloud/ballast/actuators/nova"
	"github.com/ballast-cloud/ballast/actuators/nova/novatest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const token = "gAAAAABn-s3cr3t-t0ken"

func TestConfigValidation(t *testing.T) {
	tests := []struct {
		cfg  nova.Config
		want string
	}{
		{nova.Config{URL: "ftp://x", Token: "t"}, `nova.url: "ftp://x" is not an http(s) URL`},
		{nova.Config{URL: "", Token: "t"}, `nova.url: "" is not an http(s) URL`},
		{nova.Config{URL: "http://u:p@x/v2.1", Token: "t"}, "nova.url: must not carry credentials"},
		{nova.Config{URL: "http://x/v2.1"}, "nova.token: set token or token_file"},
		{nova.Config{URL: "http://x/v2.1", Token: "t", TokenFile: "f"}, "nova.token: set token or token_file, not both"},
		{nova.Config{URL: "http://x/v2.1", Token: "t", Microversion: "2.1"}, "nova.microversion: 2.1 is below 2.53"},
		{nova.Config{URL: "http://x/v2.1", Token: "t", Microversion: "latest"}, `nova.microversion: "latest" is not 2.N`},
		{nova.Config{URL: "http://x/v2.1", TokenFile: "/nonexistent/token"}, "nova.token_file: open /nonexistent/token"},
	}
	for _, tt := range tests {
		_, err := nova.New(tt.cfg, nil, nil)
		require.ErrorContains(t, err, tt.want)
	}
	empty := filepath.Join(t.TempDir(), "token")
	require.NoError(t, os.WriteFile(empty, []byte("\n"), 0o600))
	_, err := nova.New(nova.Config{URL: "http://x/v2.1", TokenFile: empty}, nil, nil)
	require.ErrorContains(t, err, "is empty")
}

func TestServices(t *testing.T) {
	srv := novatest.New(t, token, "compute-1", "compute-2")
	file := filepath.Join(t.TempDir(), "token")
	require.NoError(t, os.WriteFile(file, []byte(token+"\n"), 0o600))
	c, err := nova.New(nova.Config{URL: srv.URL(), TokenFile: file}, srv.Client(), nil)
	require.NoError(t, err)
	ctx := context.Background()

	on, err := c.ServiceEnabled(ctx, "compute-1")
	require.NoError(t, err)
	require.True(t, on)
	require.NoError(t, c.SetServiceEnabled(ctx, "compute-1", false, "ballast maintenance"))
	status, reason := srv.Status("compute-1")
	require.Equal(t, "disabled", status)
	require.Equal(t, "ballast maintenance", reason)
	on, err = c.ServiceEnabled(ctx, "compute-1")
	require.NoError(t, err)
	require.False(t, on)
	require.NoError(t, c.SetServiceEnabled(ctx, "compute-1", true, ""))
	status, _ = srv.Status("compute-1")
	require.Equal(t, "enabled", status)

	_, err = c.ServiceEnabled(ctx, "compute-9")
	require.ErrorIs(t, err, nova.ErrNoService)
}

func TestRetries(t *testing.T) {
	srv := novatest.New(t, token, "compute-1")
	c, err := nova.New(nova.Config{URL: srv.URL(), Token: token}, srv.Client(), nil)
	require.NoError(t, err)
	ctx := context.Background()

	// 503 and 429 are retried (Retry-After honoured), 400 is not.
	srv.Fail(novatest.Failure{Status: 503, RetryAfter: "0"}, novatest.Failure{Status: 429, RetryAfter: "0"})
	require.NoError(t, c.SetServiceEnabled(ctx, "compute-1", false, ""))
	require.Len(t, srv.Requests(), 4, "two refusals, then GET and PUT")

	srv.Fail(novatest.Failure{Status: 400, Body: `{"badRequest": {"code": 400, "message": "Invalid host"}}`})
	_, err = c.ServiceEnabled(ctx, "compute-1")
	var apiErr *nova.APIError
	require.ErrorAs(t, err, &apiErr)
	require.Equal(t, 400, apiErr.Status)
	require.Equal(t, "nova GET /os-services?binary=nova-compute&host=compute-1: 400 Invalid host", err.Error())
	require.Len(t, srv.Requests(), 5)

	wrong, err := nova.New(nova.Config{URL: srv.URL(), Token: "not-the-token"}, srv.Client(), nil)
	require.NoError(t, err)
	_, err = wrong.ServiceEnabled(ctx, "compute-1")
	require.ErrorContains(t, err, "401 The request you have made requires authentication.")
}

// The token never appears in a log line, an error, or a dump of the
// configuration, even when Nova echoes it back.
func TestTokenNeverLeaks(t *testing.T) {
	srv := novatest.New(t, token, "compute-1")
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg := nova.Config{URL: srv.URL(), Token: token}
	c, err := nova.New(cfg, srv.Client(), logger)
	require.NoError(t, err)
	ctx := context.Background()
	require.NoError(t, c.SetServiceEnabled(ctx, "compute-1", false, "x"))
	srv.Fail(novatest.Failure{Status: 403, Body: fmt.Sprintf(`{"forbidden": {"message": "token %s may not do this"}}`, token)},
		novatest.Failure{Status: 500, RetryAfter: "0", Body: "X-Auth-Token: " + token}, novatest.Failure{Status: 500, RetryAfter: "0", Body: token},
		novatest.Failure{Status: 500, RetryAfter: "0", Body: token}, novatest.Failure{Status: 500, RetryAfter: "0", Body: token})
	_, err403 := c.ServiceEnabled(ctx, "compute-1")
	require.ErrorContains(t, err403, "403 token <secret> may not do this")
	_, err500 := c.ServiceEnabled(ctx, "compute-1")
	require.Error(t, err500)
	logger.Info("Config", "nova", cfg, "token", cfg.Token)

	yml, err := yaml.Marshal(cfg)
	require.NoError(t, err)
	js, err := json.Marshal(cfg)
	require.NoError(t, err)
	dumps := []string{logs.String(), err403.Error(), err500.Error(), fmt.Sprintf("%v %+v %#v %s", cfg, cfg, cfg, cfg.Token), string(yml), string(js)}
	for _, d := range dumps {
		require.NotContains(t, d, token)
		require.NotContains(t, d, "s3cr3t")
	}
	require.Contains(t, logs.String(), "Set nova-compute service")
	require.Contains(t, string(yml), "<secret>")
}
