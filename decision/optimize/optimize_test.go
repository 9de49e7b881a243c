package optimize

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// randomProblem builds a feasible instance exercising every rule: transient
// and non-transient resources, conflict on machines and on locations,
// spread, dependencies, zones, pins, closed and evacuated machines, load,
// balance, variance and packing terms.
func randomProblem(seed uint64, machines, procs int) *Problem {
	rng := rand.New(rand.NewPCG(seed, 1))
	R := 3
	p := &Problem{
		Resources: []Resource{
			{Name: "a", Transient: true, LoadWeight: 10, BalanceWeight: 100},
			{Name: "b", LoadWeight: 3, PackWeight: 50},
			{Name: "c", Transient: rng.IntN(2) == 0},
		},
		Balances:          []Balance{{R1: 0, R2: 1, Target: 2, Weight: 5}},
		ProcessMoveWeight: 1, ServiceMoveWeight: 10, MachineMoveWeight: 2,
	}
	for m := 0; m < machines; m++ {
		capa := []int64{int64(800 + rng.IntN(800)), int64(800 + rng.IntN(800)), int64(1000 + rng.IntN(500))}
		safety := []int64{capa[0] * 8 / 10, capa[1] * 7 / 10, capa[2]}
		p.Machines = append(p.Machines, Machine{Capacity: capa, Safety: safety, Neighborhood: int32(m % 3),
			Location: int32(m % 4), FixedCost: int64(rng.IntN(50))})
	}
	p.MachineMoveCost = make([]int32, machines*machines)
	for i := range p.MachineMoveCost {
		if i/machines != i%machines {
			p.MachineMoveCost[i] = int32(rng.IntN(5))
		}
	}
	nsvc := procs / 3
	for s := 0; s < nsvc; s++ {
		sv := Service{Conflict: ConflictScope(rng.IntN(3))}
		if s > 0 && rng.IntN(4) == 0 {
			sv.DependsOn = []int32{int32(rng.IntN(s))}
		}
		p.Services = append(p.Services, sv)
	}
	// Place greedily so the initial assignment is feasible.
	use := make([]int64, machines*R)
	svcMachines := map[[2]int32]bool{}
	svcLocs := map[[2]int32]bool{}
	for i := 0; i < procs; i++ {
		d := []int64{int64(10 + rng.IntN(60)), int64(10 + rng.IntN(60)), int64(rng.IntN(30))}
		sv := int32(-1)
		if rng.IntN(3) > 0 {
			sv = int32(rng.IntN(nsvc))
		}
		placed := false
		for k := 0; k < machines && !placed; k++ {
			m := (i + k*7) % machines
			ok := true
			for r := 0; r < R; r++ {
				if use[m*R+r]+d[r] > p.Machines[m].Capacity[r] {
					ok = false
				}
			}
			if sv >= 0 {
				switch p.Services[sv].Conflict {
				case ConflictMachine:
					ok = ok && !svcMachines[[2]int32{sv, int32(m)}]
				case ConflictLocation:
					ok = ok && !svcLocs[[2]int32{sv, p.Machines[m].Location}]
				}
			}
			if !ok {
				continue
			}
			for r := 0; r < R; r++ {
				use[m*R+r] += d[r]
			}
			if sv >= 0 {
				svcMachines[[2]int32{sv, int32(m)}] = true
				svcLocs[[2]int32{sv, p.Machines[m].Location}] = true
			}
			pr := Process{Demand: d, Initial: int32(m), Service: sv, MoveCost: int64(rng.IntN(20)), Zone: -1}
			if rng.IntN(10) == 0 {
				pr.Pinned = true
			}
			if rng.IntN(10) == 0 {
				pr.Zone = p.Machines[m].Location
			}
			p.Processes = append(p.Processes, pr)
			placed = true
		}
	}
	// Dependencies must hold initially: drop those that do not.
	s, _ := NewState(p, nil)
	for sv := range p.Services {
		for _, q := range s.svcProcs[sv] {
			n := s.mNb[s.assign[q]]
			for _, d := range p.Services[sv].DependsOn {
				if s.svcNb[int(d)*s.N+int(n)] == 0 {
					p.Services[sv].DependsOn = nil
				}
			}
		}
	}
	for m := range p.Machines {
		if rng.IntN(8) == 0 {
			p.Machines[m].Closed = true
		}
	}
	return p
}

