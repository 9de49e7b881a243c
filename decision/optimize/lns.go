package optimize

import (
	"cmp"
	"math"
	"math/rand/v2"
	"slices"
)

// lnsWork is the scratch space of repack, reused across calls.
type lnsWork struct {
	size  []float64 // process size, for the insertion order
	stamp []int32   // process → call number while the process is lifted
	done  []int32   // process → call number once put back
	to    []int32   // process → slot in ms once put back
	call  int32
	procs []int32
	key   []float64
	idx   []int32
	use   []int64 // len(ms)×R
	tuse  []int64 // len(ms)×R
	cnt   []int32
	undo  []move
}

func newLNSWork(s *State) *lnsWork {
	return &lnsWork{size: s.sizes(), stamp: make([]int32, s.P), done: make([]int32, s.P), to: make([]int32, s.P)}
}

// repack is a large-neighbourhood move: the movable processes on the
// machines ms (a random subset of about maxLift of them when there are more;
// maxLift 0: all) are lifted off and put back, largest first (sizes perturbed by
// noise so that repeated calls explore different packings), on the machine
// of ms where it raises the objective least, ties going to the machine with
// most room left. The insertion respects capacity, transient capacity,
// closed machines, zones and machine conflicts; the rules that span more
// than these machines (spread, dependency, location conflict, the move
// budget) are checked once the result is applied. It applies the packing
// and returns the objective delta and the moves made, for the caller to
// keep or undo; ok is false (nothing applied) when the packing fails or
// breaks a rule, or changes nothing.
//
// Where shift and swap need a chain of uphill steps to trade load between
// machines (a tight multi-resource packing under safety capacities), one
// repack re-solves the packing of those machines as a whole.
func (s *State) repack(rng *rand.Rand, ms []int32, w *lnsWork, maxLift int, noise float64) (float64, []move, bool) {
	R := s.R
	k := len(ms)
	w.undo = w.undo[:0]
	w.call++
	if w.call == math.MaxInt32 {
		clear(w.stamp)
		clear(w.done)
		w.call = 1
	}
	call := w.call
	w.procs = w.procs[:0]
	w.use = append(w.use[:0], make([]int64, k*R)...)
	w.tuse = append(w.tuse[:0], make([]int64, k*R)...)
	w.cnt = append(w.cnt[:0], make([]int32, k)...)
	total := 0
	for _, m := range ms {
		total += int(s.cnt[m])
	}
	// On crowded machines only a random subset is lifted: rebuilding
	// hundreds of processes greedily loses more than it finds.
	keep := 1.0
	if maxLift > 0 && total > maxLift {
		keep = float64(maxLift) / float64(total)
	}
	for j, m := range ms {
		copy(w.use[j*R:j*R+R], s.use[int(m)*R:int(m)*R+R])
		copy(w.tuse[j*R:j*R+R], s.tuse[int(m)*R:int(m)*R+R])
		w.cnt[j] = s.cnt[m]
		for _, p := range s.onM[m] {
			if s.pinned[p] || (keep < 1 && rng.Float64() >= keep) {
				continue
			}
			w.procs = append(w.procs, p)
			w.stamp[p] = call
			d := s.dem[int(p)*R : int(p)*R+R]
			u := w.use[j*R : j*R+R]
			t := w.tuse[j*R : j*R+R]
			for r := range d {
				u[r] -= d[r]
				if s.transient[r] && s.init[p] != m {
					t[r] -= d[r]
				}
			}
			w.cnt[j]--
		}
	}
	if len(w.procs) == 0 {
		return 0, w.undo, false
	}
	w.key = w.key[:0]
	for _, p := range w.procs {
		w.key = append(w.key, w.size[p]*(1+noise*rng.Float64()))
	}
	// Insertion order: key, largest first (sorting indices keeps procs and
	// key aligned).
	w.idx = w.idx[:0]
	for i := range w.procs {
		w.idx = append(w.idx, int32(i))
	}
	idx := w.idx
	slices.SortFunc(idx, func(a, b int32) int { return cmp.Compare(w.key[b], w.key[a]) })
	hardTrans := s.hasTrans
	// Two calls in three discount the move costs (one of them ignores
	// them): a process tends to stay where it started otherwise, and the
	// greedy insertion would mostly rebuild the packing it lifted. The
	// result is accepted on its true cost.
	moveF := 1.0
	switch rng.IntN(3) {
	case 0:
		moveF = 0
	case 1:
		moveF = rng.Float64()
	}
	var buf [maxResources]int64
	for _, i := range idx {
		p := w.procs[i]
		d := s.dem[int(p)*R : int(p)*R+R]
		best, bestD, bestRoom := -1, math.Inf(1), math.Inf(-1)
		for j, m := range ms {
			if !s.canEnter(p, m) {
				continue
			}
			u := w.use[j*R : j*R+R]
			c := s.cap[int(m)*R : int(m)*R+R]
			fits := true
			for r := range d {
				if u[r]+d[r] > c[r] {
					fits = false
					break
				}
			}
			if fits && hardTrans && m != s.init[p] {
				t := w.tuse[j*R : j*R+R]
				for r := range d {
					if s.transient[r] && t[r]+d[r] > c[r] {
						fits = false
						break
					}
				}
			}
			if !fits || !s.repackConflictFree(p, m, ms, call, w) {
				continue
			}
			u2 := buf[:R]
			room := 0.0
			for r := range d {
				u2[r] = u[r] + d[r]
				if sf := s.safety[int(m)*R+r]; sf > 0 {
					room += float64(sf-u2[r]) / float64(sf)
				}
			}
			dd := float64(s.machineInt(int(m), u2, w.cnt[j]+1) - s.machineInt(int(m), u, w.cnt[j]))
			if len(s.floatRes) > 0 {
				dd += s.machineFloat(int(m), u2) - s.machineFloat(int(m), u)
			}
			if m != s.init[p] {
				mc := s.wPMC * s.moveCost[p]
				if s.mmc != nil {
					mc += s.wMMC * int64(s.mmc[int(s.init[p])*s.M+int(m)])
				}
				dd += moveF * float64(mc)
			}
			if dd < bestD-1e-9 || (dd <= bestD+1e-9 && room > bestRoom) {
				best, bestD, bestRoom = j, dd, room
			}
		}
		if best < 0 {
			return 0, w.undo, false
		}
		m := ms[best]
		u := w.use[best*R : best*R+R]
		t := w.tuse[best*R : best*R+R]
		for r := range d {
			u[r] += d[r]
			if s.transient[r] && s.init[p] != m {
				t[r] += d[r]
			}
		}
		w.cnt[best]++
		w.to[p] = int32(best)
		w.done[p] = call
	}
	s.repackDescent(ms, call, w)
	before := s.Cost()
	for _, p := range w.procs {
		m := ms[w.to[p]]
		if from := s.assign[p]; from != m {
			s.Shift(p, m)
			w.undo = append(w.undo, move{p, from})
		}
	}
	if len(w.undo) == 0 {
		return 0, w.undo, false
	}
	ok := s.maxMoves == 0 || s.moved <= s.maxMoves
	for _, m := range ms {
		if !ok {
			break
		}
		ok = !s.over(m)
	}
	for _, mv := range w.undo {
		if !ok {
			break
		}
		ok = s.serviceOK(mv.p, mv.from)
	}
	if !ok {
		s.undo(w.undo)
		return 0, w.undo[:0], false
	}
	return s.Cost() - before, w.undo, true
}

