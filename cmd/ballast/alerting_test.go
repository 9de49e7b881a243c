package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/ballast-cloud/ballast/collector/bus"
	"github.com/ballast-cloud/ballast/deploy/testenv"
)

// recorder is an HTTP endpoint that keeps the bodies it is sent.
type recorder struct {
	*httptest.Server
	mu     sync.Mutex
	bodies []string
}

func newRecorder(t *testing.T, reply string) *recorder {
	r := &recorder{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.bodies = append(r.bodies, req.URL.Path+" "+string(b))
		r.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, reply)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *recorder) contains(s string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, b := range r.bodies {
		if strings.Contains(b, s) {
			return true
		}
	}
	return false
}

// TestAlerting runs the whole alerting path against real peers: a rule
// fires on remote-written data; Debian's Alertmanager receives it (and
// routes it on to its own webhook); Ballast's own Telegram receiver sends
// it to a Bot API endpoint; a trigger runs a Watcher EVENT audit created
// through /v1; the Prometheus API lists rules, alerts and Alertmanagers;
// the runbook link resolves; and the bot token never reaches the logs.
func TestAlerting(t *testing.T) {
	amBin := testenv.RequireBinary(t, "prometheus-alertmanager")
	dir := t.TempDir()

	// Alertmanager, with a webhook receiver of its own.
	amHook := newRecorder(t, "{}")
	amAddr := freePort(t)
	amCfg := filepath.Join(dir, "alertmanager.yml")
	require.NoError(t, os.WriteFile(amCfg, []byte(fmt.Sprintf(`
route: {receiver: hook, group_wait: 1s, group_interval: 1s, repeat_interval: 1h}
receivers:
  - name: hook
    webhook_configs: [{url: '%s/am'}]
`, amHook.URL)), 0o644))
	am := exec.Command(amBin, "--config.file", amCfg, "--storage.path", filepath.Join(dir, "am"),
		"--web.listen-address", amAddr, "--cluster.listen-address=", "--log.level", "warn")
	amLogs := &syncBuffer{}
	am.Stdout, am.Stderr = amLogs, amLogs
	require.NoError(t, am.Start())
	t.Cleanup(func() {
		_ = am.Process.Kill()
		_ = am.Wait()
		if t.Failed() {
			t.Logf("alertmanager logs:\n%s", amLogs.String())
		}
	})

	require.Eventually(t, func() bool {
		resp, err := http.Get("http://" + amAddr + "/-/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 60*time.Second, 100*time.Millisecond, "Alertmanager is ready")

	const token = "123456:SECRET-bot-token-XYZ"
	telegram := newRecorder(t, `{"ok":true,"result":{"message_id":1}}`)
	rulesFile := filepath.Join(dir, "e2e.rules.yml")
	require.NoError(t, os.WriteFile(rulesFile, []byte(`
groups:
  - name: e2e
    interval: 1s
    rules:
      - alert: TestOverload
        expr: test_load > 90
        labels: {severity: critical}
        annotations:
          summary: '{{ $labels.host }} is overloaded'
`), 0o644))
	cfg := filepath.Join(dir, "ballast.yml")
	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf(`
simulator: {enabled: true}
watcher: {auth_strategy: noauth}
global: {evaluation_interval: 1s}
rule_files: ['%s']
alerting:
  alertmanagers:
    - static_configs: [{targets: ['%s']}]
rules:
  runbook_url: 'https://wiki.example/runbooks/%%s'
  resend_delay: 2s   # a batch Alertmanager missed is sent again soon (Prometheus's notifier does not retry)
  notifications:
    group_wait: 1s
    group_interval: 2s
    routes:
      - receiver: chat
        matchers: ['severity="critical"']
    receivers:
      - name: chat
        telegram_configs:
          - api_url: '%s'
            bot_token: '%s'
            chat_id: -100123
  triggers:
    - name: rebalance
      when: 'alert.status == "firing" && alert.labels.alertname == "TestOverload"'
      audit: overload-audit
`, rulesFile, amAddr, telegram.URL, token)), 0o644))
	p := startServer(t, filepath.Join(dir, "data"), "--config.file", cfg)

	au := callV1(t, p.url, http.MethodPost, "/v1/audits", map[string]any{"audit_type": "EVENT", "goal": "dummy", "name": "overload-audit"})
	require.Equal(t, "PENDING", au["state"])

	now := time.Now()
	b := &bus.SampleBatch{Series: []bus.Series{{Labels: labels.FromStrings("__name__", "test_load", "host", "cn-7"),
		Samples: []bus.Sample{{T: now.UnixMilli(), V: 99}}}}}
	require.Equal(t, http.StatusNoContent, p.write(t, b))

	amAPI := "http://" + amAddr + "/api/v2/alerts?filter=alertname%3D%22TestOverload%22"
	type amAlert struct {
		Labels      map[string]string `json:"labels"`
		Annotations map[string]string `json:"annotations"`
	}
	var alerts []amAlert
	require.Eventually(t, func() bool {
		resp, err := http.Get(amAPI)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var got []amAlert
		if json.NewDecoder(resp.Body).Decode(&got) != nil || len(got) == 0 {
			return false
		}
		alerts = got
		return true
	}, 60*time.Second, 200*time.Millisecond, "the alert reaches Alertmanager")
	require.Equal(t, "cn-7 is overloaded", alerts[0].Annotations["summary"])
	require.Equal(t, "https://wiki.example/runbooks/TestOverload", alerts[0].Annotations["runbook_url"])
	require.Eventually(t, func() bool { return amHook.contains("TestOverload") }, 30*time.Second, 100*time.Millisecond,
		"Alertmanager routes it on")
	require.Eventually(t, func() bool { return telegram.contains("TestOverload") && telegram.contains("cn-7") },
		30*time.Second, 100*time.Millisecond, "Ballast's Telegram receiver sends it")
	require.True(t, telegram.contains("/bot"+token+"/sendMessage"), "the Bot API path carries the token")

	// The trigger ran the EVENT audit.
	require.Eventually(t, func() bool {
		a := callV1(t, p.url, http.MethodGet, "/v1/audits/overload-audit", nil)
		return a["state"] == "SUCCEEDED"
	}, 60*time.Second, 200*time.Millisecond, "the trigger runs the EVENT audit")
	plans := callV1(t, p.url, http.MethodGet, "/v1/action_plans?audit_uuid="+au["uuid"].(string), nil)["action_plans"].([]any)
	require.Len(t, plans, 1)

	// The Prometheus API: rules (the file's and the built-in ones), the
	// firing alert, the Alertmanager.
	rulesBody := p.get(t, "/api/v1/rules")
	require.Contains(t, rulesBody, `"file":"`+rulesFile+`"`)
	require.Contains(t, rulesBody, `"file":"builtin:ballast.rules.yml"`)
	require.Contains(t, p.get(t, "/api/v1/alerts"), `"alertname":"TestOverload"`)
	require.Contains(t, p.get(t, "/api/v1/alertmanagers"), amAddr+"/api/v2/alerts")
	require.Contains(t, p.get(t, "/runbooks/"), "Runbooks")
	require.Equal(t, 1.0, p.metricValue(t, `ballast_trigger_runs_total{result="started",trigger="rebalance"}`))

	// A rule file broken on reload: the reload fails naming the file and
	// line, and the rules in force stay.
	require.NoError(t, os.WriteFile(rulesFile, []byte("groups:\n  - name: e2e\n    rules:\n      - alert: Broken\n        expr: 'sum('\n"), 0o644))
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGHUP))
	require.Eventually(t, func() bool { return p.metricValue(t, "ballast_config_last_reload_successful") == 0 },
		30*time.Second, 100*time.Millisecond, "the reload fails")
	require.Contains(t, p.logs.String(), rulesFile+": 5:15: group")
	require.Contains(t, p.get(t, "/api/v1/rules"), `"name":"TestOverload"`)

	require.NotContains(t, p.logs.String(), "SECRET-bot-token", "the bot token is not logged")
}
