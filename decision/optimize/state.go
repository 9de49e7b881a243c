package optimize

import (
	"fmt"
	"math"
	"slices"
)

// State is an assignment of every process to a machine, with the usage,
// service counters and cost kept up to date incrementally. It is not safe
// for concurrent use; Clone it for another goroutine.
type State struct {
	pb        *Problem
	R, M, P   int
	N, L, S   int
	dem       []int64 // P×R
	cap       []int64 // M×R
	safety    []int64 // M×R
	invCap    []float64
	transient []bool
	hasTrans  bool
	loadW     []int64
	balW      []float64
	packW     []float64
	floatRes  []int // resources with a balance or pack weight
	mu        []float64
	mLoc      []int32
	mNb       []int32
	closed    []bool
	evac      []bool
	fixedCost []int64
	init      []int32
	pinned    []bool
	zone      []int32
	svcOf     []int32
	moveCost  []int64
	mmc       []int32
	wPMC      int64
	wSMC      int64
	wMMC      int64
	maxMoves  int
	services  []Service
	svcProcs  [][]int32
	rdeps     [][]int32
	hasDeps   bool

	// Mutable state.
	assign  []int32
	use     []int64 // M×R
	tuse    []int64 // M×R, transient resources only
	cnt     []int32
	onM     [][]int32
	pos     []int32
	svcLoc  []int32 // S×L
	svcNLoc []int32
	svcNb   []int32 // S×N
	moved   int
	svcMov  []int32
	smcHist []int32
	smcMax  int32

	intM       []int64   // per-machine integer cost (load, balance, fixed)
	floatM     []float64 // per-machine float cost (variance, pack)
	loadCost   []int64   // per resource, unweighted
	balCost    []int64   // per balance, unweighted
	pmc        int64
	mmcSum     int64
	active     int
	intTotal   int64 // Σ intM
	floatTotal float64

	// softTrans turns the transient capacity into a penalty of transW per
	// unit of overflow (transOver), for searches that oscillate through
	// infeasible space.
	softTrans bool
	transW    float64
	transOver int64
	// tscale weighs each transient resource's overflow in the penalty
	// (nil: 1 each); transOverW is the weighted overflow.
	tscale     []float64
	transOverW float64

	// tprice, when set, charges each process away from its initial
	// machine its transient demand at a price per unit (SetTransientPrice):
	// a search term, not part of the problem's cost.
	tprice    []float64
	tpriceSum float64
}

// NewState builds the state of p under assign (nil: every process on its
// initial machine). The problem must not change while the state is in use.
func NewState(p *Problem, assign []int32) (*State, error) {
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("invalid problem: %w", err)
	}
	s := &State{pb: p, R: len(p.Resources), M: len(p.Machines), P: len(p.Processes), S: len(p.Services)}
	R, M, P := s.R, s.M, s.P
	for _, m := range p.Machines {
		s.N = max(s.N, int(m.Neighborhood)+1)
		s.L = max(s.L, int(m.Location)+1)
	}
	s.dem = make([]int64, P*R)
	s.init = make([]int32, P)
	s.pinned = make([]bool, P)
	s.zone = make([]int32, P)
	s.svcOf = make([]int32, P)
	s.moveCost = make([]int64, P)
	for i, pr := range p.Processes {
		copy(s.dem[i*R:], pr.Demand)
		s.init[i] = pr.Initial
		s.pinned[i] = pr.Pinned
		s.zone[i] = pr.Zone
		if int(pr.Zone) >= s.L {
			s.zone[i] = math.MaxInt32 // a zone no machine has: the process cannot move
		}
		s.svcOf[i] = pr.Service
		s.moveCost[i] = pr.MoveCost
	}
	s.cap = make([]int64, M*R)
	s.safety = make([]int64, M*R)
	s.invCap = make([]float64, M*R)
	s.mLoc = make([]int32, M)
	s.mNb = make([]int32, M)
	s.closed = make([]bool, M)
	s.evac = make([]bool, M)
	s.fixedCost = make([]int64, M)
	for m, mc := range p.Machines {
		copy(s.cap[m*R:], mc.Capacity)
		if mc.Safety != nil {
			copy(s.safety[m*R:], mc.Safety)
		} else {
			copy(s.safety[m*R:], mc.Capacity)
		}
		for r, c := range mc.Capacity {
			if c > 0 {
				s.invCap[m*R+r] = 1 / float64(c)
			}
		}
		s.mLoc[m] = mc.Location
		s.mNb[m] = mc.Neighborhood
		s.closed[m] = mc.Closed || mc.Evacuate
		s.evac[m] = mc.Evacuate
		s.fixedCost[m] = mc.FixedCost
	}
	s.transient = make([]bool, R)
	s.loadW = make([]int64, R)
	s.balW = make([]float64, R)
	s.packW = make([]float64, R)
	for r, res := range p.Resources {
		s.transient[r] = res.Transient
		s.hasTrans = s.hasTrans || res.Transient
		s.loadW[r] = res.LoadWeight
		s.balW[r] = res.BalanceWeight
		s.packW[r] = res.PackWeight
		if res.BalanceWeight != 0 || res.PackWeight != 0 {
			s.floatRes = append(s.floatRes, r)
		}
	}
	// μ is the utilisation every open machine would have if the whole
	// load were spread evenly over the open machines.
	s.mu = make([]float64, R)
	for r := 0; r < R; r++ {
		var load, capOpen float64
		for i := 0; i < P; i++ {
			load += float64(s.dem[i*R+r])
		}
		for m := 0; m < M; m++ {
			if !s.closed[m] {
				capOpen += float64(s.cap[m*R+r])
			}
		}
		if capOpen > 0 {
			s.mu[r] = load / capOpen
		}
	}
	s.mmc = p.MachineMoveCost
	s.wPMC, s.wSMC, s.wMMC = p.ProcessMoveWeight, p.ServiceMoveWeight, p.MachineMoveWeight
	s.maxMoves = p.MaxMoves
	s.services = p.Services
	s.svcProcs = make([][]int32, s.S)
	s.rdeps = make([][]int32, s.S)
	for i := range p.Processes {
		if sv := s.svcOf[i]; sv >= 0 {
			s.svcProcs[sv] = append(s.svcProcs[sv], int32(i))
		}
	}
	for sv, svc := range p.Services {
		for _, d := range svc.DependsOn {
			s.rdeps[d] = append(s.rdeps[d], int32(sv))
			s.hasDeps = true
		}
	}

	if assign == nil {
		assign = s.init
	}
	if len(assign) != P {
		return nil, fmt.Errorf("assignment: %d entries, want %d", len(assign), P)
	}
	s.assign = slices.Clone(assign)
	for i, m := range s.assign {
		if m < 0 || int(m) >= M {
			return nil, fmt.Errorf("assignment[%d]: %d is not a machine", i, m)
		}
	}
	s.rebuild()
	return s, nil
}

