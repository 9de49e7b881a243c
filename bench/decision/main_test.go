package main

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ballast-cloud/ballast/decision"
)

// TestSmall runs each suite at toy sizes so the benchmark does not rot.
func TestSmall(t *testing.T) {
	e, err := decision.New(decision.Config{}, nil)
	require.NoError(t, err)
	r := consolidation(e, 20, 150, 1, 0)
	require.Zero(t, r.Violations)
	require.GreaterOrEqual(t, r.HostsAfter, r.L2)
	var b bytes.Buffer
	printConsolidation(&b, []consolidationResult{r})
	require.Contains(t, b.String(), "| 20x150 |")
	s := stabilization(e, 20, 150, 1)
	require.Len(t, s, 2)
	rs := runRoadef(&b, "../../decision/roadef/testdata", []string{"A"}, 0, 1, 1)
	require.Len(t, rs, 10)
	for _, x := range rs {
		require.True(t, x.Feasible)
		require.LessOrEqual(t, x.Cost, x.Original)
	}
}
