package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/promql/parser"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/ballast-cloud/ballast/deploy/testenv"
)

const deployDir = "../../deploy"

// TestDeployConfigs keeps deploy/ true: every shipped server configuration
// loads, every dashboard query parses, and every command line in the
// systemd units, Kubernetes manifests and compose file uses flags the binary
// has.
func TestDeployConfigs(t *testing.T) {
	for _, f := range []string{"ballast.yml", "compose/ballast.yml"} {
		cfg, err := loadConfig(filepath.Join(deployDir, f), "localhost:9322", nil)
		require.NoError(t, err, f)
		require.NoError(t, cfg.validate(), f)
	}

	// The compose Alertmanager's configuration, checked by Debian's amtool.
	amtool := testenv.RequireBinary(t, "amtool")
	out, err := exec.Command(amtool, "check-config", filepath.Join(deployDir, "compose/alertmanager.yml")).CombinedOutput()
	require.NoError(t, err, "%s", out)

	// The ConfigMap's embedded configuration.
	raw, err := os.ReadFile(filepath.Join(deployDir, "kubernetes/ballast.yaml"))
	require.NoError(t, err)
	dec := yaml.NewDecoder(strings.NewReader(string(raw)))
	var commands [][]string
	for {
		var doc map[string]any
		if err := dec.Decode(&doc); err != nil {
			break
		}
		if doc["kind"] == "ConfigMap" {
			cfg := doc["data"].(map[string]any)["ballast.yml"].(string)
			c, err := parseConfig([]byte(cfg), ".", nil)
			require.NoError(t, err, "ConfigMap ballast.yml")
			require.NoError(t, c.validate(), "ConfigMap ballast.yml")
		}
		commands = append(commands, containerArgs(doc)...)
	}

	var compose struct {
		Services map[string]struct {
			Command []string `yaml:"command"`
		} `yaml:"services"`
	}
	raw, err = os.ReadFile(filepath.Join(deployDir, "compose/docker-compose.yml"))
	require.NoError(t, err)
	require.NoError(t, yaml.Unmarshal(raw, &compose))
	for name, s := range compose.Services {
		if strings.HasPrefix(name, "ballast") || name == "ingester" {
			commands = append(commands, s.Command)
		}
	}

	units, _ := filepath.Glob(filepath.Join(deployDir, "systemd/*.service"))
	require.NotEmpty(t, units)
	for _, u := range units {
		raw, err := os.ReadFile(u)
		require.NoError(t, err)
		exec := regexp.MustCompile(`(?s)ExecStart=(.*?[^\\])\n`).FindStringSubmatch(string(raw))
		require.NotNil(t, exec, u)
		fields := strings.Fields(strings.ReplaceAll(exec[1], "\\\n", " "))
		commands = append(commands, fields[1:])
	}
	require.Greater(t, len(commands), 4)
	for _, args := range commands {
		requireKnownFlags(t, args)
	}

	dashboards, _ := filepath.Glob(filepath.Join(deployDir, "grafana/dashboards/*.json"))
	require.NotEmpty(t, dashboards)
	p := parser.NewParser(parser.Options{})
	vars := strings.NewReplacer("$__rate_interval", "1m", "$__interval", "1m", "$job", "ballast", "${datasource}", "x")
	for _, d := range dashboards {
		raw, err := os.ReadFile(d)
		require.NoError(t, err)
		var dash struct {
			Panels []struct {
				Title   string `json:"title"`
				Targets []struct {
					Expr string `json:"expr"`
				} `json:"targets"`
			} `json:"panels"`
		}
		require.NoError(t, json.Unmarshal(raw, &dash), d)
		require.NotEmpty(t, dash.Panels, d)
		for _, panel := range dash.Panels {
			for _, target := range panel.Targets {
				_, err := p.ParseExpr(vars.Replace(target.Expr))
				require.NoError(t, err, "%s / %s: %s", d, panel.Title, target.Expr)
			}
		}
	}
}

func containerArgs(doc map[string]any) [][]string {
	spec, _ := doc["spec"].(map[string]any)
	tmpl, _ := spec["template"].(map[string]any)
	pod, _ := tmpl["spec"].(map[string]any)
	containers, _ := pod["containers"].([]any)
	var out [][]string
	for _, c := range containers {
		var args []string
		for _, a := range c.(map[string]any)["args"].([]any) {
			args = append(args, a.(string))
		}
		out = append(out, args)
	}
	return out
}

// requireKnownFlags checks args (subcommand first) against the subcommand's
// --help output.
func requireKnownFlags(t *testing.T, args []string) {
	t.Helper()
	require.NotEmpty(t, args)
	help, err := exec.Command(binary, args[0], "--help").CombinedOutput()
	require.NoError(t, err, "%s", help)
	for _, a := range args[1:] {
		if !strings.HasPrefix(a, "--") {
			continue
		}
		name, _, _ := strings.Cut(a, "=")
		require.Contains(t, string(help), name, "flag %s of `ballast %s`", name, args[0])
	}
}

// TestReadmeConfig keeps the README's configuration examples true: each
// YAML block of its Configuration section loads and validates (with the
// files it names replaced by ones that exist).
func TestReadmeConfig(t *testing.T) {
	raw, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	section := string(raw)
	section = section[strings.Index(section, "## Configuration"):]
	section = section[:strings.Index(section, "\n## Architecture")]
	blocks := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllStringSubmatch(section, -1)
	require.GreaterOrEqual(t, len(blocks), 2)
	dir := t.TempDir()
	cephConf := filepath.Join(dir, "ceph.conf")
	require.NoError(t, os.WriteFile(cephConf, []byte("[global]\n"), 0o644))
	for i, b := range blocks {
		cfg := strings.NewReplacer("/etc/ceph/ceph.conf", cephConf, "/etc/ballast/hypervisors/*.yml", filepath.Join(dir, "*.yml")).Replace(b[1])
		c, err := parseConfig([]byte(cfg), dir, nil)
		require.NoError(t, err, "README yaml block %d:\n%s", i, b[1])
		require.NoError(t, c.validate(), "README yaml block %d", i)
	}
}

// TestDocsAlertingConfig: the configuration example of docs/alerting.md
// decodes with every key known, and its triggers compile.
func TestDocsAlertingConfig(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(deployDir, "../docs/alerting.md"))
	require.NoError(t, err)
	_, rest, ok := strings.Cut(string(raw), "## Configuration\n\n```yaml\n")
	require.True(t, ok, "docs/alerting.md has a yaml block under Configuration")
	block, _, ok := strings.Cut(rest, "```")
	require.True(t, ok)
	cfg, err := parseConfig([]byte(block), ".", nil)
	require.NoError(t, err)
	require.NoError(t, cfg.validate())
	require.Len(t, cfg.Rules.Triggers, 2)
	require.Len(t, cfg.Rules.Notifications.Receivers, 2)
	require.Equal(t, []string{"/etc/ballast/rules/*.yml"}, cfg.prom.RuleFiles)
}