// rebuild recomputes every derived table from assign.
func (s *State) rebuild() {
	R, M := s.R, s.M
	s.use = make([]int64, M*R)
	s.tuse = make([]int64, M*R)
	s.cnt = make([]int32, M)
	s.onM = make([][]int32, M)
	s.pos = make([]int32, s.P)
	s.svcLoc = make([]int32, s.S*s.L)
	s.svcNLoc = make([]int32, s.S)
	s.svcNb = make([]int32, s.S*s.N)
	s.svcMov = make([]int32, s.S)
	s.smcHist = make([]int32, 1)
	s.moved = 0
	s.pmc, s.mmcSum = 0, 0
	s.transOver = 0
	s.transOverW = 0
	s.tpriceSum = 0
	for i, m := range s.assign {
		p := int32(i)
		d := s.dem[i*R : i*R+R]
		u := s.use[int(m)*R : int(m)*R+R]
		for r := range d {
			u[r] += d[r]
		}
		if s.hasTrans {
			s.addTransient(p, m, 1)
			if s.init[i] != m {
				s.addTransient(p, s.init[i], 1)
			}
		}
		s.cnt[m]++
		s.pos[i] = int32(len(s.onM[m]))
		s.onM[m] = append(s.onM[m], p)
		if sv := s.svcOf[i]; sv >= 0 {
			if s.svcLoc[int(sv)*s.L+int(s.mLoc[m])] == 0 {
				s.svcNLoc[sv]++
			}
			s.svcLoc[int(sv)*s.L+int(s.mLoc[m])]++
			s.svcNb[int(sv)*s.N+int(s.mNb[m])]++
		}
		if m != s.init[i] {
			s.moved++
			s.pmc += s.moveCost[i]
			if s.tprice != nil {
				s.tpriceSum += s.tprice[i]
			}
			if s.mmc != nil {
				s.mmcSum += int64(s.mmc[int(s.init[i])*M+int(m)])
			}
			if sv := s.svcOf[i]; sv >= 0 {
				s.svcMov[sv]++
			}
		}
	}
	for sv := 0; sv < s.S; sv++ {
		c := s.svcMov[sv]
		for int(c) >= len(s.smcHist) {
			s.smcHist = append(s.smcHist, 0)
		}
		s.smcHist[c]++
	}
	// The histogram must cover every count a service can reach.
	maxSvc := 0
	for _, l := range s.svcProcs {
		maxSvc = max(maxSvc, len(l))
	}
	for len(s.smcHist) <= maxSvc+1 {
		s.smcHist = append(s.smcHist, 0)
	}
	s.smcMax = 0
	for c := len(s.smcHist) - 1; c > 0; c-- {
		if s.smcHist[c] > 0 {
			s.smcMax = int32(c)
			break
		}
	}
	s.intM = make([]int64, M)
	s.floatM = make([]float64, M)
	s.loadCost = make([]int64, R)
	s.balCost = make([]int64, len(s.pb.Balances))
	s.active, s.intTotal, s.floatTotal = 0, 0, 0
	for m := 0; m < M; m++ {
		s.intM[m] = s.machineInt(m, s.use[m*R:m*R+R], s.cnt[m])
		s.floatM[m] = s.machineFloat(m, s.use[m*R:m*R+R])
		s.intTotal += s.intM[m]
		s.floatTotal += s.floatM[m]
		if s.cnt[m] > 0 {
			s.active++
		}
		for r := 0; r < R; r++ {
			s.loadCost[r] += max(0, s.use[m*R+r]-s.safety[m*R+r])
		}
		for b, bl := range s.pb.Balances {
			s.balCost[b] += s.balanceTerm(m, bl, s.use[m*R:m*R+R])
		}
	}
}

// addTransient adds (sign=1) or removes (sign=-1) p's transient demand on m.
func (s *State) addTransient(p, m int32, sign int64) {
	R := s.R
	d := s.dem[int(p)*R : int(p)*R+R]
	t := s.tuse[int(m)*R : int(m)*R+R]
	c := s.cap[int(m)*R : int(m)*R+R]
	for r := range d {
		if s.transient[r] && d[r] != 0 {
			before := max(0, t[r]-c[r])
			t[r] += sign * d[r]
			dv := max(0, t[r]-c[r]) - before
			s.transOver += dv
			if dv != 0 {
				s.transOverW += s.tw(r) * float64(dv)
			}
		}
	}
}