// randomMove tries one random swap (one time in swapOneIn) or shift and, if
// it is allowed, applies it and checks that the cost moved by its delta.
func randomMove(t *testing.T, s *State, rng *rand.Rand, swapOneIn, step int) {
	t.Helper()
	a := int32(rng.IntN(s.P))
	before := s.Cost()
	if rng.IntN(swapOneIn) == 0 {
		b := int32(rng.IntN(s.P))
		if d, ok := s.SwapDelta(a, b); ok {
			require.InDelta(t, before, s.Cost(), 1e-6, "SwapDelta must not change the state")
			s.Swap(a, b)
			require.InDelta(t, before+d, s.Cost(), 1e-6, "step %d", step)
		}
		return
	}
	m := int32(rng.IntN(s.M))
	if d, ok := s.ShiftDelta(a, m); ok {
		s.Shift(a, m)
		require.InDelta(t, before+d, s.Cost(), 1e-6, "step %d", step)
	}
}

func TestIncrementalMatchesRebuild(t *testing.T) {
	for seed := uint64(1); seed <= 8; seed++ {
		p := randomProblem(seed, 12, 120)
		s, err := NewState(p, nil)
		require.NoError(t, err)
		require.Empty(t, s.Violations())
		rng := rand.New(rand.NewPCG(seed, 9))
		for step := 0; step < 3000; step++ {
			randomMove(t, s, rng, 3, step)
			if step%500 == 0 {
				fresh, err := NewState(p, s.Assignment())
				require.NoError(t, err)
				require.Equal(t, fresh.Breakdown().Exact, s.Breakdown().Exact, "seed %d step %d", seed, step)
				require.InDelta(t, fresh.Breakdown().Float, s.Breakdown().Float, 1e-6)
				require.Equal(t, fresh.Active(), s.Active())
				require.Empty(t, s.Violations(), "seed %d step %d", seed, step)
			}
		}
	}
}

func TestSearchesKeepConstraintsAndAreDeterministic(t *testing.T) {
	for _, tc := range []struct {
		name   string
		anneal func(seed uint64) *AnnealOptions
	}{
		{"shift, swap, eject", func(uint64) *AnnealOptions { return &AnnealOptions{MaxIterations: 20000} }},
		{"with repack", func(seed uint64) *AnnealOptions {
			return &AnnealOptions{MaxIterations: 20000, LNS: 0.3, HardTransient: seed%2 == 0}
		}},
		{"with reweighing and a transient price", func(seed uint64) *AnnealOptions {
			return &AnnealOptions{MaxIterations: 20000, Reweigh: 0.3, TransientPrice: 0.05, HardTransient: seed%3 == 0}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) { searchesKeepConstraints(t, tc.anneal) })
	}
}

func searchesKeepConstraints(t *testing.T, anneal func(seed uint64) *AnnealOptions) {
	for seed := uint64(1); seed <= 6; seed++ {
		p := randomProblem(seed, 15, 150)
		p.Machines[0].Evacuate = true
		p.MaxMoves = 60
		for k := range p.Processes {
			if p.Processes[k].Initial == 0 {
				p.Processes[k].Pinned = false
			}
		}
		run := func() *Result {
			r, err := Solve(context.Background(), p, Options{
				Seed: int64(seed), Repair: true,
				Drain:   &DrainOptions{KeepLarge: true},
				Descent: &DescentOptions{Swaps: true},
				Anneal:  anneal(seed),
				Workers: 2, Epochs: 4,
			})
			require.NoError(t, err)
			return r
		}
		a, b := run(), run()
		require.Empty(t, a.Violations, "seed %d", seed)
		require.Equal(t, a.Assignment, b.Assignment, "seed %d: not deterministic", seed)
		require.LessOrEqual(t, a.Final.Moved, 60)
		if len(a.Unplaced) == 0 {
			for i, m := range a.Assignment {
				require.NotEqual(t, int32(0), m, "process %d left on the evacuated machine", i)
			}
		}
	}
}

func TestAnytime(t *testing.T) {
	p := randomProblem(3, 20, 200)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	r, err := Solve(ctx, p, Options{Seed: 1, Anneal: &AnnealOptions{}})
	require.NoError(t, err)
	require.Empty(t, r.Violations)
	require.LessOrEqual(t, r.Final.Total, r.Initial.Total)
	_, err = Solve(context.Background(), p, Options{Anneal: &AnnealOptions{}})
	require.ErrorContains(t, err, "MaxIterations or a context deadline")
}

