// Tests of Ballast's default rules (deploy/rules/*.yml), their promtool unit
// tests (deploy/rules/tests/*.yml) and their runbooks (deploy/runbooks/).
// Paths are relative to this directory, where `go test` runs.
package rules_test

import (
	"bufio"
	"bytes"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/ballast-cloud/ballast/decision/goal"
	"github.com/ballast-cloud/ballast/deploy/testenv"
)

const (
	rulesGlob   = "*.yml"
	testsGlob   = "tests/*.yml"
	runbookDir  = "../runbooks"
	runbookNote = "Safe to auto-retry?"
)

// alert is an alerting rule and the file it is in.
type alert struct {
	file string
	rule rulefmt.Rule
}

// ruleSet is every rule of the rule files.
type ruleSet struct {
	files   []string
	alerts  []alert
	records []string
}

func loadRules(t *testing.T) ruleSet {
	t.Helper()
	files, err := filepath.Glob(rulesGlob)
	require.NoError(t, err)
	require.NotEmpty(t, files, "no rule files match %s", rulesGlob)
	var rs ruleSet
	p := parser.NewParser(parser.Options{})
	for _, f := range files {
		// Strict: unknown fields refused, names valid for Prometheus 2.x too.
		groups, errs := rulefmt.ParseFile(f, false, model.LegacyValidation, p, slog.New(slog.DiscardHandler))
		require.Empty(t, errs, "%s does not parse", f)
		rs.files = append(rs.files, f)
		for _, g := range groups.Groups {
			for _, r := range g.Rules {
				if r.Alert != "" {
					rs.alerts = append(rs.alerts, alert{file: f, rule: r})
				} else {
					rs.records = append(rs.records, r.Record)
				}
			}
		}
	}
	return rs
}

func (rs ruleSet) alertNames() []string {
	var out []string
	for _, a := range rs.alerts {
		out = append(out, a.rule.Alert)
	}
	return out
}

func TestRuleFilesParse(t *testing.T) {
	rs := loadRules(t)
	require.NotEmpty(t, rs.alerts)
	require.NotEmpty(t, rs.records)
}

var (
	// Alert names are file names of runbooks: letters and digits only.
	alertName = regexp.MustCompile(`^[A-Z][A-Za-z0-9]+$`)
	// Recording rules are named level:metric:operations.
	recordName = regexp.MustCompile(`^[a-z_]+:[a-zA-Z0-9_]+:[a-z0-9_]+$`)
)

func TestAlertingRules(t *testing.T) {
	severities := []string{"critical", "warning", "info"}
	rs := loadRules(t)
	seen := map[string]string{}
	for _, a := range rs.alerts {
		r := a.rule
		t.Run(r.Alert, func(t *testing.T) {
			require.Regexp(t, alertName, r.Alert)
			if f, dup := seen[r.Alert]; dup {
				t.Fatalf("alert %s is defined twice (%s and %s)", r.Alert, f, a.file)
			}
			seen[r.Alert] = a.file
			require.Positive(t, r.For, "for: missing or zero")
			require.Contains(t, severities, r.Labels["severity"], "labels.severity")

			summary := r.Annotations["summary"]
			require.NotEmpty(t, summary, "annotations.summary")
			require.NotContains(t, summary, "\n", "annotations.summary must be one line")
			desc := r.Annotations["description"]
			require.NotEmpty(t, desc, "annotations.description")
			require.Contains(t, desc, "$labels", "annotations.description must name what fires")

			// The server adds runbook_url from its pattern and the alert's name.
			require.NotContains(t, r.Annotations, "runbook_url", "runbook_url is added by the server")
		})
	}
}

func TestRecordingRules(t *testing.T) {
	rs := loadRules(t)
	for _, name := range rs.records {
		require.Regexp(t, recordName, name)
	}
}

// TestTriggers checks the alerts the decision engine's triggers turn into
// audits: each trigger label names a goal.
func TestTriggers(t *testing.T) {
	rs := loadRules(t)
	want := map[string]string{
		"HostCPUOverloaded":            "workload_balancing",
		"CephOSDUtilizationImbalanced": "storage_balancing",
	}
	got := map[string]string{}
	for _, a := range rs.alerts {
		tr, ok := a.rule.Labels["trigger"]
		if !ok {
			continue
		}
		got[a.rule.Alert] = tr
		_, known := goal.Get(tr)
		require.True(t, known, "%s: trigger %q is not a goal (%v)", a.rule.Alert, tr, goal.Names())
	}
	require.Equal(t, want, got)
}

// actuatorAlerts are the alerts about actions and plans besides the trigger
// alerts; their runbooks say whether retrying is safe.
var actuatorAlerts = []string{"BallastApplierActionsFailing", "BallastAuditRunsFailing"}

func TestRunbooks(t *testing.T) {
	rs := loadRules(t)
	for _, a := range rs.alerts {
		name := a.rule.Alert
		t.Run(name, func(t *testing.T) {
			page, err := os.ReadFile(filepath.Join(runbookDir, name+".md"))
			require.NoError(t, err, "every alert needs deploy/runbooks/%s.md", name)
			headings := markdownHeadings(page)
			require.NotEmpty(t, headings)
			require.Equal(t, "# "+name, headings[0], "the page starts with the alert's name")
			var sections []string
			for _, h := range headings {
				if strings.HasPrefix(h, "## ") {
					sections = append(sections, h)
				}
			}
			// In this order; other sections may come between and after.
			i := 0
			for _, s := range sections {
				if i < len(requiredSections) && s == requiredSections[i] {
					i++
				}
			}
			require.Equal(t, len(requiredSections), i, "sections %v, in order; got %v", requiredSections, sections)
			if _, trigger := a.rule.Labels["trigger"]; trigger || slices.Contains(actuatorAlerts, name) {
				require.Contains(t, string(page), runbookNote)
			}
		})
	}
}