// transientPenalty is the change of weighted transient overflow (each
// resource's by tw) on machine m if p's transient demand were added
// (sign=1) or removed (sign=-1).
func (s *State) transientPenalty(p, m int32, sign int64) float64 {
	R := s.R
	d := s.dem[int(p)*R : int(p)*R+R]
	t := s.tuse[int(m)*R : int(m)*R+R]
	c := s.cap[int(m)*R : int(m)*R+R]
	var v float64
	for r := range d {
		if s.transient[r] && d[r] != 0 {
			if dv := max(0, t[r]+sign*d[r]-c[r]) - max(0, t[r]-c[r]); dv != 0 {
				v += s.tw(r) * float64(dv)
			}
		}
	}
	return v
}

// SetTransientScale weighs each transient resource's overflow in the
// penalty by scale[r] (nil: 1 each).
func (s *State) SetTransientScale(scale []float64) {
	s.tscale = scale
	s.transOverW = 0
	for m := 0; m < s.M; m++ {
		for r := 0; r < s.R; r++ {
			if s.transient[r] {
				s.transOverW += s.tw(r) * float64(max(0, s.tuse[m*s.R+r]-s.cap[m*s.R+r]))
			}
		}
	}
}

// transientRoomScale is, per transient resource, the mean over transient
// resources of the room the initial assignment leaves (capacity − demand,
// summed over machines) divided by the resource's own: a unit of a scarce
// resource's room weighs more. Resources are measured in unrelated units;
// this puts them on one scale.
func (s *State) transientRoomScale() []float64 {
	room := make([]float64, s.R)
	var sum float64
	n := 0
	for r := range room {
		if !s.transient[r] {
			continue
		}
		for m := 0; m < s.M; m++ {
			room[r] += float64(s.cap[m*s.R+r])
		}
		for p := 0; p < s.P; p++ {
			room[r] -= float64(s.dem[p*s.R+r])
		}
		room[r] = max(room[r], 1)
		sum += room[r]
		n++
	}
	scale := make([]float64, s.R)
	for r := range scale {
		if s.transient[r] {
			scale[r] = sum / float64(n) / room[r]
		}
	}
	return scale
}

// tw is transient resource r's weight in the overflow penalty.
func (s *State) tw(r int) float64 {
	if s.tscale == nil {
		return 1
	}
	return s.tscale[r]
}

// SetSoftTransient makes the transient capacity a penalty of w per unit of
// overflow (w > 0) or a hard constraint again (w = 0). Only states whose
// TransientOverflow is 0 are feasible.
func (s *State) SetSoftTransient(w float64) {
	s.softTrans = w > 0 && s.hasTrans
	s.transW = w
}

// SetTransientPrice charges every process away from its initial machine
// price[r] per unit of its demand of each transient resource r, as a search
// term: the room a moved process holds on its initial machine is then worth
// something to the search before it runs out. nil removes the term.
func (s *State) SetTransientPrice(price []float64) {
	if price == nil || !s.hasTrans {
		s.tprice, s.tpriceSum = nil, 0
		return
	}
	R := s.R
	s.tprice = make([]float64, s.P)
	s.tpriceSum = 0
	for p := range s.tprice {
		d := s.dem[p*R : p*R+R]
		for r := range d {
			if s.transient[r] && r < len(price) {
				s.tprice[p] += price[r] * float64(d[r])
			}
		}
		if s.assign[p] != s.init[p] {
			s.tpriceSum += s.tprice[p]
		}
	}
}

// SetLoadWeights replaces the per-resource load weights the search uses
// (nil restores the problem's) and recomputes the cached machine costs.
// While they differ from the problem's, Cost is not the problem's objective:
// a search perturbs them to leave a local optimum (one resource's overload
// priced higher for a while) and restores them before judging assignments.
func (s *State) SetLoadWeights(w []int64) {
	if w == nil {
		w = make([]int64, s.R)
		for r, res := range s.pb.Resources {
			w[r] = res.LoadWeight
		}
	}
	s.loadW = w
	s.intTotal = 0
	R := s.R
	for m := 0; m < s.M; m++ {
		s.intM[m] = s.machineInt(m, s.use[m*R:m*R+R], s.cnt[m])
		s.intTotal += s.intM[m]
	}
}

// LoadCost is the unweighted load cost of resource r.
func (s *State) LoadCost(r int) int64 { return s.loadCost[r] }

// TrueCost is the objective without the search's penalty and price terms.
func (s *State) TrueCost() float64 { return float64(s.exact()) + s.floatTotal }

// TransientOverflow is the total transient usage above capacity.
func (s *State) TransientOverflow() int64 { return s.transOver }

func (s *State) balanceTerm(m int, bl Balance, u []int64) int64 {
	R := s.R
	a1 := s.cap[m*R+bl.R1] - u[bl.R1]
	a2 := s.cap[m*R+bl.R2] - u[bl.R2]
	return max(0, bl.Target*a1-a2)
}

// machineInt is the weighted integer cost of machine m at usage u with n
// processes: load cost, balance cost and fixed cost.
func (s *State) machineInt(m int, u []int64, n int32) int64 {
	R := s.R
	var c int64
	sf := s.safety[m*R : m*R+R]
	for r := range u {
		if over := u[r] - sf[r]; over > 0 {
			c += s.loadW[r] * over
		}
	}
	for _, bl := range s.pb.Balances {
		c += bl.Weight * s.balanceTerm(m, bl, u)
	}
	if n > 0 {
		c += s.fixedCost[m]
	}
	return c
}

