package optimize

import (
	"cmp"
	"context"
	"math"
	"math/rand/v2"
	"slices"
	"time"
)

// clock reads time and the context without a syscall per iteration: it
// checks every 1024 calls.
type clock struct {
	ctx      context.Context
	start    time.Time
	deadline time.Time
	n        int
	stopped  bool
}

func newClock(ctx context.Context) *clock {
	c := &clock{ctx: ctx, start: time.Now()}
	if d, ok := ctx.Deadline(); ok {
		c.deadline = d
	}
	return c
}

// done reports whether the context is over; cheap to call in a loop.
func (c *clock) done() bool {
	if c.stopped {
		return true
	}
	c.n++
	if c.n&1023 != 0 {
		return false
	}
	return c.check()
}

func (c *clock) check() bool {
	if c.ctx.Err() != nil {
		c.stopped = true
	}
	return c.stopped
}

// progress is the fraction of the time budget used, 0 without a deadline.
func (c *clock) progress() float64 {
	if c.deadline.IsZero() {
		return 0
	}
	total := c.deadline.Sub(c.start)
	if total <= 0 {
		return 1
	}
	return min(1, float64(time.Since(c.start))/float64(total))
}

// Repair moves every process that sits where it may not stay (an evacuated
// machine, outside its zone) to the feasible machine that raises the
// objective least, largest processes first. It returns the processes it
// could not place.
func Repair(ctx context.Context, s *State) []int32 {
	var pending []int32
	for p := int32(0); p < int32(s.P); p++ {
		m := s.assign[p]
		if s.pinned[p] {
			continue
		}
		if s.evac[m] || (s.zone[p] >= 0 && s.mLoc[m] != s.zone[p]) {
			pending = append(pending, p)
		}
	}
	if len(pending) == 0 {
		return nil
	}
	size := s.sizes()
	slices.SortStableFunc(pending, func(a, b int32) int { return cmp.Compare(size[b], size[a]) })
	clk := newClock(ctx)
	var failed []int32
	all := s.machinesByFill(false)
	fit := newFitIndex(s, all)
	for _, p := range pending {
		if clk.check() {
			failed = append(failed, p)
			continue
		}
		best, bestD := int32(-1), math.Inf(1)
		fit.visit(s.dem[int(p)*s.R:int(p)*s.R+s.R], func(m int32) bool {
			if d, ok := s.ShiftDelta(p, m); ok && d < bestD {
				best, bestD = m, d
			}
			return true
		})
		if best < 0 {
			failed = append(failed, p)
			continue
		}
		from := s.assign[p]
		s.Shift(p, best)
		fit.update(from)
		fit.update(best)
	}
	return failed
}

// sizes returns a scalar size per process: its demand summed over resources,
// each normalised by the mean machine capacity.
func (s *State) sizes() []float64 {
	R := s.R
	mean := make([]float64, R)
	for m := 0; m < s.M; m++ {
		for r := 0; r < R; r++ {
			mean[r] += float64(s.cap[m*R+r])
		}
	}
	for r := range mean {
		if mean[r] > 0 {
			mean[r] = float64(s.M) / mean[r]
		}
	}
	out := make([]float64, s.P)
	for p := 0; p < s.P; p++ {
		var v float64
		for r := 0; r < R; r++ {
			v += float64(s.dem[p*R+r]) * mean[r]
		}
		out[p] = v
	}
	return out
}

// capacitySizes returns each machine's capacity summed over resources, each
// normalised by the mean capacity, rounded to 1 % so near-equal machines tie.
func (s *State) capacitySizes() []float64 {
	R := s.R
	mean := make([]float64, R)
	for m := 0; m < s.M; m++ {
		for r := 0; r < R; r++ {
			mean[r] += float64(s.cap[m*R+r]) / float64(s.M)
		}
	}
	out := make([]float64, s.M)
	for m := range out {
		var v float64
		for r := 0; r < R; r++ {
			if mean[r] > 0 {
				v += float64(s.cap[m*R+r]) / mean[r]
			}
		}
		out[m] = math.Round(v*100) / 100
	}
	return out
}

// fill returns machine m's usage summed over resources, each as a fraction
// of its capacity.
func (s *State) fill(m int32) float64 {
	R := s.R
	var v float64
	for r := 0; r < R; r++ {
		v += float64(s.use[int(m)*R+r]) * s.invCap[int(m)*R+r]
	}
	return v
}

