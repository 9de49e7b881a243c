package optimize

import (
	"math"
	"math/rand/v2"
)

// move is one applied shift, kept to undo a compound move.
type move struct{ p, from int32 }

// over reports whether machine m is above capacity in some resource
// (transient usage included unless the transient constraint is soft).
func (s *State) over(m int32) bool {
	R := s.R
	u := s.use[int(m)*R : int(m)*R+R]
	c := s.cap[int(m)*R : int(m)*R+R]
	for r := range u {
		if u[r] > c[r] {
			return true
		}
	}
	if s.hasTrans && !s.softTrans {
		t := s.tuse[int(m)*R : int(m)*R+R]
		for r := range t {
			if s.transient[r] && t[r] > c[r] {
				return true
			}
		}
	}
	return false
}

// eject is an ejection chain (the 2012 winners' "big process
// rearrangement"): p moves to m although m lacks room, then processes leave
// m, each to the best of tries random machines, until m fits again and
// further while leaving improves the objective (at most maxEject of them). It applies the moves and returns the objective delta
// and the moves made, for the caller to keep or undo; ok is false (nothing
// applied) when the chain cannot restore feasibility. It is what moves a
// large process onto a machine filled with small ones.
func (s *State) eject(rng *rand.Rand, p, m int32, maxEject, tries int, undo []move) (float64, []move, bool) {
	undo = undo[:0]
	m1 := s.assign[p]
	if m1 == m || s.pinned[p] || !s.canEnter(p, m) {
		return 0, undo, false
	}
	if sv := s.svcOf[p]; sv >= 0 && !s.serviceAllowsShift(p, sv, m1, m) {
		return 0, undo, false
	}
	if s.maxMoves > 0 && s.moveChange(p, m1, m) > 0 && s.moved+1 > s.maxMoves {
		return 0, undo, false
	}
	before := s.Cost()
	s.Shift(p, m)
	undo = append(undo, move{p, m1})
	for k := 0; k < maxEject; k++ {
		over := s.over(m)
		l := s.onM[m]
		bestQ, bestM, bestD := int32(-1), int32(-1), math.Inf(1)
		for t := 0; t < tries; t++ {
			q := l[rng.IntN(len(l))]
			if q == p {
				continue
			}
			dst := int32(rng.IntN(s.M))
			if d, ok := s.ShiftDelta(q, dst); ok && d < bestD {
				bestQ, bestM, bestD = q, dst, d
			}
		}
		// Past the capacity, keep ejecting only while it pays (the load
		// above m's safety capacity, typically).
		if bestQ < 0 || (!over && bestD >= 0) {
			break
		}
		s.Shift(bestQ, bestM)
		undo = append(undo, move{bestQ, m})
	}
	if s.over(m) {
		s.undo(undo)
		return 0, undo[:0], false
	}
	return s.Cost() - before, undo, true
}

// undo reverts moves in reverse order.
func (s *State) undo(moves []move) {
	for i := len(moves) - 1; i >= 0; i-- {
		s.Shift(moves[i].p, moves[i].from)
	}
}