// machineFloat is the weighted variance and packing cost of machine m at
// usage u.
func (s *State) machineFloat(m int, u []int64) float64 {
	if len(s.floatRes) == 0 {
		return 0
	}
	R := s.R
	var c float64
	for _, r := range s.floatRes {
		x := float64(u[r]) * s.invCap[m*R+r]
		if w := s.balW[r]; w != 0 && !s.closed[m] {
			d := x - s.mu[r]
			c += w * d * d
		}
		if w := s.packW[r]; w != 0 {
			c -= w * x * x
		}
	}
	return c
}

// Problem returns the problem the state belongs to.
func (s *State) Problem() *Problem { return s.pb }

// Machine returns the machine process p is on.
func (s *State) Machine(p int32) int32 { return s.assign[p] }

// Assignment returns a copy of the current assignment.
func (s *State) Assignment() []int32 { return slices.Clone(s.assign) }

// On returns the processes on machine m. The slice is owned by the state and
// changes with the next move.
func (s *State) On(m int32) []int32 { return s.onM[m] }

// Count returns the number of processes on machine m.
func (s *State) Count(m int32) int { return int(s.cnt[m]) }

// Moved returns how many processes are away from their initial machine.
func (s *State) Moved() int { return s.moved }

// Active returns how many machines run at least one process.
func (s *State) Active() int { return s.active }

// Usage returns machine m's usage of resource r.
func (s *State) Usage(m int32, r int) int64 { return s.use[int(m)*s.R+r] }

// Utilization returns machine m's usage of resource r over its capacity.
func (s *State) Utilization(m int32, r int) float64 {
	return float64(s.use[int(m)*s.R+r]) * s.invCap[int(m)*s.R+r]
}

// Closed reports whether machine m may not receive processes.
func (s *State) Closed(m int32) bool { return s.closed[m] }

// Movable reports whether process p may move at all.
func (s *State) Movable(p int32) bool { return !s.pinned[p] }

// Cost returns the total objective.
func (s *State) Cost() float64 {
	c := float64(s.exact()) + s.floatTotal
	if s.softTrans {
		c += s.transW * s.transOverW
	}
	return c + s.tpriceSum
}

// exact is the weighted sum of the integer terms.
func (s *State) exact() int64 {
	return s.intTotal + s.wPMC*s.pmc + s.wSMC*int64(s.smcMax) + s.wMMC*s.mmcSum
}

// Cost is the objective broken down by term.
type Cost struct {
	// Load and Balance are the unweighted ROADEF load cost per resource and
	// balance cost per balance objective.
	Load    []int64
	Balance []int64
	// ProcessMove, ServiceMove and MachineMove are the unweighted move
	// costs.
	ProcessMove int64
	ServiceMove int64
	MachineMove int64
	// Fixed is Σ FixedCost over active machines.
	Fixed int64
	// Active counts machines running at least one process; Moved counts
	// processes away from their initial machine.
	Active int
	Moved  int
	// Exact is the weighted sum of the integer terms (ROADEF's total cost
	// when no cloud term is used).
	Exact int64
	// Float is the weighted variance and packing terms.
	Float float64
	// Total is Exact + Float.
	Total float64
}

// Breakdown returns the objective by term.
func (s *State) Breakdown() Cost {
	var fixed int64
	for m := 0; m < s.M; m++ {
		if s.cnt[m] > 0 {
			fixed += s.fixedCost[m]
		}
	}
	return Cost{
		Load:        slices.Clone(s.loadCost),
		Balance:     slices.Clone(s.balCost),
		ProcessMove: s.pmc,
		ServiceMove: int64(s.smcMax),
		MachineMove: s.mmcSum,
		Fixed:       fixed,
		Active:      s.active,
		Moved:       s.moved,
		Exact:       s.exact(),
		Float:       s.floatTotal,
		Total:       s.Cost(),
	}
}

// ShiftDelta returns the change of the objective if process p moved to
// machine m, and whether that move keeps every hard constraint. It does not
// change the state.
func (s *State) ShiftDelta(p, m2 int32) (float64, bool) {
	m1 := s.assign[p]
	if m1 == m2 || s.pinned[p] {
		return 0, false
	}
	ini := s.init[p]
	// Cheap structural checks first: they reject without touching usage.
	if s.closed[m2] && (m2 != ini || s.evac[m2]) {
		return 0, false
	}
	if z := s.zone[p]; z >= 0 && s.mLoc[m2] != z {
		return 0, false
	}
	// Capacity is the most frequent rejection, so it comes before the
	// service rules.
	R := s.R
	d := s.dem[int(p)*R : int(p)*R+R]
	u2 := s.use[int(m2)*R : int(m2)*R+R]
	c2 := s.cap[int(m2)*R : int(m2)*R+R]
	for r := range d {
		if u2[r]+d[r] > c2[r] {
			return 0, false
		}
	}
	var pen float64
	if s.softTrans {
		var v float64
		if m2 != ini {
			v += s.transientPenalty(p, m2, 1)
		}
		if m1 != ini {
			v += s.transientPenalty(p, m1, -1)
		}
		pen = s.transW * v
	} else if s.hasTrans && m2 != ini {
		t2 := s.tuse[int(m2)*R : int(m2)*R+R]
		for r := range d {
			if s.transient[r] && t2[r]+d[r] > c2[r] {
				return 0, false
			}
		}
	}
	dm := 0
	if m1 == ini {
		dm++
	}
	if m2 == ini {
		dm--
	}
	if s.maxMoves > 0 && dm > 0 && s.moved+dm > s.maxMoves {
		return 0, false
	}
	sv := s.svcOf[p]
	if sv >= 0 && !s.serviceAllowsShift(p, sv, m1, m2) {
		return 0, false
	}
	return s.shiftCost(p, m1, m2, dm) + pen, true
}