// machinesByFill returns every machine, fullest first (ascending when asc),
// ties by index.
func (s *State) machinesByFill(asc bool) []int32 {
	out := make([]int32, s.M)
	fill := make([]float64, s.M)
	for m := range out {
		out[m] = int32(m)
		fill[m] = s.fill(int32(m))
	}
	slices.SortStableFunc(out, func(a, b int32) int {
		if asc {
			return cmp.Compare(fill[a], fill[b])
		}
		return cmp.Compare(fill[b], fill[a])
	})
	return out
}

// DrainOptions tune Drain.
type DrainOptions struct {
	// TargetActive stops draining once this few machines are active
	// (0: no target; a lower bound makes a good one).
	TargetActive int
	// Choices is how many feasible destinations, fullest first, are
	// compared for each process (default 2).
	Choices int
	// KeepLarge empties smaller machines first (then those with fewest
	// processes to move): with machines of several sizes, the fewest
	// machines hold the load when the largest are kept.
	KeepLarge bool
	// PerCapacity orders by processes to move per unit of capacity freed.
	PerCapacity bool
}

// DrainStats reports what Drain did.
type DrainStats struct {
	Attempted, Emptied int
}

// Drain empties machines one at a time, those cheapest to empty first (fewest
// processes still on their initial machine, then least full), by moving each
// of their processes, largest first, to the fullest machine that takes it.
// A machine is only emptied if the objective improves (its fixed cost must
// outweigh the moves); otherwise its moves are undone. It is the
// consolidation construction: every move goes from an emptied machine to one
// that stays, so no process moves twice.
func Drain(ctx context.Context, s *State, opts DrainOptions) DrainStats {
	if opts.Choices <= 0 {
		opts.Choices = 2
	}
	clk := newClock(ctx)
	psize := s.sizes()
	stay := make([]int, s.M) // processes still on their initial machine
	for p, m := range s.assign {
		if s.init[p] == m {
			stay[m]++
		}
	}
	cands := make([]int32, 0, s.M)
	for m := int32(0); m < int32(s.M); m++ {
		if s.cnt[m] > 0 {
			cands = append(cands, m)
		}
	}
	fill := make([]float64, s.M)
	for m := range fill {
		fill[m] = s.fill(int32(m))
	}
	size := s.capacitySizes()
	slices.SortStableFunc(cands, func(a, b int32) int {
		if opts.KeepLarge {
			if c := cmp.Compare(size[a], size[b]); c != 0 {
				return c
			}
		}
		if opts.PerCapacity && size[a] > 0 && size[b] > 0 {
			if c := cmp.Compare(float64(stay[a])/size[a], float64(stay[b])/size[b]); c != 0 {
				return c
			}
		}
		if c := cmp.Compare(stay[a], stay[b]); c != 0 {
			return c
		}
		return cmp.Compare(fill[a], fill[b])
	})
	fit := newFitIndex(s, s.machinesByFill(false))
	var st DrainStats
	var undo []int32
	var procs []int32
	type choice struct {
		m int32
		d float64
	}
	choices := make([]choice, 0, opts.Choices)
	for _, m := range cands {
		if opts.TargetActive > 0 && s.active <= opts.TargetActive {
			break
		}
		if clk.check() {
			break
		}
		if s.cnt[m] == 0 {
			continue
		}
		procs = append(procs[:0], s.onM[m]...)
		blocked := false
		for _, p := range procs {
			if s.pinned[p] {
				blocked = true
				break
			}
		}
		if blocked {
			continue
		}
		if s.maxMoves > 0 {
			extra := 0
			for _, p := range procs {
				if s.init[p] == m {
					extra++
				}
			}
			if s.moved+extra > s.maxMoves {
				continue
			}
		}
		st.Attempted++
		before := s.Cost()
		fit.exclude(m, true)
		slices.SortStableFunc(procs, func(a, b int32) int { return cmp.Compare(psize[b], psize[a]) })
		undo = undo[:0]
		ok := true
		for _, p := range procs {
			choices = choices[:0]
			fit.visit(s.dem[int(p)*s.R:int(p)*s.R+s.R], func(d int32) bool {
				if dd, feasible := s.ShiftDelta(p, d); feasible {
					choices = append(choices, choice{d, dd})
				}
				return len(choices) < opts.Choices
			})
			if len(choices) == 0 {
				ok = false
				break
			}
			best := choices[0]
			for _, c := range choices[1:] {
				if c.d < best.d {
					best = c
				}
			}
			s.Shift(p, best.m)
			fit.update(best.m)
			undo = append(undo, p)
		}
		if ok && s.Cost() < before {
			st.Emptied++
			continue // m stays excluded: nothing moves back onto it
		}
		for i := len(undo) - 1; i >= 0; i-- {
			p := undo[i]
			d := s.assign[p]
			s.Shift(p, m)
			fit.update(d)
		}
		fit.exclude(m, false)
	}
	return st
}

