package scoring

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestWeightedResource(t *testing.T) {
	w, err := NewWeightedResource(nil, 0)
	require.NoError(t, err)
	empty, err := w.CalculateScore([]float64{0, 0, 0, 0, 0})
	require.NoError(t, err)
	require.Equal(t, []float64{1}, empty)
	half, _ := w.CalculateScore([]float64{0.5, 0.5, 0, 0, 0})
	busy, _ := w.CalculateScore([]float64{0.9, 0.9, 0, 0, 0})
	require.Greater(t, half[0], busy[0])
	over, _ := w.CalculateScore([]float64{1.2, 0, 0, 0, 0})
	require.Equal(t, []float64{-1}, over)
	_, err = w.CalculateScore([]float64{1})
	require.ErrorContains(t, err, "1 features, want 5")
	_, err = NewWeightedResource([]float64{1, 2}, 2)
	require.ErrorContains(t, err, "2 weights, want 5")
	_, err = NewWeightedResource([]float64{0, 0, 0, 0, 0}, 2)
	require.ErrorContains(t, err, "must not all be zero")
	out, err := CalculateJSON(w, "[0,0,0,0,0]")
	require.NoError(t, err)
	require.Equal(t, "[1]", out)
	_, err = CalculateJSON(w, "nope")
	require.Error(t, err)
	require.Contains(t, w.Metainfo(), "feature_columns")
}

func TestMigrationCost(t *testing.T) {
	m, err := NewMigrationCost(MigrationCost{})
	require.NoError(t, err)
	r, err := m.CalculateScore([]float64{4096, 0, 1000})
	require.NoError(t, err)
	// An idle 4 GiB guest: one round of 4.1 s plus setup, no downtime.
	require.InDelta(t, 4.096+3, r[0], 1e-9)
	require.InDelta(t, 0, r[1], 1e-9)
	require.InDelta(t, 4096, r[2], 1e-9)
	busy, _ := m.CalculateScore([]float64{4096, 500, 1000})
	require.Greater(t, busy[0], r[0], "dirtying memory makes migration longer")
	require.Greater(t, busy[2], r[2])
	hot, _ := m.CalculateScore([]float64{4096, 2000, 1000})
	require.Greater(t, hot[1], 300.0, "a guest dirtying faster than the link needs a long stop-and-copy")
	bigger, _ := m.CalculateScore([]float64{16384, 500, 1000})
	require.Greater(t, bigger[0], busy[0])
	require.InDelta(t, busy[0], m.Seconds(4096, 500), 1e-9)
	_, err = m.CalculateScore([]float64{-1, 0, 0})
	require.Error(t, err)
}

func TestRegistry(t *testing.T) {
	r := NewRegistry()
	w, _ := NewWeightedResource(nil, 0)
	m, _ := NewMigrationCost(MigrationCost{})
	require.NoError(t, r.Register(w))
	require.NoError(t, r.Register(m))
	require.ErrorContains(t, r.Register(w), "registered twice")
	require.Len(t, r.List(), 2)
	require.Equal(t, MigrationCostName, r.List()[0].Name)
	_, ok := r.Get("nope")
	require.False(t, ok)
	var nilReg *Registry
	_, ok = nilReg.Get(WeightedResourceName)
	require.False(t, ok)
}