// serviceAllowsShift checks the conflict, spread and dependency rules for
// moving p (of service sv) from m1 to m2.
func (s *State) serviceAllowsShift(p, sv, m1, m2 int32) bool {
	svc := &s.services[sv]
	l1, l2 := s.mLoc[m1], s.mLoc[m2]
	switch svc.Conflict {
	case ConflictMachine:
		for _, q := range s.svcProcs[sv] {
			if q != p && s.assign[q] == m2 {
				return false
			}
		}
	case ConflictLocation:
		if l1 != l2 && s.svcLoc[int(sv)*s.L+int(l2)] > 0 {
			return false
		}
	}
	if l1 != l2 && svc.SpreadMin > 1 {
		n := s.svcNLoc[sv]
		if s.svcLoc[int(sv)*s.L+int(l1)] == 1 {
			n--
		}
		if s.svcLoc[int(sv)*s.L+int(l2)] == 0 {
			n++
		}
		if n < svc.SpreadMin && n < s.svcNLoc[sv] {
			return false
		}
	}
	if s.hasDeps {
		n1, n2 := s.mNb[m1], s.mNb[m2]
		if n1 != n2 {
			for _, dep := range svc.DependsOn {
				if s.svcNb[int(dep)*s.N+int(n2)] == 0 {
					return false
				}
			}
			if s.svcNb[int(sv)*s.N+int(n1)] == 1 {
				for _, c := range s.rdeps[sv] {
					if s.svcNb[int(c)*s.N+int(n1)] > 0 {
						return false
					}
				}
			}
		}
	}
	return true
}

// shiftCost is the objective delta of moving p from m1 to m2; dm is the
// change in the number of moved processes.
func (s *State) shiftCost(p, m1, m2 int32, dm int) float64 {
	R := s.R
	var buf1, buf2 [maxResources]int64
	d := s.dem[int(p)*R : int(p)*R+R]
	u1 := buf1[:R]
	u2 := buf2[:R]
	copy(u1, s.use[int(m1)*R:int(m1)*R+R])
	copy(u2, s.use[int(m2)*R:int(m2)*R+R])
	for r := range d {
		u1[r] -= d[r]
		u2[r] += d[r]
	}
	delta := s.machineInt(int(m1), u1, s.cnt[m1]-1) - s.intM[m1] +
		s.machineInt(int(m2), u2, s.cnt[m2]+1) - s.intM[m2]
	f := 0.0
	if dm != 0 {
		delta += int64(dm) * s.wPMC * s.moveCost[p]
		if s.tprice != nil {
			f += float64(dm) * s.tprice[p]
		}
		if sv := s.svcOf[p]; sv >= 0 && s.wSMC != 0 {
			c := s.svcMov[sv]
			if dm > 0 && c+1 > s.smcMax {
				delta += s.wSMC
			} else if dm < 0 && c == s.smcMax && s.smcHist[c] == 1 {
				delta -= s.wSMC
			}
		}
	}
	if s.mmc != nil && s.wMMC != 0 {
		row := int(s.init[p]) * s.M
		delta += s.wMMC * int64(s.mmc[row+int(m2)]-s.mmc[row+int(m1)])
	}
	if len(s.floatRes) > 0 {
		f += s.machineFloat(int(m1), u1) - s.floatM[m1] + s.machineFloat(int(m2), u2) - s.floatM[m2]
	}
	return float64(delta) + f
}