// DescentOptions tune Descent.
type DescentOptions struct {
	// MinGain is the least objective improvement a move must bring
	// (default: any improvement above rounding noise).
	MinGain float64
	// Destinations is how many of the coolest machines are tried as
	// destinations for each process on a hot machine (default 64; all
	// machines when there are at most 4× as many).
	Destinations int
	// Sources is how many of the hottest machines are tried before the
	// descent concludes that no move improves (default 32).
	Sources int
	// Swaps also tries exchanging a process on a hot machine with a smaller
	// one on a cool machine when no shift improves.
	Swaps bool
	// Stop, if set, ends the descent when it returns true (a strategy's
	// target, e.g. a standard deviation threshold).
	Stop func(*State) bool
	// MaxMoves bounds the moves this descent applies (0: unbounded).
	MaxMoves int
}

// DescentStats reports what Descent did.
type DescentStats struct {
	Moves, Evaluations int
	Stopped            string // "converged", "target", "budget", "deadline"
}

// Descent is a steepest-descent local search for balancing: it repeatedly
// takes the hottest machines (highest weighted utilisation above the mean),
// finds the best shift (or swap) of one of their processes to the coolest
// machines, and applies it while the objective improves by at least MinGain.
func Descent(ctx context.Context, s *State, opts DescentOptions) DescentStats {
	if opts.Destinations <= 0 {
		opts.Destinations = 64
	}
	if opts.Sources <= 0 {
		opts.Sources = 32
	}
	if opts.MinGain <= 0 {
		opts.MinGain = 1e-9 * max(1, math.Abs(s.Cost()))
	}
	clk := newClock(ctx)
	kw := make([]float64, s.R)
	anyW := false
	for r := 0; r < s.R; r++ {
		kw[r] = s.balW[r]
		if kw[r] == 0 && s.loadW[r] > 0 {
			kw[r] = 1
		}
		anyW = anyW || kw[r] != 0
	}
	if !anyW {
		for r := range kw {
			kw[r] = 1
		}
	}
	key := make([]float64, s.M)
	setKey := func(m int32) {
		var v float64
		for r, w := range kw {
			if w != 0 {
				v += w * (s.Utilization(m, r) - s.mu[r])
			}
		}
		key[m] = v
	}
	open := make([]int32, 0, s.M)
	for m := int32(0); m < int32(s.M); m++ {
		setKey(m)
		if !s.closed[m] {
			open = append(open, m)
		}
	}
	var st DescentStats
	hot := make([]int32, 0, s.M)
	cool := make([]int32, 0, s.M)
	allDest := len(open) <= 4*opts.Destinations
	for {
		if opts.Stop != nil && opts.Stop(s) {
			st.Stopped = "target"
			return st
		}
		if opts.MaxMoves > 0 && st.Moves >= opts.MaxMoves {
			st.Stopped = "budget"
			return st
		}
		if clk.check() {
			st.Stopped = "deadline"
			return st
		}
		// Sources: every machine with processes, hottest first (closed
		// machines too: moving off them is allowed).
		hot = hot[:0]
		for m := int32(0); m < int32(s.M); m++ {
			if s.cnt[m] > 0 {
				hot = append(hot, m)
			}
		}
		slices.SortStableFunc(hot, func(a, b int32) int { return cmp.Compare(key[b], key[a]) })
		cool = append(cool[:0], open...)
		slices.SortStableFunc(cool, func(a, b int32) int { return cmp.Compare(key[a], key[b]) })
		dests := cool
		if !allDest && len(dests) > opts.Destinations {
			dests = dests[:opts.Destinations]
		}
		applied := false
		for _, h := range hot[:min(len(hot), opts.Sources)] {
			bestP, bestQ, bestM := int32(-1), int32(-1), int32(-1)
			bestD := -opts.MinGain
			for _, p := range s.onM[h] {
				if s.pinned[p] {
					continue
				}
				for _, d := range dests {
					if d == h {
						continue
					}
					st.Evaluations++
					if dd, ok := s.ShiftDelta(p, d); ok && dd < bestD {
						bestP, bestQ, bestM, bestD = p, -1, d, dd
					}
				}
			}
			if bestP < 0 && opts.Swaps {
				for _, p := range s.onM[h] {
					if s.pinned[p] {
						continue
					}
					for _, d := range dests[:min(len(dests), 16)] {
						if d == h {
							continue
						}
						for _, q := range s.onM[d] {
							st.Evaluations++
							if dd, ok := s.SwapDelta(p, q); ok && dd < bestD {
								bestP, bestQ, bestM, bestD = p, q, d, dd
							}
						}
					}
				}
			}
			if bestP < 0 {
				continue
			}
			if bestQ >= 0 {
				s.Swap(bestP, bestQ)
			} else {
				s.Shift(bestP, bestM)
			}
			setKey(h)
			setKey(bestM)
			st.Moves++
			applied = true
			break
		}
		if !applied {
			st.Stopped = "converged"
			return st
		}
	}
}

