package main

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// The benchmark runs small, so it keeps working.
func TestBenchSmall(t *testing.T) {
	var out strings.Builder
	require.NoError(t, run(&out, options{hosts: 10, instances: 60, actions: 40, perHost: 2, global: 4, speedup: 20000, seed: 1}))
	require.Contains(t, out.String(), "limits per-host 2, global 4")
	require.Contains(t, out.String(), "timed: planner's estimated makespan")
	t.Log(out.String())
}
