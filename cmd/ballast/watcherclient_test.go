package main

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ballast-cloud/ballast/deploy/testenv"
)

// TestWatcherClientAgainstServer runs Debian's python-watcherclient against
// `ballast server` on its embedded default (simulated cluster, the admin
// token written on first start): list goals, run an audit, start its plan.
func TestWatcherClientAgainstServer(t *testing.T) {
	cli := testenv.RequireBinary(t, "watcher")
	dir := t.TempDir()
	p := startServer(t, dir)
	raw, err := os.ReadFile(filepath.Join(dir, "tokens.yml"))
	require.NoError(t, err)
	m := regexp.MustCompile(`token: "(blst_[^"]+)"`).FindSubmatch(raw)
	require.NotNil(t, m, "the first start writes an admin token")
	token := string(m[1])
	require.NotContains(t, p.logs.String(), token, "the token is never logged")

	watcher := func(args ...string) []map[string]any {
		t.Helper()
		cmd := exec.Command(cli, append([]string{"--os-endpoint-override", p.url, "--os-auth-token", token}, append(args, "-f", "json")...)...)
		cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + dir} // Debian's python, not a pyenv shim
		out, err := cmd.Output()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("watcher %v: %v\n%s%s", args, err, out, ee.Stderr)
		}
		require.NoError(t, err)
		var rows []map[string]any
		if strings.HasPrefix(strings.TrimSpace(string(out)), "{") {
			var one map[string]any
			require.NoError(t, json.Unmarshal(out, &one), "%s", out)
			return []map[string]any{one}
		}
		require.NoError(t, json.Unmarshal(out, &rows), "%s", out)
		return rows
	}
	goals := watcher("goal", "list")
	var names []string
	for _, g := range goals {
		names = append(names, g["Name"].(string))
	}
	require.Contains(t, names, "server_consolidation")
	require.Contains(t, names, "workload_balancing")

	audit := watcher("audit", "create", "-g", "server_consolidation", "-s", "vm_workload_consolidation")[0]
	require.Equal(t, "ONESHOT", audit["Audit Type"])
	var plan map[string]any
	require.Eventually(t, func() bool {
		plans := watcher("actionplan", "list", "--audit", audit["UUID"].(string))
		if len(plans) == 0 {
			return false
		}
		plan = plans[0]
		return plan["State"] == "RECOMMENDED"
	}, 60*time.Second, time.Second)
	started := watcher("actionplan", "start", plan["UUID"].(string))[0]
	require.Contains(t, []any{"PENDING", "ONGOING"}, started["State"])
	actions := watcher("action", "list", "--action-plan", plan["UUID"].(string))
	require.NotEmpty(t, actions)
}

// clientSafePort returns a free address whose port does not end in '1' or
// 'v': python-watcherclient strips the endpoint with rstrip('/v1').
func clientSafePort(t testing.TB) string {
	for {
		a := freePort(t)
		if !strings.HasSuffix(a, "1") {
			return a
		}
	}
}