// Shift moves process p to machine m2 without checking any constraint; use
// ShiftDelta first.
func (s *State) Shift(p, m2 int32) {
	m1 := s.assign[p]
	if m1 == m2 {
		return
	}
	R := s.R
	i := int(p)
	ini := s.init[i]
	d := s.dem[i*R : i*R+R]
	u1 := s.use[int(m1)*R : int(m1)*R+R]
	u2 := s.use[int(m2)*R : int(m2)*R+R]
	for b, bl := range s.pb.Balances {
		s.balCost[b] -= s.balanceTerm(int(m1), bl, u1) + s.balanceTerm(int(m2), bl, u2)
	}
	sf1 := s.safety[int(m1)*R : int(m1)*R+R]
	sf2 := s.safety[int(m2)*R : int(m2)*R+R]
	for r := range d {
		if d[r] == 0 {
			continue
		}
		o := max(0, u1[r]-sf1[r]) + max(0, u2[r]-sf2[r])
		u1[r] -= d[r]
		u2[r] += d[r]
		s.loadCost[r] += max(0, u1[r]-sf1[r]) + max(0, u2[r]-sf2[r]) - o
	}
	for b, bl := range s.pb.Balances {
		s.balCost[b] += s.balanceTerm(int(m1), bl, u1) + s.balanceTerm(int(m2), bl, u2)
	}
	if s.hasTrans {
		if m1 != ini {
			s.addTransient(p, m1, -1)
		}
		if m2 != ini {
			s.addTransient(p, m2, 1)
		}
	}
	s.assign[p] = m2
	// Per-machine process lists (swap-remove).
	l := s.onM[m1]
	k := s.pos[i]
	last := l[len(l)-1]
	l[k] = last
	s.pos[last] = k
	s.onM[m1] = l[:len(l)-1]
	s.pos[i] = int32(len(s.onM[m2]))
	s.onM[m2] = append(s.onM[m2], p)
	if s.cnt[m1] == 1 {
		s.active--
	}
	if s.cnt[m2] == 0 {
		s.active++
	}
	s.cnt[m1]--
	s.cnt[m2]++
	if sv := s.svcOf[i]; sv >= 0 {
		l1, l2 := int(s.mLoc[m1]), int(s.mLoc[m2])
		base := int(sv) * s.L
		s.svcLoc[base+l1]--
		if s.svcLoc[base+l1] == 0 {
			s.svcNLoc[sv]--
		}
		if s.svcLoc[base+l2] == 0 {
			s.svcNLoc[sv]++
		}
		s.svcLoc[base+l2]++
		s.svcNb[int(sv)*s.N+int(s.mNb[m1])]--
		s.svcNb[int(sv)*s.N+int(s.mNb[m2])]++
	}
	dm := 0
	if m1 == ini {
		dm++
	}
	if m2 == ini {
		dm--
	}
	if dm != 0 {
		s.moved += dm
		s.pmc += int64(dm) * s.moveCost[i]
		if s.tprice != nil {
			s.tpriceSum += float64(dm) * s.tprice[i]
		}
		if sv := s.svcOf[i]; sv >= 0 {
			c := s.svcMov[sv]
			s.smcHist[c]--
			c += int32(dm)
			s.svcMov[sv] = c
			s.smcHist[c]++
			if c > s.smcMax {
				s.smcMax = c
			} else if s.smcHist[s.smcMax] == 0 {
				s.smcMax--
			}
		}
	}
	if s.mmc != nil {
		row := int(ini) * s.M
		s.mmcSum += int64(s.mmc[row+int(m2)] - s.mmc[row+int(m1)])
	}
	for _, m := range [2]int32{m1, m2} {
		u := s.use[int(m)*R : int(m)*R+R]
		ni := s.machineInt(int(m), u, s.cnt[m])
		s.intTotal += ni - s.intM[m]
		s.intM[m] = ni
		if len(s.floatRes) > 0 {
			nf := s.machineFloat(int(m), u)
			s.floatTotal += nf - s.floatM[m]
			s.floatM[m] = nf
		}
	}
}

// SwapDelta returns the objective change of exchanging the machines of p1
// and p2, and whether the swap keeps every hard constraint. The state is
// unchanged on return.
func (s *State) SwapDelta(p1, p2 int32) (float64, bool) {
	m1, m2 := s.assign[p1], s.assign[p2]
	if m1 == m2 || s.pinned[p1] || s.pinned[p2] {
		return 0, false
	}
	if !s.canEnter(p1, m2) || !s.canEnter(p2, m1) {
		return 0, false
	}
	if !s.swapCapacity(p1, p2, m1, m2) || !s.swapCapacity(p2, p1, m2, m1) {
		return 0, false
	}
	if s.maxMoves > 0 {
		dm := s.moveChange(p1, m1, m2) + s.moveChange(p2, m2, m1)
		if dm > 0 && s.moved+dm > s.maxMoves {
			return 0, false
		}
	}
	sv1, sv2 := s.svcOf[p1], s.svcOf[p2]
	if !s.linked(sv1, sv2) {
		// Independent services (or one shared service): each process's
		// rules can be checked as a shift, and the cost computed without
		// touching the state.
		if sv1 != sv2 {
			if sv1 >= 0 && !s.serviceAllowsShift(p1, sv1, m1, m2) {
				return 0, false
			}
			if sv2 >= 0 && !s.serviceAllowsShift(p2, sv2, m2, m1) {
				return 0, false
			}
		}
		return s.swapCost(p1, p2, m1, m2), true
	}
	before := s.Cost()
	s.Shift(p1, m2)
	s.Shift(p2, m1)
	ok := s.serviceOK(p1, m1) && s.serviceOK(p2, m2)
	after := s.Cost()
	s.Shift(p2, m2)
	s.Shift(p1, m1)
	return after - before, ok
}

// linked reports whether services a and b constrain each other through a
// dependency, which the fast swap evaluation does not model.
func (s *State) linked(a, b int32) bool {
	if a < 0 || b < 0 || a == b || !s.hasDeps {
		return false
	}
	return slices.Contains(s.services[a].DependsOn, b) || slices.Contains(s.services[b].DependsOn, a)
}

// swapCost is the objective delta of exchanging p1 (on m1) and p2 (on m2).
func (s *State) swapCost(p1, p2, m1, m2 int32) float64 {
	R := s.R
	var buf1, buf2 [maxResources]int64
	d1 := s.dem[int(p1)*R : int(p1)*R+R]
	d2 := s.dem[int(p2)*R : int(p2)*R+R]
	u1 := buf1[:R]
	u2 := buf2[:R]
	copy(u1, s.use[int(m1)*R:int(m1)*R+R])
	copy(u2, s.use[int(m2)*R:int(m2)*R+R])
	for r := range d1 {
		u1[r] += d2[r] - d1[r]
		u2[r] += d1[r] - d2[r]
	}
	delta := s.machineInt(int(m1), u1, s.cnt[m1]) - s.intM[m1] + s.machineInt(int(m2), u2, s.cnt[m2]) - s.intM[m2]
	dm1 := s.moveChange(p1, m1, m2)
	dm2 := s.moveChange(p2, m2, m1)
	delta += s.wPMC * (int64(dm1)*s.moveCost[p1] + int64(dm2)*s.moveCost[p2])
	if s.mmc != nil && s.wMMC != 0 {
		r1, r2 := int(s.init[p1])*s.M, int(s.init[p2])*s.M
		delta += s.wMMC * int64(s.mmc[r1+int(m2)]-s.mmc[r1+int(m1)]+s.mmc[r2+int(m1)]-s.mmc[r2+int(m2)])
	}
	if s.wSMC != 0 && (dm1 != 0 || dm2 != 0) {
		delta += s.wSMC * int64(s.smcMaxAfter(s.svcOf[p1], dm1, s.svcOf[p2], dm2)-s.smcMax)
	}
	f := 0.0
	if s.tprice != nil {
		f += float64(dm1)*s.tprice[p1] + float64(dm2)*s.tprice[p2]
	}
	if len(s.floatRes) > 0 {
		f += s.machineFloat(int(m1), u1) - s.floatM[m1] + s.machineFloat(int(m2), u2) - s.floatM[m2]
	}
	if s.softTrans {
		f += s.transW * (s.swapTransientPenalty(p1, p2, m1, m2) + s.swapTransientPenalty(p2, p1, m2, m1))
	}
	return float64(delta) + f
}

