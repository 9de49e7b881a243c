package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/stretchr/testify/require"

	"github.com/ballast-cloud/ballast/decision"
	"github.com/ballast-cloud/ballast/decision/model"
	"github.com/ballast-cloud/ballast/decision/roadef"
)

// runPlanCLI parses args as `ballast plan …` and runs it with captured
// output.
func runPlanCLI(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	app := kingpin.New("ballast", "")
	f := bindPlanFlags(app.Command("plan", ""))
	_, err := app.Parse(append([]string{"plan"}, args...))
	require.NoError(t, err)
	var out, errOut bytes.Buffer
	err = f.run(context.Background(), slog.New(slog.DiscardHandler), &out, &errOut)
	return out.String(), errOut.String(), err
}

func TestPlanGenerateAndRun(t *testing.T) {
	dir := t.TempDir()
	modelPath := filepath.Join(dir, "cluster.json")
	_, _, err := runPlanCLI(t, "generate", "--hosts", "12", "--vms", "80", "--seed", "4", "--out", modelPath)
	require.NoError(t, err)
	c, err := model.ReadFile(modelPath)
	require.NoError(t, err)
	require.Len(t, c.Hosts, 12)

	out, summary, err := runPlanCLI(t, "--model", modelPath, "--goal", "server_consolidation", "--seed", "2")
	require.NoError(t, err)
	var p decision.Plan
	require.NoError(t, json.Unmarshal([]byte(out), &p))
	require.Equal(t, "vm_workload_consolidation", p.Strategy)
	require.NotEmpty(t, p.Actions)
	require.Contains(t, summary, "released_compute_nodes_count")
	require.Contains(t, summary, "bound: active hosts")

	text, _, err := runPlanCLI(t, "--model", modelPath, "--goal", "workload_balancing", "--strategy", "workload_stabilization",
		"--param", "metrics=instance_cpu_usage,instance_ram_usage", "--param", "target_fraction=0.2", "--output", "text")
	require.NoError(t, err)
	require.Contains(t, text, "standard_deviation_after_audit")
	require.Contains(t, text, "start  duration  parents  action")

	again, _, err := runPlanCLI(t, "--model", modelPath, "--goal", "server_consolidation", "--seed", "2")
	require.NoError(t, err)
	var q decision.Plan
	require.NoError(t, json.Unmarshal([]byte(again), &q))
	require.True(t, reflect.DeepEqual(p.Actions, q.Actions) && reflect.DeepEqual(p.Moves, q.Moves) && p.ID == q.ID,
		"same seed, same plan")
}

