// Package bounds computes lower bounds reported beside every plan, so that a
// plan's efficacy is judged against the best any plan could do and not only
// against the cluster before:
//
//   - L1 and L2 (Martello–Toth) bin-packing bounds on the number of hosts any
//     placement needs, per resource dimension, the maximum over dimensions
//     being a bound for the vector problem, and a joint L1 over pairs of
//     dimensions for hosts whose sizes differ (the same hosts must hold
//     every resource: surrogate relaxation);
//   - a balance floor on the standard deviation of host utilisation.
//
// Inputs are plain numbers (item sizes and host capacities); the package
// knows nothing of the cluster model. Cost is O(n log n) per dimension.
package bounds

import (
	"cmp"
	"math"
	"slices"
)

// Dimension is one resource: the items' sizes and the hosts' capacities in
// the same unit.
type Dimension struct {
	Name       string
	Items      []float64
	Capacities []float64
}

// DimensionBound is the bound found in one dimension.
type DimensionBound struct {
	Name string `json:"name"`
	L1   int    `json:"l1"`
	L2   int    `json:"l2"`
}

// Hosts is the bin-packing bound on the hosts needed.
type Hosts struct {
	// L1 is the continuous bound: the fewest largest hosts whose capacity
	// covers the total demand, maximised over dimensions.
	L1 int `json:"l1"`
	// L2 is Martello and Toth's bound computed with the largest capacity,
	// maximised with L1 and over dimensions; no placement uses fewer hosts.
	L2 int `json:"l2"`
	// Joint is the surrogate-relaxation bound over pairs of dimensions
	// (see jointL1); it is already counted in L1 and L2.
	Joint int `json:"joint,omitempty"`
	// Dimensions holds the per-dimension values.
	Dimensions []DimensionBound `json:"dimensions"`
	// Infeasible is true when some item is larger than every host.
	Infeasible bool `json:"infeasible,omitempty"`
}

// HostsNeeded computes L1 and L2 over the dimensions.
func HostsNeeded(dims []Dimension) Hosts {
	var h Hosts
	for _, d := range dims {
		l1, inf := l1Hetero(d.Items, d.Capacities)
		cmax := 0.0
		for _, c := range d.Capacities {
			cmax = max(cmax, c)
		}
		l2 := max(l1, l2Bound(d.Items, cmax))
		h.Dimensions = append(h.Dimensions, DimensionBound{Name: d.Name, L1: l1, L2: l2})
		h.L1 = max(h.L1, l1)
		h.L2 = max(h.L2, l2)
		h.Infeasible = h.Infeasible || inf
	}
	if !h.Infeasible {
		h.Joint = jointL1(dims)
		h.L1 = max(h.L1, h.Joint)
		h.L2 = max(h.L2, h.Joint)
	}
	return h
}

// jointSteps is how finely jointL1 samples the weight between two
// dimensions.
const jointSteps = 16

// jointL1 is the continuous bound with the same hosts in every dimension.
// Any set of hosts that holds every resource also holds every non-negative
// combination of them, so for weights λ the fewest hosts, largest in
// Σ λ_d·cap_d first, whose combined capacity covers Σ λ_d·demand_d is a
// bound (a surrogate relaxation). Each dimension alone is L1; mixing two
// is stronger when the hosts large in one are small in the other. It
// samples λ on every pair of dimensions, demands normalised to 1, and
// returns the best bound found (0 with fewer than two dimensions or hosts
// listed differently across dimensions).
func jointL1(dims []Dimension) int {
	if len(dims) < 2 {
		return 0
	}
	n := len(dims[0].Capacities)
	totals := make([]float64, len(dims))
	for d, dim := range dims {
		if len(dim.Capacities) != n {
			return 0
		}
		for _, w := range dim.Items {
			totals[d] += w
		}
	}
	best := 0
	comb := make([]float64, n)
	for a := 0; a < len(dims); a++ {
		for b := a + 1; b < len(dims); b++ {
			if totals[a] <= eps || totals[b] <= eps {
				continue
			}
			for step := 1; step < jointSteps; step++ {
				la := float64(step) / jointSteps
				wa, wb := la/totals[a], (1-la)/totals[b]
				for h := range comb {
					comb[h] = wa*dims[a].Capacities[h] + wb*dims[b].Capacities[h]
				}
				slices.SortFunc(comb, func(x, y float64) int { return cmp.Compare(y, x) })
				var sum float64
				for k, v := range comb {
					sum += v
					if sum >= 1-eps {
						best = max(best, k+1)
						break
					}
				}
			}
		}
	}
	return best
}

// eps absorbs float rounding in sums of sizes.
const eps = 1e-9

// l1Hetero is the smallest k such that the k largest capacities cover the
// total size.
func l1Hetero(items, caps []float64) (int, bool) {
	var total float64
	for _, w := range items {
		total += w
	}
	if total <= eps {
		return 0, false
	}
	c := slices.Clone(caps)
	slices.SortFunc(c, func(a, b float64) int { return cmp.Compare(b, a) })
	var sum float64
	for k, v := range c {
		sum += v
		if sum >= total*(1-eps) {
			return k + 1, false
		}
	}
	return len(c), true
}