// swapTransientPenalty is the change of weighted transient overflow on m2 when p1
// arrives there from m1 and p2 leaves it.
func (s *State) swapTransientPenalty(p1, p2, m1, m2 int32) float64 {
	R := s.R
	d1 := s.dem[int(p1)*R : int(p1)*R+R]
	d2 := s.dem[int(p2)*R : int(p2)*R+R]
	t := s.tuse[int(m2)*R : int(m2)*R+R]
	c := s.cap[int(m2)*R : int(m2)*R+R]
	var v float64
	for r := range t {
		if !s.transient[r] {
			continue
		}
		nt := t[r]
		if s.init[p1] != m2 {
			nt += d1[r]
		}
		if s.init[p2] != m2 {
			nt -= d2[r]
		}
		if dv := max(0, nt-c[r]) - max(0, t[r]-c[r]); dv != 0 {
			v += s.tw(r) * float64(dv)
		}
	}
	return v
}

// smcMaxAfter is the largest per-service moved count after service a's
// count changes by da and b's by db (each −1, 0 or 1).
func (s *State) smcMaxAfter(a int32, da int, b int32, db int) int32 {
	type change struct {
		old, new int32
	}
	var ch [2]change
	n := 0
	if a >= 0 && da != 0 {
		c := s.svcMov[a]
		if b == a {
			ch[n] = change{c, c + int32(da+db)}
			n++
			db = 0
		} else {
			ch[n] = change{c, c + int32(da)}
			n++
		}
	}
	if b >= 0 && db != 0 {
		c := s.svcMov[b]
		ch[n] = change{c, c + int32(db)}
		n++
	}
	top := s.smcMax
	for _, c := range ch[:n] {
		if c.new > top {
			top = c.new
		}
	}
	if top > s.smcMax {
		return top
	}
	atMax := s.smcHist[s.smcMax]
	for _, c := range ch[:n] {
		if c.old == s.smcMax {
			atMax--
		}
		if c.new == s.smcMax {
			atMax++
		}
	}
	if atMax > 0 || s.smcMax == 0 {
		return s.smcMax
	}
	// Counts move by at most 2 (one shared service, two moves), so the
	// new maximum is found within two levels below.
	for lvl := s.smcMax - 1; lvl > 0; lvl-- {
		cnt := s.smcHist[lvl]
		for _, c := range ch[:n] {
			if c.old == lvl {
				cnt--
			}
			if c.new == lvl {
				cnt++
			}
		}
		if cnt > 0 {
			return lvl
		}
	}
	return 0
}

// Swap exchanges the machines of p1 and p2 without checks.
func (s *State) Swap(p1, p2 int32) {
	m1, m2 := s.assign[p1], s.assign[p2]
	s.Shift(p1, m2)
	s.Shift(p2, m1)
}

func (s *State) moveChange(p, from, to int32) int {
	dm := 0
	if from == s.init[p] {
		dm++
	}
	if to == s.init[p] {
		dm--
	}
	return dm
}

func (s *State) canEnter(p, m int32) bool {
	if s.closed[m] && (m != s.init[p] || s.evac[m]) {
		return false
	}
	if z := s.zone[p]; z >= 0 && s.mLoc[m] != z {
		return false
	}
	return true
}

// swapCapacity checks machine m2 when p1 enters it and p2 leaves it.
func (s *State) swapCapacity(p1, p2, m1, m2 int32) bool {
	R := s.R
	d1 := s.dem[int(p1)*R : int(p1)*R+R]
	d2 := s.dem[int(p2)*R : int(p2)*R+R]
	u := s.use[int(m2)*R : int(m2)*R+R]
	c := s.cap[int(m2)*R : int(m2)*R+R]
	for r := range d1 {
		if nu := u[r] - d2[r] + d1[r]; nu > c[r] && nu > u[r] {
			return false
		}
	}
	if s.hasTrans && !s.softTrans {
		t := s.tuse[int(m2)*R : int(m2)*R+R]
		for r := range d1 {
			if !s.transient[r] {
				continue
			}
			nt := t[r]
			if s.init[p2] != m2 {
				nt -= d2[r]
			}
			if s.init[p1] != m2 {
				nt += d1[r]
			}
			if nt > c[r] && nt > t[r] {
				return false
			}
		}
	}
	return true
}

