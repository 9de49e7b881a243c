package optimize

import (
	"context"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestRepackKeepsConstraints(t *testing.T) {
	cases := []struct {
		name     string
		seed     uint64
		soft     bool
		maxMoves int
		evacuate bool
	}{
		{name: "hard transient", seed: 1},
		{name: "soft transient", seed: 2, soft: true},
		{name: "move budget", seed: 3, maxMoves: 25},
		{name: "evacuated machine", seed: 4, evacuate: true},
		{name: "hard transient 2", seed: 5},
		{name: "soft transient 2", seed: 6, soft: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := randomProblem(tc.seed, 12, 150)
			p.MaxMoves = tc.maxMoves
			p.Machines[1].Evacuate = tc.evacuate
			s, err := NewState(p, nil)
			require.NoError(t, err)
			Repair(context.Background(), s)
			require.Empty(t, s.Violations())
			if tc.soft {
				s.SetSoftTransient(7)
			}
			rng := rand.New(rand.NewPCG(tc.seed, 5))
			w := newLNSWork(s)
			var ms []int32
			applied := 0
			for step := 0; step < 400; step++ {
				ms = s.pickRepack(rng, ms, 2+rng.IntN(3))
				before := s.Cost()
				d, mv, ok := s.repack(rng, ms, w, []int{0, 20}[step%2], 0.5)
				if !ok {
					require.InDelta(t, before, s.Cost(), 1e-6, "a failed repack must leave the state as it was")
					continue
				}
				applied++
				require.InDelta(t, before+d, s.Cost(), 1e-6)
				if rng.IntN(2) == 0 {
					s.undo(mv)
					require.InDelta(t, before, s.Cost(), 1e-6)
				}
				if !tc.soft {
					require.Empty(t, s.Violations(), "step %d", step)
				}
				fresh, err := NewState(p, s.Assignment())
				require.NoError(t, err)
				require.Equal(t, fresh.Breakdown().Exact, s.Breakdown().Exact, "step %d", step)
				require.InDelta(t, fresh.Breakdown().Float, s.Breakdown().Float, 1e-6)
			}
			require.Positive(t, applied, "no repack succeeded")
			if tc.soft {
				s.SetSoftTransient(0)
				// Soft transient overflow aside, every other rule holds.
				for _, v := range s.Violations() {
					require.Contains(t, v, "transient", v)
				}
			}
		})
	}
}

// stuckProblem is a packing that no single feasible shift or swap
// improves: machine 0 holds four processes of size 3 (12, two above its
// safety capacity of 10), machine 1 two of size 4 (8, with room for 2).
// Moving a 3 to machine 1 or swapping a 3 with a 4 breaks a capacity;
// exchanging two 3s for one 4 brings both machines to 10 and the load cost
// to zero.
func stuckProblem() *Problem {
	p := &Problem{
		Resources: []Resource{{Name: "cpu", LoadWeight: 10}, {Name: "mem", Transient: true}},
		Machines: []Machine{
			{Capacity: []int64{12, 100}, Safety: []int64{10, 100}},
			{Capacity: []int64{10, 100}, Safety: []int64{10, 100}},
		},
		ProcessMoveWeight: 1,
	}
	for _, sz := range []int64{3, 3, 3, 3} {
		p.Processes = append(p.Processes, Process{Demand: []int64{sz, 1}, Initial: 0, Service: -1, MoveCost: 1, Zone: -1})
	}
	for _, sz := range []int64{4, 4} {
		p.Processes = append(p.Processes, Process{Demand: []int64{sz, 1}, Initial: 1, Service: -1, MoveCost: 1, Zone: -1})
	}
	return p
}

func TestRepackEscapesWhereShiftAndSwapAreStuck(t *testing.T) {
	p := stuckProblem()
	s, err := NewState(p, nil)
	require.NoError(t, err)
	require.EqualValues(t, 20, s.Breakdown().Exact)
	for a := int32(0); a < int32(s.P); a++ {
		for m := int32(0); m < int32(s.M); m++ {
			if d, ok := s.ShiftDelta(a, m); ok {
				require.GreaterOrEqual(t, d, 0.0)
			}
		}
		for b := int32(0); b < int32(s.P); b++ {
			if d, ok := s.SwapDelta(a, b); ok {
				require.GreaterOrEqual(t, d, 0.0)
			}
		}
	}
	cases := []struct {
		name string
		lns  float64
		want int64
	}{
		{name: "shift and swap only", lns: 0, want: 20},
		{name: "with repack", lns: 0.3, want: 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Solve(context.Background(), p, Options{Seed: 1, Anneal: &AnnealOptions{MaxIterations: 5000, LNS: tc.lns}})
			require.NoError(t, err)
			require.Empty(t, r.Violations)
			require.Equal(t, tc.want, r.Final.Exact)
		})
	}
}
