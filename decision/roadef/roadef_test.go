package roadef

import (
	"bytes"
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ballast-cloud/ballast/decision/optimize"
)

func load(t testing.TB, set, name string) (*Instance, []int) {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", set, "model_"+name+".txt"))
	require.NoError(t, err)
	defer f.Close()
	in, err := Parse(f)
	require.NoError(t, err)
	a, err := os.Open(filepath.Join("testdata", set, "assignment_"+name+".txt"))
	require.NoError(t, err)
	defer a.Close()
	orig, err := ParseAssignment(a, in)
	require.NoError(t, err)
	return in, orig
}

func TestExampleCosts(t *testing.T) {
	f, err := os.Open("testdata/model_example.txt")
	require.NoError(t, err)
	defer f.Close()
	in, err := Parse(f)
	require.NoError(t, err)
	orig := []int{0, 3, 0}
	for _, tc := range []struct {
		solution []int
		want     int64
	}{
		{[]int{0, 3, 0}, 4200},
		{[]int{0, 2, 0}, 3510},
		{[]int{0, 2, 1}, 2411},
	} {
		ev, err := Evaluate(in, orig, tc.solution)
		require.NoError(t, err)
		require.True(t, ev.Feasible, "%v: %v", tc.solution, ev.Violations)
		require.Equal(t, tc.want, ev.Total, "%v", tc.solution)
	}
}

// TestOriginalCosts checks the checker against the published original cost
// of every instance present, and the core's own exact cost against the
// checker.
func TestOriginalCosts(t *testing.T) {
	f, err := os.Open("testdata/best_known.csv")
	require.NoError(t, err)
	defer f.Close()
	rows, err := ReadBestKnown(f)
	require.NoError(t, err)
	require.Len(t, rows, 20)
	checked := 0
	for _, row := range rows {
		if !row.ModelPresent {
			continue
		}
		t.Run(row.Instance, func(t *testing.T) {
			in, orig := load(t, row.Set, row.Instance)
			require.Len(t, in.Machines, row.Machines)
			require.Len(t, in.Processes, row.Processes)
			ev, err := Evaluate(in, orig, orig)
			require.NoError(t, err)
			require.True(t, ev.Feasible, ev.Violations)
			require.Equal(t, row.OriginalCost, ev.Total)
			p, err := in.Problem(orig)
			require.NoError(t, err)
			s, err := optimize.NewState(p, nil)
			require.NoError(t, err)
			require.Equal(t, ev.Total, s.Breakdown().Exact)
		})
		checked++
	}
	require.Equal(t, 18, checked)
}

// TestCoreMatchesChecker applies random feasible moves through the core and
// checks after each batch that its incremental cost and feasibility agree
// with the independent checker.
func TestCoreMatchesChecker(t *testing.T) {
	for _, name := range []string{"a1_1", "a1_4", "a2_3", "a2_4"} {
		t.Run(name, func(t *testing.T) {
			in, orig := load(t, "A", name)
			p, err := in.Problem(orig)
			require.NoError(t, err)
			s, err := optimize.NewState(p, nil)
			require.NoError(t, err)
			rng := rand.New(rand.NewPCG(1, 2))
			for batch := 0; batch < 20; batch++ {
				for k := 0; k < 200; k++ {
					pr := int32(rng.IntN(len(in.Processes)))
					if rng.IntN(3) == 0 {
						q := int32(rng.IntN(len(in.Processes)))
						before := s.Cost()
						if d, ok := s.SwapDelta(pr, q); ok {
							s.Swap(pr, q)
							require.InDelta(t, before+d, s.Cost(), 1e-6)
						}
						continue
					}
					m := int32(rng.IntN(len(in.Machines)))
					before := s.Cost()
					if d, ok := s.ShiftDelta(pr, m); ok {
						s.Shift(pr, m)
						require.InDelta(t, before+d, s.Cost(), 1e-6)
					}
				}
				sol := make([]int, len(orig))
				for i, m := range s.Assignment() {
					sol[i] = int(m)
				}
				ev, err := Evaluate(in, orig, sol)
				require.NoError(t, err)
				require.True(t, ev.Feasible, ev.Violations)
				require.Equal(t, ev.Total, s.Breakdown().Exact)
				require.Empty(t, s.Violations())
			}
		})
	}
}

func TestSolveImprovesAndIsDeterministic(t *testing.T) {
	in, orig := load(t, "A", "a1_2")
	run := func() *Result {
		r, err := Solve(context.Background(), in, orig, SolveOptions{Seed: 3, Workers: 2, MaxIterations: 400_000})
		require.NoError(t, err)
		return r
	}
	a, b := run(), run()
	require.Equal(t, a.Solution, b.Solution)
	require.Equal(t, a.Evaluation.Total, b.Evaluation.Total)
	ev0, err := Evaluate(in, orig, orig)
	require.NoError(t, err)
	require.Less(t, a.Evaluation.Total, ev0.Total)
	require.True(t, a.Evaluation.Feasible)
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"empty", "", "resource count"},
		{"negative", "-1", "outside"},
		{"letters", "2 x", "not an integer"},
		{"truncated", "1 0 10 2 0 0 5", "unexpected end"},
		{"too many resources", "21", "outside"},
		{"trailing", "1 0 1 1 0 0 5 5 0 1 0 0 1 0 1 0 0 1 1 1 7", "trailing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(strings.NewReader(tc.in))
			require.ErrorContains(t, err, tc.want)
		})
	}
}