func TestPlanUsageErrors(t *testing.T) {
	dir := t.TempDir()
	modelPath := filepath.Join(dir, "cluster.json")
	_, _, err := runPlanCLI(t, "generate", "--hosts", "4", "--vms", "10", "--out", modelPath)
	require.NoError(t, err)
	write := func(name, content string) string {
		path := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(path, []byte(content), 0o644))
		return path
	}
	bad := write("bad.json", `{"version":1,"hosts":[{"name":""}]}`)
	empty := write("empty.json", `{"version":1,"hosts":[],"instances":[]}`)
	typo := write("typo.json", `{"version":1,"hosts":[{"name":"a","capacity":{"vcpus":1,"memory_mb":1}},{"name":"b","capcity":{}}]}`)
	roadefData := filepath.Join("..", "..", "decision", "roadef", "testdata", "A")
	roadefArgs := []string{"roadef", "--model", filepath.Join(roadefData, "model_a1_1.txt"),
		"--assignment", filepath.Join(roadefData, "assignment_a1_1.txt"), "--out", filepath.Join(dir, "sol.txt")}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--model", modelPath}, "--goal is required"},
		{[]string{"--goal", "dummy"}, "--model is required"},
		{[]string{"--model", bad, "--goal", "dummy"}, "hosts[0].name: must not be empty"},
		{[]string{"--model", empty, "--goal", "server_consolidation"}, "--model: " + empty + ": hosts: at least one host is required"},
		{[]string{"--model", typo, "--goal", "dummy"}, `--model: ` + typo + `: hosts[1]: unknown field "capcity"`},
		{[]string{"--model", modelPath, "--goal", "dummy", "--param", "para1=abc"}, `--param: parameter "para1": "abc" is not a number`},
		{[]string{"--model", modelPath, "--goal", "dummy", "--param", "nokey"}, "want key=value"},
		{[]string{"--model", modelPath, "--goal", "dummy", "--param", "para9=1"}, `--param: parameter "para9" is not accepted`},
		{[]string{"--model", modelPath, "--goal", "cluster_maintaining"}, `--param: parameter "maintenance_node" is required`},
		{[]string{"--model", modelPath, "--goal", "cluster_maintaining", "--param", "maintenance_node=compute-00000", "--param", "disable_live_migration=maybe"},
			`--param: parameter "disable_live_migration": "maybe" is not a boolean`},
		{[]string{"--model", modelPath, "--goal", "cluster_maintaining", "--param", "maintenance_node=ghost"},
			`--param maintenance_node: "ghost" is not a host in scope`},
		{[]string{"--model", modelPath, "--goal", "cluster_maintaining", "--param", "maintenance_node=compute-00000", "--param", "backup_node=ghost"},
			`--param backup_node: "ghost" is not a host in scope`},
		{[]string{"--model", modelPath, "--goal", "cluster_maintaining", "--param", "maintenance_node=compute-00000", "--param", "backup_node=compute-00000"},
			`--param backup_node: must differ from maintenance_node "compute-00000"`},
		{[]string{"--model", modelPath, "--goal", "cluster_maintaining", "--param", "maintenance_node=compute-00000", "--param", "scoring_engine=nope"},
			`--param scoring_engine: "nope" is not a registered scoring engine`},
		{[]string{"--model", modelPath, "--goal", "nogoal"}, `goal "nogoal" is not one of`},
		{[]string{"--model", modelPath, "--goal", "dummy", "--strategy", "host_maintenance"}, `strategy "host_maintenance" serves goal "cluster_maintaining"`},
		{[]string{"--goal", "help", "--strategy", "nope"}, `--strategy: "nope" is not one of`},
		{[]string{"--model", modelPath, "--goal", "dummy", "--time-limit=-1s"}, "--time-limit: -1s must not be negative"},
		{[]string{"--model", modelPath, "--goal", "dummy", "--hosts", "3"}, "--hosts does not apply to 'ballast plan run'"},
		{[]string{"--model", modelPath, "--goal", "dummy", "--hosts", "100"}, "--hosts does not apply to 'ballast plan run'"},
		{[]string{"roadef", "--model", "x"}, "--assignment"},
		{slices.Concat(roadefArgs, []string{"--workers=-1"}), "--workers: -1 must not be negative"},
		{slices.Concat(roadefArgs, []string{"--iterations=-5"}), "--iterations: -5 must not be negative"},
		{slices.Concat(roadefArgs, []string{"--time-limit=-1s"}), "--time-limit: -1s must not be negative"},
		{[]string{"generate", "--hosts=-1"}, "--hosts: -1 must be positive"},
		{[]string{"generate", "--vms=-3"}, "--vms: -3 must not be negative"},
		{[]string{"generate", "--zones=0"}, "--zones: 0 must be positive"},
		{[]string{"generate", "--ceph-hosts=-1"}, "--ceph-hosts: -1 must not be negative"},
		{[]string{"generate", "--anti-affinity=1.5"}, "--anti-affinity: 1.5 must be within [0, 1]"},
		{[]string{"generate", "--out", filepath.Join(dir, "missing", "c.json")}, "--out " + filepath.Join(dir, "missing", "c.json") + ": cannot create a file in"},
		{[]string{"generate", "--out", dir}, "not a regular file"},
	} {
		_, _, err := runPlanCLI(t, tc.args...)
		var ue usageError
		require.True(t, errors.As(err, &ue), "%v: %v is not a usage error", tc.args, err)
		require.ErrorContains(t, err, tc.want, "%v", tc.args)
	}
}