var requiredSections = []string{"## Meaning", "## Impact", "## Diagnosis", "## Mitigation"}

// markdownHeadings lists the ATX headings outside fenced code blocks.
func markdownHeadings(page []byte) []string {
	var out []string
	fenced := false
	sc := bufio.NewScanner(bytes.NewReader(page))
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), " \t")
		if strings.HasPrefix(line, "```") {
			fenced = !fenced
			continue
		}
		if !fenced && strings.HasPrefix(line, "#") {
			out = append(out, line)
		}
	}
	return out
}

// TestRunbookIndex checks there is no page without an alert and that the
// README lists every page once.
func TestRunbookIndex(t *testing.T) {
	rs := loadRules(t)
	alerts := rs.alertNames()
	pages, err := filepath.Glob(filepath.Join(runbookDir, "*.md"))
	require.NoError(t, err)
	var names []string
	for _, p := range pages {
		n := strings.TrimSuffix(filepath.Base(p), ".md")
		if n == "README" {
			continue
		}
		require.Contains(t, alerts, n, "%s has no alert (an orphan page)", p)
		names = append(names, n)
	}
	sort.Strings(names)
	sorted := slices.Clone(alerts)
	sort.Strings(sorted)
	require.Equal(t, sorted, names)

	readme, err := os.ReadFile(filepath.Join(runbookDir, "README.md"))
	require.NoError(t, err)
	links := regexp.MustCompile(`\]\(([A-Za-z0-9]+)\.md\)`).FindAllStringSubmatch(string(readme), -1)
	var linked []string
	for _, l := range links {
		linked = append(linked, l[1])
	}
	sort.Strings(linked)
	require.Equal(t, sorted, linked, "README.md links each runbook once")
}

// unitTests is the part of a promtool test file the coverage check reads.
type unitTests struct {
	RuleFiles []string `yaml:"rule_files"`
	Tests     []struct {
		Name       string `yaml:"name"`
		AlertTests []struct {
			Alertname string           `yaml:"alertname"`
			ExpAlerts []map[string]any `yaml:"exp_alerts"`
		} `yaml:"alert_rule_test"`
		ExprTests []struct {
			Expr string `yaml:"expr"`
		} `yaml:"promql_expr_test"`
	} `yaml:"tests"`
}

// TestUnitTestsCoverEveryRule checks that the promtool unit tests load every
// rule file, see every alert fire and stay quiet, and query every recording
// rule.
func TestUnitTestsCoverEveryRule(t *testing.T) {
	rs := loadRules(t)
	files, err := filepath.Glob(testsGlob)
	require.NoError(t, err)
	require.NotEmpty(t, files, "no promtool unit tests match %s", testsGlob)
	loaded := map[string]bool{}
	fires, quiet := map[string]bool{}, map[string]bool{}
	var exprs []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		var ut unitTests
		require.NoError(t, yaml.Unmarshal(b, &ut), f)
		for _, rf := range ut.RuleFiles {
			loaded[filepath.Clean(filepath.Join(filepath.Dir(f), rf))] = true
		}
		for _, tc := range ut.Tests {
			for _, at := range tc.AlertTests {
				if len(at.ExpAlerts) > 0 {
					fires[at.Alertname] = true
				} else {
					quiet[at.Alertname] = true
				}
			}
			for _, et := range tc.ExprTests {
				exprs = append(exprs, et.Expr)
			}
		}
	}
	for _, f := range rs.files {
		require.True(t, loaded[filepath.Clean(f)], "no unit test loads %s", f)
	}
	for _, name := range rs.alertNames() {
		require.True(t, fires[name], "no unit test expects %s to fire", name)
		require.True(t, quiet[name], "no unit test expects %s to stay quiet", name)
	}
	for _, rec := range rs.records {
		require.True(t, slices.ContainsFunc(exprs, func(e string) bool { return strings.Contains(e, rec) }),
			"no promql_expr_test queries %s", rec)
	}
}

// TestPromtool runs Prometheus's own checks: `promtool check rules` and the
// unit tests. scripts/deps.sh installs promtool (Debian's prometheus
// package); without it the test is skipped (failed under make test).
func TestPromtool(t *testing.T) {
	bin := testenv.RequireBinary(t, "promtool")
	rules, err := filepath.Glob(rulesGlob)
	require.NoError(t, err)
	tests, err := filepath.Glob(testsGlob)
	require.NoError(t, err)
	require.NotEmpty(t, tests)
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"check rules", append([]string{"check", "rules"}, rules...)},
		{"test rules", append([]string{"test", "rules"}, tests...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := exec.CommandContext(t.Context(), bin, tc.args...).CombinedOutput()
			require.NoError(t, err, "promtool %s:\n%s", strings.Join(tc.args, " "), out)
		})
	}
}