func TestDrainEmptiesMachines(t *testing.T) {
	// Ten machines a quarter full: with a high fixed cost, Drain packs
	// them into three.
	p := &Problem{Resources: []Resource{{Name: "x", Transient: true}}, ProcessMoveWeight: 1}
	for m := 0; m < 10; m++ {
		p.Machines = append(p.Machines, Machine{Capacity: []int64{100}, FixedCost: 1000})
		for k := 0; k < 5; k++ {
			p.Processes = append(p.Processes, Process{Demand: []int64{5}, Initial: int32(m), Service: -1, MoveCost: 1, Zone: -1})
		}
	}
	s, err := NewState(p, nil)
	require.NoError(t, err)
	st := Drain(context.Background(), s, DrainOptions{})
	require.Equal(t, 3, s.Active())
	require.Equal(t, 7, st.Emptied)
	require.Equal(t, 35, s.Moved(), "only the emptied machines' processes move")
	require.Empty(t, s.Violations())
}

func TestTransientRoom(t *testing.T) {
	// A machine that sends a process away cannot reuse its room for an
	// arriving one when the resource is transient.
	p := &Problem{Resources: []Resource{{Name: "mem", Transient: true}}}
	p.Machines = []Machine{{Capacity: []int64{10}}, {Capacity: []int64{10}}, {Capacity: []int64{10}}}
	p.Processes = []Process{
		{Demand: []int64{10}, Initial: 0, Service: -1, Zone: -1},
		{Demand: []int64{10}, Initial: 1, Service: -1, Zone: -1},
	}
	s, err := NewState(p, nil)
	require.NoError(t, err)
	_, ok := s.ShiftDelta(0, 2)
	require.True(t, ok)
	s.Shift(0, 2)
	_, ok = s.ShiftDelta(1, 0)
	require.False(t, ok, "machine 0 still holds process 0's memory during its migration")
	_, ok = s.SwapDelta(0, 1)
	require.False(t, ok)
	_, ok = s.ShiftDelta(0, 0)
	require.True(t, ok, "going home is always possible")
}

func TestValidate(t *testing.T) {
	good := randomProblem(1, 4, 10)
	require.NoError(t, good.Validate())
	for _, tc := range []struct {
		mut  func(p *Problem)
		want string
	}{
		{func(p *Problem) { p.Resources = nil }, "resources"},
		{func(p *Problem) { p.Machines[1].Capacity = []int64{1} }, "machines[1].capacity"},
		{func(p *Problem) { p.Processes[0].Initial = 99 }, "processes[0].initial"},
		{func(p *Problem) { p.Processes[0].Demand[0] = -1 }, "processes[0].demand[0]"},
		{func(p *Problem) { p.Resources[0].BalanceWeight = math.NaN() }, "resources[0]"},
		{func(p *Problem) { p.MachineMoveCost = []int32{1} }, "machine_move_cost"},
	} {
		p := randomProblem(1, 4, 10)
		tc.mut(p)
		require.ErrorContains(t, p.Validate(), tc.want)
	}
}

