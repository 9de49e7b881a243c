package optimize

import "math"

// fitIndex finds machines with room for a process in O(R log M) per query on
// typical inputs: a segment tree over machines in a chosen order whose nodes
// hold, per resource, the largest free capacity below them. A subtree whose
// maximum free capacity is short in any resource cannot hold the process and
// is skipped, so most queries touch a few root-to-leaf paths.
type fitIndex struct {
	s     *State
	order []int32 // leaf position → machine
	leaf  []int32 // machine → leaf position, -1 if absent
	size  int
	free  []int64 // node × R
	off   []bool  // machine excluded from queries
}

const noRoom = math.MinInt64 / 4

func newFitIndex(s *State, order []int32) *fitIndex {
	size := 1
	for size < len(order) {
		size *= 2
	}
	f := &fitIndex{s: s, order: order, size: size, leaf: make([]int32, s.M), off: make([]bool, s.M)}
	for m := range f.leaf {
		f.leaf[m] = -1
	}
	f.free = make([]int64, 2*size*s.R)
	for i := range f.free {
		f.free[i] = noRoom
	}
	for i, m := range order {
		f.leaf[m] = int32(i)
		f.setLeaf(m)
	}
	for n := size - 1; n >= 1; n-- {
		f.pull(n)
	}
	return f
}

// machineFree writes into out the room machine m has for an arriving process
// that did not start there: capacity minus usage, and minus transient usage
// for transient resources.
func (f *fitIndex) machineFree(m int32, out []int64) {
	s := f.s
	R := s.R
	if f.off[m] || s.closed[m] {
		for r := range out {
			out[r] = noRoom
		}
		return
	}
	for r := 0; r < R; r++ {
		u := s.use[int(m)*R+r]
		if s.transient[r] {
			u = max(u, s.tuse[int(m)*R+r])
		}
		out[r] = s.cap[int(m)*R+r] - u
	}
}

func (f *fitIndex) setLeaf(m int32) {
	R := f.s.R
	n := f.size + int(f.leaf[m])
	f.machineFree(m, f.free[n*R:n*R+R])
}

func (f *fitIndex) pull(n int) {
	R := f.s.R
	a, b, o := f.free[2*n*R:2*n*R+R], f.free[(2*n+1)*R:(2*n+1)*R+R], f.free[n*R:n*R+R]
	for r := range o {
		o[r] = max(a[r], b[r])
	}
}

// update refreshes machine m after its usage or exclusion changed.
func (f *fitIndex) update(m int32) {
	if f.leaf[m] < 0 {
		return
	}
	f.setLeaf(m)
	for n := (f.size + int(f.leaf[m])) / 2; n >= 1; n /= 2 {
		f.pull(n)
	}
}

// exclude keeps machine m out of (or back in) query results.
func (f *fitIndex) exclude(m int32, off bool) {
	f.off[m] = off
	f.update(m)
}

// visit calls fn, in tree order, for every machine whose free capacity covers
// demand d, until fn returns false.
func (f *fitIndex) visit(d []int64, fn func(m int32) bool) {
	f.walk(1, d, fn)
}

func (f *fitIndex) walk(n int, d []int64, fn func(m int32) bool) bool {
	R := f.s.R
	fr := f.free[n*R : n*R+R]
	for r := range d {
		if fr[r] < d[r] {
			return true
		}
	}
	if n >= f.size {
		return fn(f.order[n-f.size])
	}
	return f.walk(2*n, d, fn) && f.walk(2*n+1, d, fn)
}
