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
	"path/filepath"
	"reflect"
	"testing"

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
	require.NoError(t, os.WriteFile(filepath.Join(dir, "bad.json"), []byte(`{"version":1,"hosts":[{"name":""}]}`), 0o644))
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--model", modelPath}, "--goal is required"},
		{[]string{"--goal", "dummy"}, "--model is required"},
		{[]string{"--model", filepath.Join(dir, "bad.json"), "--goal", "dummy"}, "hosts[0].name: must not be empty"},
		{[]string{"--model", modelPath, "--goal", "dummy", "--param", "para1=abc"}, `parameter "para1": "abc" is not a number`},
		{[]string{"--model", modelPath, "--goal", "dummy", "--param", "nokey"}, "want key=value"},
		{[]string{"--model", modelPath, "--goal", "dummy", "--param", "para9=1"}, `parameter "para9" is not accepted`},
		{[]string{"--model", modelPath, "--goal", "dummy", "--hosts", "3"}, "--hosts does not apply to 'ballast plan run'"},
		{[]string{"roadef", "--model", "x"}, "--assignment"},
		{[]string{"generate", "--hosts=-1"}, "--hosts: -1 must be positive"},
	} {
		_, _, err := runPlanCLI(t, tc.args...)
		var ue usageError
		require.True(t, errors.As(err, &ue), "%v: %v is not a usage error", tc.args, err)
		require.ErrorContains(t, err, tc.want)
	}
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
