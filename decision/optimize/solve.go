package optimize

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"
)

// Options choose the searches Solve chains, in this order: Repair, Drain,
// Descent, Anneal. A nil phase is skipped.
type Options struct {
	// Seed makes every random choice reproducible.
	Seed int64
	// Initial is the assignment to start from (nil: the problem's initial
	// machines).
	Initial []int32
	// Repair first moves processes off evacuated machines and into their
	// zones.
	Repair  bool
	Drain   *DrainOptions
	Descent *DescentOptions
	Anneal  *AnnealOptions
	// Workers is the number of annealing searches run in parallel, each
	// with its own seed derived from Seed (default 1).
	Workers int
	// Epochs is how many times the parallel searches meet and all continue
	// from the best assignment found (default 16).
	Epochs int
	// Progress, if set, is called after every annealing epoch.
	Progress func(Progress)
}

// Progress reports an anytime search's state.
type Progress struct {
	Epoch, Epochs int
	Elapsed       time.Duration
	Iterations    int64
	Best          Cost
}

// Result is what Solve found.
type Result struct {
	// Assignment is the best assignment found, machine per process.
	Assignment []int32
	// Initial and Final are the objective before and after.
	Initial, Final Cost
	// Unplaced lists processes Repair could not move where they must go.
	Unplaced []int32
	// Violations lists hard constraints the result breaks that the initial
	// assignment did not; empty unless there is a bug.
	Violations []string
	Drain      DrainStats
	Descent    DescentStats
	Anneal     AnnealStats
	Elapsed    time.Duration
}

// Solve runs the chosen searches on p under ctx and returns the best
// assignment found. It returns early, with the best so far, when ctx is
// done; it errors only on an invalid problem or options.
func Solve(ctx context.Context, p *Problem, opts Options) (*Result, error) {
	start := time.Now()
	if a := opts.Anneal; a != nil {
		switch {
		case a.LNS < 0 || a.LNS >= 1:
			return nil, fmt.Errorf("anneal: LNS share %v outside [0, 1)", a.LNS)
		case a.Reweigh < 0 || a.Reweigh >= 1:
			return nil, fmt.Errorf("anneal: reweigh share %v outside [0, 1)", a.Reweigh)
		case a.TransientPrice < 0 || a.ReweighFactor < 0:
			return nil, errors.New("anneal: negative transient price or reweigh factor")
		}
	}
	s, err := NewState(p, opts.Initial)
	if err != nil {
		return nil, err
	}
	res := &Result{Initial: s.Breakdown()}
	if opts.Repair {
		res.Unplaced = Repair(ctx, s)
	}
	if opts.Drain != nil {
		res.Drain = Drain(ctx, s, *opts.Drain)
	}
	if opts.Descent != nil {
		res.Descent = Descent(ctx, s, *opts.Descent)
	}
	if opts.Anneal != nil {
		if opts.Anneal.MaxIterations <= 0 {
			if _, ok := ctx.Deadline(); !ok {
				return nil, errors.New("anneal needs MaxIterations or a context deadline")
			}
		}
		s, res.Anneal = parallelAnneal(ctx, s, opts, start)
	}
	res.Assignment = s.Assignment()
	res.Final = s.Breakdown()
	res.Violations = s.Violations()
	res.Elapsed = time.Since(start)
	return res, nil
}

// parallelAnneal runs opts.Workers annealing searches from s in epochs; after
// each epoch every worker continues from the best assignment any found.
// Given the same seed and an iteration bound (no deadline), the result is the
// same on every run.
func parallelAnneal(ctx context.Context, s *State, opts Options, start time.Time) (*State, AnnealStats) {
	o := *opts.Anneal
	if o.SwapRatio == 0 {
		o.SwapRatio = 0.3
	}
	if o.EjectRatio == 0 {
		o.EjectRatio = 0.05
	}
	w := max(1, opts.Workers)
	epochs := opts.Epochs
	if epochs <= 0 {
		epochs = 16
	}
	if o.StartTemperature <= 0 || o.EndTemperature <= 0 {
		t0, t1 := calibrate(s.Clone(), rand.New(rand.NewPCG(uint64(opts.Seed), 7)))
		if o.StartTemperature <= 0 {
			o.StartTemperature = t0
		}
		if o.EndTemperature <= 0 {
			o.EndTemperature = min(t1, o.StartTemperature)
		}
	}
	states := make([]*State, w)
	rngs := make([]*rand.Rand, w)
	bests := make([][]int32, w)
	bestCosts := make([]float64, w)
	stats := make([]AnnealStats, w)
	clocks := make([]*clock, w)
	for i := range states {
		if i == 0 {
			states[i] = s
		} else {
			states[i] = s.Clone()
		}
		rngs[i] = rand.New(rand.NewPCG(uint64(opts.Seed), uint64(i)+1))
		bests[i] = s.Assignment()
		bestCosts[i] = s.Cost()
		clocks[i] = newClock(ctx)
		clocks[i].start = start
	}
	global := s.Assignment()
	globalCost := s.Cost()
	perWorker := o.MaxIterations / int64(w)
	for e := 0; e < epochs; e++ {
		p1 := float64(e+1) / float64(epochs)
		var wg sync.WaitGroup
		for i := 0; i < w; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				clk := clocks[i]
				progress := func(it int64) float64 {
					pr := clk.progress()
					if perWorker > 0 {
						pr = max(pr, float64(it)/float64(perWorker))
					}
					return pr
				}
				anneal(states[i], rngs[i], o, clk, progress, p1, bests[i], &bestCosts[i], &stats[i])
			}(i)
		}
		wg.Wait()
		bi := 0
		for i := 1; i < w; i++ {
			if bestCosts[i] < bestCosts[bi] {
				bi = i
			}
		}
		if bestCosts[bi] < globalCost {
			globalCost = bestCosts[bi]
			copy(global, bests[bi])
		}
		for i := range states {
			states[i].Reset(global)
			copy(bests[i], global)
			bestCosts[i] = globalCost
		}
		var total AnnealStats
		for _, st := range stats {
			total.Iterations += st.Iterations
		}
		if opts.Progress != nil {
			opts.Progress(Progress{Epoch: e + 1, Epochs: epochs, Elapsed: time.Since(start), Iterations: total.Iterations, Best: states[0].Breakdown()})
		}
		if ctx.Err() != nil {
			break
		}
	}
	var total AnnealStats
	for _, st := range stats {
		total.Iterations += st.Iterations
		total.Accepted += st.Accepted
		total.Improved += st.Improved
	}
	states[0].Reset(slices.Clone(global))
	return states[0], total
}
