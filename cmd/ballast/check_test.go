package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestCheckCommands: `ballast check config` and `check rules` validate
// without running anything; a problem exits 2 naming file, line and field.
func TestCheckCommands(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(text), 0o644))
		return p
	}
	goodRules := write("good.yml", "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up == 0\n      - record: job:up:sum\n        expr: sum by (job) (up)\n")
	badRules := write("bad.yml", "groups:\n  - name: g\n    rules:\n      - alert: B\n        expr: sum(\n")
	secret := write("token", "123:abc\n")
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"embedded default", []string{"check", "config"}, 0, "SUCCESS: embedded default is valid: 1 rule files (4 groups, 29 rules, 21 alerts)"},
		{"rules", []string{"check", "rules", goodRules}, 0, "SUCCESS: 1 rule files, 1 groups, 2 rules (1 alerts)"},
		{"bad rules", []string{"check", "rules", badRules}, 2, badRules + ": 5:15: group \"g\", rule 1, \"B\": could not parse expression"},
		{"config with rules and a receiver", []string{"check", "config", "--config.file", write("ok.yml",
			"rule_files: ['"+goodRules+"']\nrules:\n  notifications:\n    receivers:\n      - name: tg\n        telegram_configs: [{bot_token_file: '"+secret+"', chat_id: 1}]\n"+
				"  triggers: [{name: t, when: 'alert.status == \"firing\"', audit: a}]\n")}, 0, "2 rule files (5 groups, 31 rules, 22 alerts), 1 receivers, 1 triggers"},
		{"missing secret file", []string{"check", "config", "--config.file", write("nosecret.yml",
			"rules:\n  notifications:\n    receivers:\n      - name: tg\n        telegram_configs: [{bot_token_file: /nonexistent/token, chat_id: 1}]\n")},
			2, "rules.notifications.receivers[0] (tg): telegram_configs[0].bot_token_file: open /nonexistent/token"},
		{"bad trigger", []string{"check", "config", "--config.file", write("trigger.yml",
			"rules:\n  triggers: [{name: t, when: 'alert.status ==', audit: a}]\n")}, 2, "rules.triggers[0].when:"},
		{"bad duration", []string{"check", "config", "--config.file", write("dur.yml", "rules:\n  notifications:\n    group_wait: 5x\n")},
			2, `line 3: rules.notifications.group_wait: "5x" is not a duration`},
		{"bad rule file in config", []string{"check", "config", "--config.file", write("badref.yml", "rule_files: ['"+badRules+"']\n")},
			2, badRules + ": 5:15"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := exec.Command(binary, tc.args...).CombinedOutput()
			code := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			} else {
				require.NoError(t, err)
			}
			require.Equal(t, tc.code, code, "%s", out)
			require.Contains(t, string(out), tc.want)
		})
	}
}