// repackConflictFree reports whether p may join machine m under its
// service's machine conflict while repack has the processes stamped with
// call lifted (those already put back are on ms[w.to]).
func (s *State) repackConflictFree(p, m int32, ms []int32, call int32, w *lnsWork) bool {
	sv := s.svcOf[p]
	if sv < 0 || s.services[sv].Conflict != ConflictMachine {
		return true
	}
	for _, q := range s.svcProcs[sv] {
		if q == p {
			continue
		}
		if w.stamp[q] == call {
			if w.done[q] == call && ms[w.to[q]] == m {
				return false
			}
		} else if s.assign[q] == m {
			return false
		}
	}
	return true
}

// pickRepack chooses k distinct machines for repack into ms: the costliest
// of three random machines (by load, balance and fixed cost), then, each
// the roomier of two random machines (by usage below safety capacity), so
// that load has somewhere to go.
func (s *State) pickRepack(rng *rand.Rand, ms []int32, k int) []int32 {
	ms = ms[:0]
	first := int32(rng.IntN(s.M))
	for t := 0; t < 2; t++ {
		if m := int32(rng.IntN(s.M)); s.intM[m] > s.intM[first] {
			first = m
		}
	}
	ms = append(ms, first)
	for tries := 0; len(ms) < k && tries < 8*k; tries++ {
		m := int32(rng.IntN(s.M))
		if o := int32(rng.IntN(s.M)); s.room(o) > s.room(m) {
			m = o
		}
		if !slices.Contains(ms, m) {
			ms = append(ms, m)
		}
	}
	for len(ms) < k {
		m := int32(rng.IntN(s.M))
		if !slices.Contains(ms, m) {
			ms = append(ms, m)
		}
	}
	return ms
}