// TestPlanFlagErrors checks that a flag value of the wrong form names the
// flag; kingpin returns these from Parse, which main turns into exit 2.
func TestPlanFlagErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"generate", "--hosts", "abc"}, `--hosts: "abc" is not a whole number`},
		{[]string{"generate", "--hosts", "2.5"}, `--hosts: "2.5" is not a whole number`},
		{[]string{"generate", "--hosts", "99999999999999999999"}, `--hosts: "99999999999999999999" is out of range`},
		{[]string{"generate", "--vms", "1e3"}, `--vms: "1e3" is not a whole number`},
		{[]string{"generate", "--anti-affinity", "half"}, `--anti-affinity: "half" is not a finite number`},
		{[]string{"generate", "--anti-affinity", "NaN"}, `--anti-affinity: "NaN" is not a finite number`},
		{[]string{"generate", "--seed", "x"}, `--seed: "x" is not a whole number`},
		{[]string{"--time-limit", "banana"}, `--time-limit: "banana" is not a duration`},
		{[]string{"roadef", "--workers", "two"}, `--workers: "two" is not a whole number`},
		{[]string{"roadef", "--iterations", "1.5"}, `--iterations: "1.5" is not a whole number`},
	} {
		app := kingpin.New("ballast", "")
		bindPlanFlags(app.Command("plan", ""))
		_, err := app.Parse(append([]string{"plan"}, tc.args...))
		require.ErrorContains(t, err, tc.want, "%v", tc.args)
	}
	require.Equal(t, 2, run([]string{"plan", "generate", "--hosts", "abc"}), "exit status")
}

func TestPlanRequiredParameter(t *testing.T) {
	modelPath := filepath.Join(t.TempDir(), "cluster.json")
	_, _, err := runPlanCLI(t, "generate", "--hosts", "12", "--vms", "60", "--out", modelPath)
	require.NoError(t, err)
	c, err := model.ReadFile(modelPath)
	require.NoError(t, err)
	host := c.Instances[0].Host
	out, _, err := runPlanCLI(t, "--model", modelPath, "--goal", "cluster_maintaining", "--param", "maintenance_node="+host)
	require.NoError(t, err)
	var p decision.Plan
	require.NoError(t, json.Unmarshal([]byte(out), &p))
	require.Equal(t, "host_maintenance", p.Strategy)
	require.NotEmpty(t, p.Actions, "the instances on %s move", host)
	// A host the model does not have is bad input: a usage error (exit 2),
	// not a failure logged at ERROR.
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(binary, "plan", "--model", modelPath, "--goal", "cluster_maintaining", "--param", "maintenance_node=ghost")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	var ee *exec.ExitError
	require.ErrorAs(t, cmd.Run(), &ee)
	require.Equal(t, 2, ee.ExitCode(), "%s", stderr.String())
	require.Equal(t, "ballast plan: --param maintenance_node: \"ghost\" is not a host in scope\n", stderr.String())
	require.Empty(t, stdout.String())
}

func TestPlanGoalHelp(t *testing.T) {
	out, _, err := runPlanCLI(t, "--goal", "help")
	require.NoError(t, err)
	for _, want := range []string{
		"\nserver_consolidation\n  vm_workload_consolidation\n",
		"    maintenance_node (string, required)\n        The name of the compute node",
		"    backup_node (string, optional)\n",
		"    para1 (number, default 3.2)\n        number parameter example [1, 10.2]\n",
		`    mode (string, default "upmap")`,
	} {
		require.Contains(t, out, want)
	}
	one, _, err := runPlanCLI(t, "--goal", "help", "--strategy", "dummy")
	require.NoError(t, err)
	require.Contains(t, one, "para2 (string, default \"hello\")")
	require.NotContains(t, one, "maintenance_node")
}