// The search's own terms (transient penalty, transient price, perturbed
// load weights) must keep the incremental deltas exact, leave TrueCost the
// problem's objective, and vanish without a trace when removed.
func TestSearchTermsDeltas(t *testing.T) {
	for _, tc := range []struct {
		name                         string
		soft, scale, price, reweight bool
	}{
		{"soft transient", true, false, false, false},
		{"soft transient, scaled by resource", true, true, false, false},
		{"price", false, false, true, false},
		{"reweighted", false, false, false, true},
		{"soft, scaled, price, reweighted", true, true, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := randomProblem(5, 10, 120)
			s, err := NewState(p, nil)
			require.NoError(t, err)
			terms := func(s *State) {
				if tc.soft {
					s.SetSoftTransient(7)
				}
				if tc.scale {
					s.SetTransientScale([]float64{0.25, 1, 3})
				}
			}
			terms(s)
			if tc.price {
				s.SetTransientPrice([]float64{0.5, 0, 2})
			}
			if tc.reweight {
				s.SetLoadWeights([]int64{10, 30, 4})
			}
			rng := rand.New(rand.NewPCG(3, 3))
			for step := 0; step < 4000; step++ {
				randomMove(t, s, rng, 2, step)
				if step%1000 == 999 && !tc.reweight {
					fresh, err := NewState(p, s.Assignment())
					require.NoError(t, err)
					require.InDelta(t, fresh.Cost(), s.TrueCost(), 1e-6, "step %d", step)
					if !tc.price {
						terms(fresh)
						require.InDelta(t, fresh.Cost(), s.Cost(), 1e-6, "step %d: search terms drifted", step)
					}
				}
			}
			s.SetTransientScale(nil)
			s.SetSoftTransient(0)
			s.SetTransientPrice(nil)
			s.SetLoadWeights(nil)
			fresh, err := NewState(p, s.Assignment())
			require.NoError(t, err)
			require.InDelta(t, fresh.Cost(), s.Cost(), 1e-6)
			require.InDelta(t, fresh.Cost(), s.TrueCost(), 1e-6)
			require.Equal(t, fresh.Breakdown().Exact, s.Breakdown().Exact)
			require.Equal(t, fresh.TransientOverflow(), s.TransientOverflow())
		})
	}
}

// A reweighed phase that ends on the optimum, where no later move improves,
// must still have that assignment judged: the search returns the optimum.
func TestReweighedPhaseEndingOnTheOptimumIsKept(t *testing.T) {
	// Two resources, two machines of safety 10: process 0 (5, 5) sits on
	// machine 0 with process 1 (8, 0); moving it to machine 1 brings every
	// load under safety, the only move that helps, found in any phase.
	p := &Problem{
		Resources: []Resource{{Name: "cpu", LoadWeight: 10}, {Name: "mem", LoadWeight: 1}},
		Machines: []Machine{
			{Capacity: []int64{20, 20}, Safety: []int64{10, 10}},
			{Capacity: []int64{20, 20}, Safety: []int64{10, 10}},
		},
		Processes: []Process{
			{Demand: []int64{5, 5}, Initial: 0, Service: -1, Zone: -1},
			{Demand: []int64{8, 0}, Initial: 0, Service: -1, Zone: -1},
		},
		ProcessMoveWeight: 1,
	}
	for _, iters := range []int64{256, 4096, 100_000} {
		r, err := Solve(context.Background(), p, Options{Seed: 1, Workers: 1,
			Anneal: &AnnealOptions{MaxIterations: iters, Reweigh: 0.9}})
		require.NoError(t, err)
		require.Equal(t, int64(0), r.Final.Exact, "iterations %d: %v", iters, r.Assignment)
	}
}

func TestAnnealOptionsValidated(t *testing.T) {
	p := randomProblem(1, 4, 10)
	for _, tc := range []struct {
		o    AnnealOptions
		want string
	}{
		{AnnealOptions{MaxIterations: 10, LNS: 1}, "LNS share 1"},
		{AnnealOptions{MaxIterations: 10, Reweigh: -0.1}, "reweigh share -0.1"},
		{AnnealOptions{MaxIterations: 10, TransientPrice: -1}, "negative transient price"},
	} {
		_, err := Solve(context.Background(), p, Options{Anneal: &tc.o})
		require.ErrorContains(t, err, tc.want)
	}
}

// Transient resources are weighed by the scarcity of their room: the mean
// room over the transient resources divided by their own.
func TestTransientRoomScale(t *testing.T) {
	p := &Problem{
		Resources: []Resource{{Name: "cpu", Transient: true}, {Name: "mem"}, {Name: "disk", Transient: true}},
		Machines: []Machine{
			{Capacity: []int64{100, 50, 400}, Safety: []int64{100, 50, 400}},
			{Capacity: []int64{100, 50, 400}, Safety: []int64{100, 50, 400}},
		},
		Processes: []Process{
			{Demand: []int64{60, 10, 250}, Initial: 0, Service: -1, Zone: -1},
			{Demand: []int64{40, 10, 250}, Initial: 1, Service: -1, Zone: -1},
		},
		ProcessMoveWeight: 1,
	}
	s, err := NewState(p, nil)
	require.NoError(t, err)
	// Rooms: cpu 200 − 100 = 100, disk 800 − 500 = 300; mean 200.
	require.InDeltaSlice(t, []float64{2, 0, 2.0 / 3}, s.transientRoomScale(), 1e-12)
}