// AnnealOptions tune Anneal.
type AnnealOptions struct {
	// MaxIterations bounds the moves tried (0: until the context ends; one
	// of the two must bound the search).
	MaxIterations int64
	// SwapRatio is the share of swap moves among those tried (default 0.3).
	SwapRatio float64
	// StartTemperature and EndTemperature bound the geometric cooling
	// schedule; zero values are calibrated from the deltas of random moves.
	StartTemperature, EndTemperature float64
	// EjectRatio is the share of ejection chains among the moves tried (a
	// process moves to a machine without room and others leave it; see
	// State.eject), on problems without transient resources. Zero uses the
	// default 0.05; negative disables them.
	EjectRatio float64
	// HardTransient keeps the transient capacity a hard constraint during
	// the search. By default it is a penalty whose weight adapts so that
	// the search oscillates around the feasible border (only feasible
	// assignments are kept as best): spending the transient room of a
	// machine is otherwise irreversible for a greedy search.
	HardTransient bool
	// LNS is the share of the search's work spent on large-neighbourhood
	// moves (see State.repack): a few machines, one of them costly, have
	// their processes lifted and packed again, and are kept under the
	// annealing rule. Zero disables them; it must be below 1.
	LNS float64
	// TransientPrice, when positive, charges a process away from its
	// initial machine TransientPrice × the load weight per unit of its
	// transient demand during the search (State.SetTransientPrice), so
	// moves that hold little transient room are preferred while it is
	// plentiful. The best assignment is judged without it.
	TransientPrice float64
	// ScaleTransient weighs a unit of each transient resource, in the
	// price and in the overflow penalty, by the mean room the initial
	// assignment leaves over the transient resources divided by its own
	// (transientRoomScale): resources come in unrelated units, and without
	// it the scarcest room can be nearly free.
	ScaleTransient bool
	// Reweigh is the share of each epoch spent first with one resource's
	// load weight multiplied by ReweighFactor (default 10): the resource
	// whose load cost is furthest above its lower bound. Such a phase
	// pushes the search out of a local optimum towards the bound; the best
	// assignment is only taken while the problem's weights are in force.
	// Zero disables it; it must be below 1.
	Reweigh       float64
	ReweighFactor float64
	// LNSMachines is the most machines one such move repacks (default 4;
	// at least 2).
	LNSMachines int
	// LNSLift bounds how many processes one such move lifts (0: all the
	// machines' processes): beyond it a random subset is lifted.
	LNSLift int
}

// Ejection chains move up to ejectDepth processes off the target machine,
// each to the best of ejectTries random destinations.
const (
	ejectDepth = 32
	ejectTries = 16
)

// AnnealStats reports what Anneal did.
type AnnealStats struct {
	Iterations, Accepted, Improved int64
}