func TestPlanOutputFile(t *testing.T) {
	data := filepath.Join("..", "..", "decision", "roadef", "testdata", "A")
	model, assignment := filepath.Join(data, "model_a1_1.txt"), filepath.Join(data, "assignment_a1_1.txt")
	dir := t.TempDir()
	// An output that cannot be created fails before the search, not after
	// its time limit.
	start := time.Now()
	_, _, err := runPlanCLI(t, "roadef", "--model", model, "--assignment", assignment, "--time-limit", "60s",
		"--out", filepath.Join(dir, "missing", "solution.txt"))
	require.ErrorContains(t, err, "--out "+filepath.Join(dir, "missing", "solution.txt")+": cannot create a file in")
	require.Less(t, time.Since(start), 10*time.Second)
	// A failed run leaves no file, neither the output nor a temporary one,
	// and keeps an existing output as it was.
	sol := filepath.Join(dir, "solution.txt")
	_, _, err = runPlanCLI(t, "roadef", "--model", model, "--assignment", filepath.Join(dir, "nope.txt"), "--out", sol)
	require.ErrorContains(t, err, "--assignment")
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Empty(t, entries)
	require.NoError(t, os.WriteFile(sol, []byte("old"), 0o600))
	_, _, err = runPlanCLI(t, "roadef", "--model", model, "--assignment", filepath.Join(dir, "nope.txt"), "--out", sol)
	require.Error(t, err)
	b, err := os.ReadFile(sol)
	require.NoError(t, err)
	require.Equal(t, "old", string(b))
	// A successful run replaces it, keeping its mode.
	_, _, err = runPlanCLI(t, "roadef", "--model", model, "--assignment", assignment, "--out", sol, "--iterations", "1000", "--workers", "1")
	require.NoError(t, err)
	fi, err := os.Stat(sol)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	entries, err = os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 1)
}

func TestPlanRoadef(t *testing.T) {
	data := filepath.Join("..", "..", "decision", "roadef", "testdata", "A")
	model, assignment := filepath.Join(data, "model_a1_1.txt"), filepath.Join(data, "assignment_a1_1.txt")
	sol := filepath.Join(t.TempDir(), "solution.txt")
	out, progress, err := runPlanCLI(t, "roadef", "--model", model, "--assignment", assignment, "--out", sol,
		"--iterations", "200000", "--seed", "1", "--workers", "1")
	require.NoError(t, err)
	require.Contains(t, progress, "original cost 49528750")
	require.Contains(t, out, "feasible true")
	// The solution file is in the challenge's format and the printed cost
	// is the checker's.
	in, err := readRoadef(model, roadef.Parse)
	require.NoError(t, err)
	orig, err := readRoadef(assignment, func(r io.Reader) ([]int, error) { return roadef.ParseAssignment(r, in) })
	require.NoError(t, err)
	got, err := readRoadef(sol, func(r io.Reader) ([]int, error) { return roadef.ParseAssignment(r, in) })
	require.NoError(t, err)
	ev, err := roadef.Evaluate(in, orig, got)
	require.NoError(t, err)
	require.True(t, ev.Feasible)
	require.Contains(t, out, fmt.Sprintf("cost %d ", ev.Total))
	require.Less(t, ev.Total, int64(49528750))
}

func TestPlanRoadefReproducible(t *testing.T) {
	// A move count without a time limit runs without a clock (the cooling
	// follows the moves alone): the same seed and workers give the same
	// solution, also with parallel workers.
	data := filepath.Join("..", "..", "decision", "roadef", "testdata", "A")
	var sols []string
	for range 2 {
		sol := filepath.Join(t.TempDir(), "solution.txt")
		_, progress, err := runPlanCLI(t, "roadef", "--model", filepath.Join(data, "model_a1_2.txt"),
			"--assignment", filepath.Join(data, "assignment_a1_2.txt"), "--out", sol,
			"--iterations", "300000", "--seed", "3", "--workers", "2")
		require.NoError(t, err)
		require.Contains(t, progress, "solving for 300000 moves on 2 workers")
		b, err := os.ReadFile(sol)
		require.NoError(t, err)
		sols = append(sols, string(b))
	}
	require.Equal(t, sols[0], sols[1])
}