// l2Bound is Martello and Toth's L2 for identical bins of capacity c:
// max over K in [0, c/2] of |J1| + |J2| + max(0, ⌈(ΣJ3 − (|J2|c − ΣJ2))/c⌉)
// with J1 = {w > c−K}, J2 = {c/2 < w ≤ c−K}, J3 = {K ≤ w ≤ c/2}.
func l2Bound(items []float64, c float64) int {
	if c <= 0 || len(items) == 0 {
		return 0
	}
	w := slices.Clone(items)
	slices.SortFunc(w, func(a, b float64) int { return cmp.Compare(b, a) }) // descending
	n := len(w)
	prefix := make([]float64, n+1)
	for i, v := range w {
		prefix[i+1] = prefix[i] + v
	}
	// countAbove returns how many items are > x (items sorted descending).
	countAbove := func(x float64) int {
		return searchDesc(w, func(v float64) bool { return v <= x+eps })
	}
	countAtLeast := func(x float64) int {
		return searchDesc(w, func(v float64) bool { return v < x-eps })
	}
	best := 0
	half := c / 2
	// Candidate K: 0 and every distinct size ≤ c/2.
	ks := []float64{0}
	for i := n - 1; i >= 0; i-- {
		if w[i] <= half+eps && (len(ks) == 0 || w[i] != ks[len(ks)-1]) {
			ks = append(ks, w[i])
		}
	}
	nHalf := countAbove(half)
	for _, k := range ks {
		j1 := countAbove(c - k)
		j2 := nHalf - j1
		if j2 < 0 {
			j2 = 0
		}
		sumJ2 := prefix[j1+j2] - prefix[j1]
		j3end := countAtLeast(k)
		sumJ3 := prefix[j3end] - prefix[nHalf]
		extra := 0
		if rest := sumJ3 - (float64(j2)*c - sumJ2); rest > eps {
			extra = int(math.Ceil(rest/c - eps))
		}
		best = max(best, j1+j2+extra)
	}
	return best
}

// searchDesc returns the first index i in descending w with stop(w[i]) true
// (binary search).
func searchDesc(w []float64, stop func(float64) bool) int {
	lo, hi := 0, len(w)
	for lo < hi {
		mid := (lo + hi) / 2
		if stop(w[mid]) {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo
}

// Balance is the floor on the population standard deviation of host
// utilisation (load / capacity) that any placement of the items reaches.
type Balance struct {
	// Mean is the utilisation if the load were spread perfectly.
	Mean float64 `json:"mean"`
	// StdDevFloor is the lower bound on the standard deviation.
	StdDevFloor float64 `json:"std_dev_floor"`
	// MaxUtilizationFloor is a lower bound on the busiest host's
	// utilisation: max(mean, largest item on the largest host).
	MaxUtilizationFloor float64 `json:"max_utilization_floor"`
}

// BalanceFloor computes the floor for one metric. Items that cannot be
// split put a host at least at p1/Cmax; with H hosts and mean μ the standard
// deviation is then at least (a − μ)/√(H−1) when a > μ (the other hosts
// sharing the rest evenly). With identical hosts the granularity of the
// items adds the discrete floor g·√(f(1−f)) on loads (g the common size,
// f the fractional part of S/(gH)), which is usually the larger of the two.
func BalanceFloor(items, caps []float64) Balance {
	H := len(caps)
	if H == 0 {
		return Balance{}
	}
	var total, capTotal, cmax, cmin, p1 float64
	cmin = math.Inf(1)
	for _, c := range caps {
		capTotal += c
		cmax = max(cmax, c)
		cmin = min(cmin, c)
	}
	for _, w := range items {
		total += w
		p1 = max(p1, w)
	}
	if capTotal <= 0 {
		return Balance{}
	}
	b := Balance{Mean: total / capTotal}
	a := 0.0
	if cmax > 0 {
		a = p1 / cmax
	}
	b.MaxUtilizationFloor = max(b.Mean, a)
	if H > 1 && a > b.Mean {
		b.StdDevFloor = (a - b.Mean) / math.Sqrt(float64(H-1))
	}
	if cmin == cmax && len(items) > 0 {
		g := granularity(items)
		if g > 0 {
			x := total / (g * float64(H))
			f := x - math.Floor(x)
			if d := g * math.Sqrt(f*(1-f)) / cmax; d > b.StdDevFloor {
				b.StdDevFloor = d
			}
		}
	}
	return b
}

// granularity returns the greatest common size of integer-valued items, or
// 0 when sizes are not integers (continuous loads have no discrete floor).
func granularity(items []float64) float64 {
	var g int64
	for _, w := range items {
		if w != math.Trunc(w) || w < 0 || w > 1e15 {
			return 0
		}
		g = gcd(g, int64(w))
		if g == 1 {
			return 1
		}
	}
	return float64(g)
}

func gcd(a, b int64) int64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// StdDev returns the population standard deviation of values.
func StdDev(values []float64) float64 {
	if len(values) == 0 {
		return 0
	}
	var mean float64
	for _, v := range values {
		mean += v
	}
	mean /= float64(len(values))
	var ss float64
	for _, v := range values {
		ss += (v - mean) * (v - mean)
	}
	return math.Sqrt(ss / float64(len(values)))
}
