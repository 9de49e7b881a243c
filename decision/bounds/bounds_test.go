package bounds

import (
	"math"
	"math/bits"
	"math/rand/v2"
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

// Hosts big in CPU are small in memory and the other way round: each
// dimension alone needs 2 hosts, but both at once need 4 (the two big in
// CPU and the two big in memory), which the joint bound finds.
func TestJointBound(t *testing.T) {
	caps := func(v ...float64) []float64 { return v }
	h := HostsNeeded([]Dimension{
		{Name: "cpu", Items: []float64{50, 50, 50, 50}, Capacities: caps(100, 100, 20, 20, 20, 20)},
		{Name: "mem", Items: []float64{50, 50, 50, 50}, Capacities: caps(20, 20, 100, 100, 20, 20)},
	})
	for _, d := range h.Dimensions {
		require.Equal(t, 2, d.L1, d.Name)
	}
	require.Equal(t, 4, h.Joint)
	require.Equal(t, 4, h.L1)
	require.Equal(t, 4, h.L2)
	// Brute force: the joint bound never exceeds the fewest hosts whose
	// capacity covers the demand in both dimensions at once.
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := 0; trial < 200; trial++ {
		n := 2 + rng.IntN(8)
		cpu, mem := make([]float64, n), make([]float64, n)
		for i := range cpu {
			cpu[i], mem[i] = float64(10+rng.IntN(90)), float64(10+rng.IntN(90))
		}
		dc, dm := float64(20+rng.IntN(200)), float64(20+rng.IntN(200))
		fewest := n + 1
		for set := 1; set < 1<<n; set++ {
			var sc, sm float64
			for i := 0; i < n; i++ {
				if set&(1<<i) != 0 {
					sc += cpu[i]
					sm += mem[i]
				}
			}
			if sc >= dc && sm >= dm {
				fewest = min(fewest, bits.OnesCount(uint(set)))
			}
		}
		if fewest > n {
			continue
		}
		j := jointL1([]Dimension{{Items: []float64{dc}, Capacities: cpu}, {Items: []float64{dm}, Capacities: mem}})
		require.LessOrEqual(t, j, fewest, "trial %d", trial)
	}
}