// room is machine m's usage below its safety capacity, summed over
// resources as fractions of it; 0 for a closed machine.
func (s *State) room(m int32) float64 {
	if s.closed[m] {
		return 0
	}
	R := s.R
	var v float64
	for r := 0; r < R; r++ {
		if sf := s.safety[int(m)*R+r]; sf > 0 {
			v += float64(sf-s.use[int(m)*R+r]) / float64(sf)
		}
	}
	return v
}

// repackDescent improves repack's greedy packing (in w) by moving single
// lifted processes between the machines ms while that lowers the true
// objective, move costs undiscounted: one pass over the processes, two when
// the first one moved something.
func (s *State) repackDescent(ms []int32, call int32, w *lnsWork) {
	R := s.R
	var b1, b2 [maxResources]int64
	for pass := 0; pass < 2; pass++ {
		improved := false
		for _, p := range w.procs {
			d := s.dem[int(p)*R : int(p)*R+R]
			j := int(w.to[p])
			m := ms[j]
			u := w.use[j*R : j*R+R]
			u1 := b1[:R]
			for r := range d {
				u1[r] = u[r] - d[r]
			}
			out := float64(s.machineInt(int(m), u1, w.cnt[j]-1) - s.machineInt(int(m), u, w.cnt[j]))
			if len(s.floatRes) > 0 {
				out += s.machineFloat(int(m), u1) - s.machineFloat(int(m), u)
			}
			out -= float64(s.placeMoveCost(p, m))
			best, bestD := -1, -1e-9
			for j2, m2 := range ms {
				if j2 == j || !s.canEnter(p, m2) {
					continue
				}
				v := w.use[j2*R : j2*R+R]
				c := s.cap[int(m2)*R : int(m2)*R+R]
				u2 := b2[:R]
				fits := true
				for r := range d {
					u2[r] = v[r] + d[r]
					if u2[r] > c[r] {
						fits = false
						break
					}
				}
				if fits && s.hasTrans && m2 != s.init[p] {
					t := w.tuse[j2*R : j2*R+R]
					for r := range d {
						if s.transient[r] && t[r]+d[r] > c[r] {
							fits = false
							break
						}
					}
				}
				if !fits {
					continue
				}
				in := float64(s.machineInt(int(m2), u2, w.cnt[j2]+1) - s.machineInt(int(m2), v, w.cnt[j2]))
				if len(s.floatRes) > 0 {
					in += s.machineFloat(int(m2), u2) - s.machineFloat(int(m2), v)
				}
				in += float64(s.placeMoveCost(p, m2))
				if dd := out + in; dd < bestD && s.repackConflictFree(p, m2, ms, call, w) {
					best, bestD = j2, dd
				}
			}
			if best < 0 {
				continue
			}
			m2 := ms[best]
			v := w.use[best*R : best*R+R]
			t1 := w.tuse[j*R : j*R+R]
			t2 := w.tuse[best*R : best*R+R]
			for r := range d {
				u[r] -= d[r]
				v[r] += d[r]
				if s.transient[r] {
					if m != s.init[p] {
						t1[r] -= d[r]
					}
					if m2 != s.init[p] {
						t2[r] += d[r]
					}
				}
			}
			w.cnt[j]--
			w.cnt[best]++
			w.to[p] = int32(best)
			improved = true
		}
		if !improved {
			return
		}
	}
}

// placeMoveCost is the weighted process and machine move cost of p ending
// on m.
func (s *State) placeMoveCost(p, m int32) int64 {
	if m == s.init[p] {
		return 0
	}
	c := s.wPMC * s.moveCost[p]
	if s.mmc != nil {
		c += s.wMMC * int64(s.mmc[int(s.init[p])*s.M+int(m)])
	}
	return c
}