func TestAssignmentRoundTrip(t *testing.T) {
	in, orig := load(t, "A", "a1_1")
	var b bytes.Buffer
	require.NoError(t, WriteAssignment(&b, orig))
	got, err := ParseAssignment(&b, in)
	require.NoError(t, err)
	require.Equal(t, orig, got)
	_, err = ParseAssignment(strings.NewReader("0 1"), in)
	require.ErrorContains(t, err, "unexpected end")
	_, err = ParseAssignment(strings.NewReader(strings.Repeat("9 ", 100)), in)
	require.ErrorContains(t, err, "outside")
}

func FuzzParse(f *testing.F) {
	ex, err := os.ReadFile("testdata/model_example.txt")
	require.NoError(f, err)
	f.Add(ex)
	f.Add([]byte("1 0 1 1 0 0 5 5 0 1 0 0 1 0 1 0 0 1 1 1"))
	f.Add([]byte("20 1 1"))
	f.Fuzz(func(t *testing.T, data []byte) {
		in, err := Parse(bytes.NewReader(data))
		if err != nil {
			return
		}
		// A parsed instance must be safe to use: an all-zero assignment
		// evaluates without panicking and maps onto the core.
		orig := make([]int, len(in.Processes))
		if _, err := Evaluate(in, orig, orig); err != nil {
			t.Fatalf("evaluate parsed instance: %v", err)
		}
		if p, err := in.Problem(orig); err == nil {
			_, _ = optimize.NewState(p, nil)
		}
		_, _ = ParseAssignment(bytes.NewReader(data), in)
	})
}

// TestRepackEscapesTightPacking checks on a2_1 (a tight three-resource
// packing under safety capacities, no service rules) that the repack moves
// reach a far lower cost than shifts and swaps alone within the same number
// of iterations.
func TestRepackEscapesTightPacking(t *testing.T) {
	in, orig := load(t, "A", "a2_1")
	p, err := in.Problem(orig)
	require.NoError(t, err)
	cases := []struct {
		name string
		lns  float64
	}{
		{name: "shift and swap", lns: 0},
		{name: "with repack", lns: lnsShareFor(len(p.Processes), len(p.Machines))},
	}
	costs := make([]int64, len(cases))
	for i, tc := range cases {
		r, err := optimize.Solve(context.Background(), p, optimize.Options{
			Seed:   1,
			Anneal: &optimize.AnnealOptions{MaxIterations: 1_000_000, LNS: tc.lns, LNSLift: lnsLift, LNSMachines: lnsMachines},
		})
		require.NoError(t, err, tc.name)
		require.Empty(t, r.Violations, tc.name)
		sol := make([]int, len(r.Assignment))
		for k, m := range r.Assignment {
			sol[k] = int(m)
		}
		ev, err := Evaluate(in, orig, sol)
		require.NoError(t, err)
		require.True(t, ev.Feasible, tc.name)
		require.Equal(t, ev.Total, r.Final.Exact, tc.name)
		costs[i] = ev.Total
	}
	require.Less(t, costs[1]*10, costs[0], "repack: %d, shift and swap: %d", costs[1], costs[0])
}

func TestLNSShareFor(t *testing.T) {
	for _, tc := range []struct {
		P, M int
		want float64
	}{
		{1000, 100, lnsShare},
		{5000, 100, lnsShare},
		{20000, 100, lnsShareCrowded},
		{10, 0, lnsShare},
	} {
		require.Equal(t, tc.want, lnsShareFor(tc.P, tc.M), "%d processes on %d machines", tc.P, tc.M)
	}
}

// The scaled transient resources and the larger swap share go to the
// instances with several transient resources on uncrowded machines.
func TestTransientMode(t *testing.T) {
	for _, tc := range []struct {
		set, name string
		want      bool
	}{
		{"B", "b_1", true},   // 4 transient resources, 50 processes per machine
		{"A", "a2_2", true},  // 4 transient, 10 per machine
		{"B", "b_3", false},  // 2 transient, 200 per machine
		{"A", "a1_2", false}, // 1 transient
		{"B", "b_2", false},  // none
	} {
		in, _ := load(t, tc.set, tc.name)
		require.Equal(t, tc.want, transientMode(in), tc.name)
	}
}

// Reweighing (one resource's load weight raised for part of each epoch)
// must pay for itself on a real instance: same seeds, same iterations,
// lower cost than the plain search.
func TestReweighHelps(t *testing.T) {
	in, orig := load(t, "A", "a1_2")
	total := func(reweigh float64) (sum int64) {
		for seed := int64(1); seed <= 3; seed++ {
			p, err := in.Problem(orig)
			require.NoError(t, err)
			res, err := optimize.Solve(context.Background(), p, optimize.Options{Seed: seed, Workers: 1,
				Anneal: &optimize.AnnealOptions{MaxIterations: 300_000, Reweigh: reweigh}})
			require.NoError(t, err)
			require.Empty(t, res.Violations)
			sum += res.Final.Exact
		}
		return sum
	}
	plain, reweighed := total(0), total(0.3)
	t.Logf("a1_2, 3 seeds × 300k moves: plain %d, reweighed %d", plain, reweighed)
	require.Less(t, reweighed, plain)
}