// anneal runs simulated annealing on s from progress p0 to p1 of the
// schedule, keeping the best assignment seen in best (and its cost in
// bestCost). progress returns the schedule position in [0, 1].
func anneal(s *State, rng *rand.Rand, o AnnealOptions, clk *clock, progress func(it int64) float64, p1 float64,
	best []int32, bestCost *float64, st *AnnealStats) {
	movable := make([]int32, 0, s.P)
	for p := int32(0); p < int32(s.P); p++ {
		if !s.pinned[p] {
			movable = append(movable, p)
		}
	}
	if len(movable) == 0 || s.M < 2 {
		return
	}
	t0, t1 := o.StartTemperature, o.EndTemperature
	logRatio := math.Log(t1 / t0)
	soft := s.hasTrans && !o.HardTransient
	var scale []float64
	if o.ScaleTransient && s.hasTrans {
		scale = s.transientRoomScale()
	}
	if soft {
		if s.transW <= 0 {
			var w int64 = 1
			for _, lw := range s.loadW {
				w = max(w, lw)
			}
			s.transW = float64(w)
		}
		s.SetSoftTransient(s.transW)
		defer s.SetSoftTransient(0)
		if scale != nil {
			s.SetTransientScale(scale)
			defer s.SetTransientScale(nil)
		}
	}
	if o.TransientPrice > 0 && s.hasTrans {
		price := make([]float64, s.R)
		for r := range price {
			price[r] = o.TransientPrice * float64(max(1, s.loadW[r]))
		}
		for r, sc := range scale {
			price[r] *= sc
		}
		s.SetTransientPrice(price)
		defer s.SetTransientPrice(nil)
	}
	// Ejection chains spend transient room fast and without a way back;
	// on problems with transient resources they did much worse, so they
	// are used only without them.
	ejectRatio := o.EjectRatio
	if s.hasTrans {
		ejectRatio = 0
	}
	var lbLoad []int64
	reweighed := false
	p0 := progress(st.Iterations)
	reweighEnd := p0 + o.Reweigh*(p1-p0)
	factor := o.ReweighFactor
	if factor <= 0 {
		factor = 10
	}
	if o.Reweigh > 0 && o.Reweigh < 1 {
		lbLoad = s.loadBounds()
	}
	cur := s.Cost()
	temp := t0
	var it int64
	var chain []move
	var lw *lnsWork
	var lnsWait int64
	var ms []int32
	lnsMax := max(2, o.LNSMachines)
	if o.LNSMachines <= 0 {
		lnsMax = 4
	}
	if o.LNS > 0 && o.LNS < 1 && s.M >= 2 {
		lw = newLNSWork(s)
		lnsMax = min(lnsMax, s.M)
	}
	// record keeps the assignment when it is feasible and the best so far;
	// accept books an applied move of objective delta d and records it
	// unless the weights are perturbed.
	record := func() {
		if cur-s.tpriceSum < *bestCost-1e-9 && s.transOver == 0 {
			// Re-read the exact cost: the running sum drifts with floats.
			cur = s.Cost()
			if tc := s.TrueCost(); tc < *bestCost {
				*bestCost = tc
				copy(best, s.assign)
				st.Improved++
			}
		}
	}
	accept := func(d float64) {
		st.Accepted++
		cur += d
		if !reweighed {
			record()
		}
	}
	// unweigh ends a reweighed phase: the problem's weights again, and
	// the assignment judged at once, as the phase may have ended where no
	// later move improves.
	unweigh := func() {
		if !reweighed {
			return
		}
		s.SetLoadWeights(nil)
		reweighed = false
		if soft {
			s.SetSoftTransient(s.transW)
		}
		cur = s.Cost()
		record()
	}
	for {
		if it&255 == 0 {
			if clk.done() {
				unweigh()
				return
			}
			pr := progress(st.Iterations)
			if pr >= p1 {
				unweigh()
				return
			}
			temp = t0 * math.Exp(logRatio*pr)
			if lbLoad != nil {
				if want := pr < reweighEnd; want != reweighed {
					if want {
						if w := s.reweighWorst(lbLoad, factor); w != nil {
							s.SetLoadWeights(w)
							reweighed = true
							if soft {
								// The transient capacity stays hard in
								// this phase: against a raised weight
								// the penalty is cheap, and the phase
								// would end far from feasible.
								s.SetSoftTransient(0)
							}
						}
						cur = s.Cost()
					} else {
						unweigh()
					}
				}
			}
			if soft && !reweighed && it&4095 == 0 {
				// Adaptive penalty: push back towards feasibility while
				// infeasible, relax while feasible.
				if s.transOver > 0 {
					s.transW *= 1.1
				} else {
					s.transW = max(s.transW/1.05, 1e-3)
				}
				s.SetSoftTransient(s.transW)
				cur = s.Cost()
			}
		}
		it++
		st.Iterations++
		if lw != nil {
			if lnsWait > 0 {
				lnsWait--
			} else {
				ms = s.pickRepack(rng, ms, 2+rng.IntN(lnsMax-1))
				d, mv, ok := s.repack(rng, ms, lw, o.LNSLift, 0.5)
				work := float64(max(1, len(lw.procs)*len(ms)))
				if ok && d > 0 && rng.Float64() >= math.Exp(-d/temp) {
					s.undo(mv)
					ok = false
				}
				lnsWait = int64(work * (1 - o.LNS) / o.LNS)
				if !ok {
					continue
				}
				accept(d)
				continue
			}
		}
		p := movable[rng.IntN(len(movable))]
		var d float64
		var ok, applied bool
		var q, m int32 = -1, -1
		switch x := rng.Float64(); {
		case x < ejectRatio:
			d, chain, ok = s.eject(rng, p, int32(rng.IntN(s.M)), ejectDepth, ejectTries, chain)
			applied = ok
		case x < ejectRatio+o.SwapRatio:
			q = movable[rng.IntN(len(movable))]
			d, ok = s.SwapDelta(p, q)
		default:
			m = int32(rng.IntN(s.M))
			if s.hasTrans && s.assign[p] != s.init[p] && rng.IntN(4) == 0 {
				// A quarter of the shifts of a moved process send it home:
				// that frees the transient room it holds where it is, the
				// only way a search gets such room back.
				m = s.init[p]
			}
			d, ok = s.ShiftDelta(p, m)
		}
		if !ok {
			continue
		}
		if d > 0 && rng.Float64() >= math.Exp(-d/temp) {
			if applied {
				s.undo(chain)
			}
			continue
		}
		switch {
		case applied:
		case q >= 0:
			s.Swap(p, q)
		default:
			s.Shift(p, m)
		}
		accept(d)
	}
}