// serviceOK checks, after p moved away from from, the conflict, spread and
// dependency rules of p's service at p's new machine.
func (s *State) serviceOK(p, from int32) bool {
	sv := s.svcOf[p]
	if sv < 0 {
		return true
	}
	svc := &s.services[sv]
	m := s.assign[p]
	switch svc.Conflict {
	case ConflictMachine:
		for _, q := range s.svcProcs[sv] {
			if q != p && s.assign[q] == m {
				return false
			}
		}
	case ConflictLocation:
		if s.svcLoc[int(sv)*s.L+int(s.mLoc[m])] > 1 {
			return false
		}
	}
	if svc.SpreadMin > 1 && s.svcNLoc[sv] < svc.SpreadMin {
		return false
	}
	if s.hasDeps {
		n := s.mNb[m]
		for _, dep := range svc.DependsOn {
			if s.svcNb[int(dep)*s.N+int(n)] == 0 {
				return false
			}
		}
		// Services depending on sv must still find it where p left.
		if old := s.mNb[from]; old != n && s.svcNb[int(sv)*s.N+int(old)] == 0 {
			for _, c := range s.rdeps[sv] {
				if s.svcNb[int(c)*s.N+int(old)] > 0 {
					return false
				}
			}
		}
		// p's own dependants in its new neighbourhood are satisfied by p.
	}
	return true
}

// Clone returns an independent copy of the state.
func (s *State) Clone() *State {
	c := *s
	c.assign = slices.Clone(s.assign)
	c.use = slices.Clone(s.use)
	c.tuse = slices.Clone(s.tuse)
	c.cnt = slices.Clone(s.cnt)
	c.onM = make([][]int32, len(s.onM))
	for m, l := range s.onM {
		c.onM[m] = slices.Clone(l)
	}
	c.pos = slices.Clone(s.pos)
	c.svcLoc = slices.Clone(s.svcLoc)
	c.svcNLoc = slices.Clone(s.svcNLoc)
	c.svcNb = slices.Clone(s.svcNb)
	c.svcMov = slices.Clone(s.svcMov)
	c.smcHist = slices.Clone(s.smcHist)
	c.intM = slices.Clone(s.intM)
	c.floatM = slices.Clone(s.floatM)
	c.loadCost = slices.Clone(s.loadCost)
	c.balCost = slices.Clone(s.balCost)
	c.closed = slices.Clone(s.closed)
	return &c
}

// Reset sets the state to assignment a (same problem).
func (s *State) Reset(a []int32) {
	copy(s.assign, a)
	s.rebuild()
}

// Violations recomputes every hard constraint from scratch for the current
// assignment and lists those it breaks that the initial assignment did not
// already break (capacity per machine and resource, transient capacity,
// conflict, spread, dependency, pins, zones, evacuation, budget). It is the
// solver's own verifier, used by tests and before a plan is returned.
func (s *State) Violations() []string {
	ref, _ := NewState(s.pb, nil)
	var out []string
	R := s.R
	for m := 0; m < s.M; m++ {
		for r := 0; r < R; r++ {
			u, c := s.use[m*R+r], s.cap[m*R+r]
			if u > c && u > ref.use[m*R+r] {
				out = append(out, fmt.Sprintf("machine %d resource %d: usage %d > capacity %d", m, r, u, c))
			}
			if s.transient[r] {
				t := s.tuse[m*R+r]
				if t > c && t > ref.tuse[m*R+r] {
					out = append(out, fmt.Sprintf("machine %d resource %d: transient usage %d > capacity %d", m, r, t, c))
				}
			}
		}
		if s.evac[m] && s.cnt[m] > 0 {
			out = append(out, fmt.Sprintf("machine %d: %d processes left on an evacuated machine", m, s.cnt[m]))
		}
	}
	for i, m := range s.assign {
		if m == s.init[i] {
			continue
		}
		if s.pinned[i] {
			out = append(out, fmt.Sprintf("process %d: pinned but moved", i))
		}
		if s.closed[m] {
			out = append(out, fmt.Sprintf("process %d: moved onto closed machine %d", i, m))
		}
		if z := s.zone[i]; z >= 0 && s.mLoc[m] != z {
			out = append(out, fmt.Sprintf("process %d: outside its zone", i))
		}
	}
	for sv, svc := range s.services {
		switch svc.Conflict {
		case ConflictMachine, ConflictLocation:
			seen := map[int32]int{}
			before := map[int32]int{}
			for _, q := range s.svcProcs[sv] {
				k, k0 := s.assign[q], s.init[q]
				if svc.Conflict == ConflictLocation {
					k, k0 = s.mLoc[k], s.mLoc[k0]
				}
				seen[k]++
				before[k0]++
			}
			for k, n := range seen {
				if n > 1 && n > before[k] {
					out = append(out, fmt.Sprintf("service %d: %d processes share %d", sv, n, k))
				}
			}
		}
		if svc.SpreadMin > 1 && s.svcNLoc[sv] < svc.SpreadMin && s.svcNLoc[sv] < ref.svcNLoc[sv] {
			out = append(out, fmt.Sprintf("service %d: spread %d < %d", sv, s.svcNLoc[sv], svc.SpreadMin))
		}
		for _, q := range s.svcProcs[sv] {
			n := s.mNb[s.assign[q]]
			for _, dep := range svc.DependsOn {
				if s.svcNb[int(dep)*s.N+int(n)] == 0 {
					out = append(out, fmt.Sprintf("service %d: process %d has no service %d in neighbourhood %d", sv, q, dep, n))
				}
			}
		}
	}
	if s.maxMoves > 0 && s.moved > s.maxMoves {
		out = append(out, fmt.Sprintf("moves %d > budget %d", s.moved, s.maxMoves))
	}
	return out
}

// TransientUsage returns machine m's transient usage of resource r: what its
// original and final processes together need.
func (s *State) TransientUsage(m int32, r int) int64 { return s.tuse[int(m)*s.R+r] }
