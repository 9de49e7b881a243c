package bounds

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestHostsNeeded(t *testing.T) {
	for _, tc := range []struct {
		name   string
		items  []float64
		caps   []float64
		l1, l2 int
	}{
		{"martello-toth example", []float64{99, 99, 51, 51, 51}, []float64{100, 100, 100, 100, 100, 100}, 4, 5},
		{"all fit in one", []float64{10, 20, 30}, []float64{100, 100}, 1, 1},
		{"empty", nil, []float64{100}, 0, 0},
		{"heterogeneous: largest hosts first", []float64{60, 60, 60}, []float64{50, 200, 50, 50}, 1, 1},
		{"large items each need a host", []float64{70, 70, 70, 10}, []float64{100, 100, 100, 100}, 3, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := HostsNeeded([]Dimension{{Name: "x", Items: tc.items, Capacities: tc.caps}})
			require.Equal(t, tc.l1, h.L1)
			require.Equal(t, tc.l2, h.L2)
		})
	}
	// The vector bound is the maximum over dimensions.
	h := HostsNeeded([]Dimension{
		{Name: "cpu", Items: []float64{10, 10}, Capacities: []float64{100, 100, 100}},
		{Name: "mem", Items: []float64{80, 80}, Capacities: []float64{100, 100, 100}},
	})
	require.Equal(t, 2, h.L2)
	require.Len(t, h.Dimensions, 2)
	require.True(t, HostsNeeded([]Dimension{{Items: []float64{500}, Capacities: []float64{100}}}).Infeasible)
}

// TestL2NeverExceedsOptimum brute-forces tiny instances: the bound must
// never exceed the optimal number of bins.
func TestL2NeverExceedsOptimum(t *testing.T) {
	cases := [][]float64{{30, 30, 30, 40, 70}, {50, 50, 50}, {34, 33, 33, 34, 33, 33}, {60, 45, 45, 30, 20}}
	for _, items := range cases {
		opt := bruteBins(items, 100)
		b := l2Bound(items, 100)
		require.LessOrEqual(t, b, opt, "%v", items)
	}
}

func bruteBins(items []float64, c float64) int {
	best := len(items)
	var rec func(i int, bins []float64)
	rec = func(i int, bins []float64) {
		if len(bins) >= best {
			return
		}
		if i == len(items) {
			best = len(bins)
			return
		}
		for k := range bins {
			if bins[k]+items[i] <= c {
				bins[k] += items[i]
				rec(i+1, bins)
				bins[k] -= items[i]
			}
		}
		rec(i+1, append(bins, items[i]))
	}
	rec(0, nil)
	return best
}

func TestBalanceFloor(t *testing.T) {
	// Identical hosts, unit items: 10 items on 4 hosts, loads 3,3,2,2 are
	// the best: std-dev 0.5 in load units.
	b := BalanceFloor([]float64{1, 1, 1, 1, 1, 1, 1, 1, 1, 1}, []float64{10, 10, 10, 10})
	require.InDelta(t, 0.25, b.Mean, 1e-9)
	require.InDelta(t, 0.05, b.StdDevFloor, 1e-9)
	require.InDelta(t, StdDev([]float64{0.3, 0.3, 0.2, 0.2}), b.StdDevFloor, 1e-9)
	// One big item dominates.
	b = BalanceFloor([]float64{9, 1, 1, 1}, []float64{10, 10, 10})
	require.InDelta(t, 0.9, b.MaxUtilizationFloor, 1e-9)
	require.Greater(t, b.StdDevFloor, 0.0)
	require.Equal(t, Balance{}, BalanceFloor(nil, nil))
	require.InDelta(t, math.Sqrt(2)/2*0, StdDev([]float64{1, 1}), 1e-12)
}
