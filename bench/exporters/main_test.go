package main

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// The benchmark program runs end to end on a small host, so it cannot rot
// between `make bench` runs.
func TestRunSmall(t *testing.T) {
	r, err := run(options{domains: 20, scrapes: 3, pushBatches: 2})
	require.NoError(t, err)
	require.Positive(t, r.series)
	require.Positive(t, r.gather.p50)
	require.Positive(t, r.mem.hwm)
	require.Positive(t, r.mem.binary)
	require.Positive(t, r.http.p50)
	require.Greater(t, r.httpSeries, r.series, "the default collectors add node, diskio and inventory")
	require.Positive(t, r.pushSamplesPerSec)
	require.Equal(t, 2*r.series, r.pushSamples)
}