// loadBounds returns, per resource, the least load cost any assignment can
// have: the total demand above the total safety capacity.
func (s *State) loadBounds() []int64 {
	R := s.R
	lb := make([]int64, R)
	for i := 0; i < s.P*R; i++ {
		lb[i%R] += s.dem[i]
	}
	for m := 0; m < s.M; m++ {
		for r := 0; r < R; r++ {
			lb[r] -= s.safety[m*R+r]
		}
	}
	for r := range lb {
		lb[r] = max(0, lb[r])
	}
	return lb
}

// reweighWorst returns load weights with the resource whose weighted load
// cost is furthest above its bound multiplied by factor, or nil when every
// resource is at its bound.
func (s *State) reweighWorst(lb []int64, factor float64) []int64 {
	worst, gap := -1, int64(0)
	for r := 0; r < s.R; r++ {
		if g := s.pb.Resources[r].LoadWeight * (s.loadCost[r] - lb[r]); g > gap {
			worst, gap = r, g
		}
	}
	if worst < 0 {
		return nil
	}
	w := make([]int64, s.R)
	for r, res := range s.pb.Resources {
		w[r] = res.LoadWeight
	}
	w[worst] = int64(math.Ceil(float64(max(1, w[worst])) * factor))
	return w
}

// calibrate estimates start and end temperatures from the cost increase of
// random feasible moves: at the start a median uphill move is accepted with
// probability e^−500 and a small one (5th percentile) with e^−(low/t0), so
// the search is nearly a descent that still drifts across plateaus and small
// ridges; at the end it accepts almost nothing. Hotter schedules did no
// better on the ROADEF sets in the budgets we measured.
func calibrate(s *State, rng *rand.Rand) (float64, float64) {
	var ups []float64
	for i := 0; i < 20000 && len(ups) < 500; i++ {
		p := int32(rng.IntN(s.P))
		m := int32(rng.IntN(s.M))
		if d, ok := s.ShiftDelta(p, m); ok && d > 0 {
			ups = append(ups, d)
		}
	}
	if len(ups) == 0 {
		return 1, 1e-3
	}
	slices.Sort(ups)
	med := ups[len(ups)/2]
	low := ups[len(ups)/20]
	t0 := max(med/500, 1e-6)
	t1 := max(low/5000, t0*1e-5)
	return t0, t1
}
