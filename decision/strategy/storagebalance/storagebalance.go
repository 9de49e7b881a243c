// Package storagebalance is the Ceph storage-balance strategy (goal
// storage_balancing).
//
// In upmap mode (the default, like the mgr balancer's) every placement-group
// replica is a process of the shared core and every OSD a machine: replicas
// of one PG conflict on their failure domain (host by default), OSDs hold
// bytes (transient: a backfilling replica occupies old and new OSD until
// done) and PG counts, and the core's descent moves the replica that most
// lowers the variance of PG count (and bytes) relative to each OSD's
// weight-proportional target, until every OSD is within max_deviation PGs of
// its target or the share of moved replicas reaches max_misplaced_ratio. The
// moves become pg-upmap-items exceptions (ceph_upmap actions).
//
// In reweight mode it computes override weights like `ceph osd
// reweight-by-utilization`: OSDs above overload % of the mean utilisation
// get their reweight lowered in proportion, by at most max_change per step.
package storagebalance

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"math"
	"slices"

	"github.com/ballast-cloud/ballast/decision/action"
	"github.com/ballast-cloud/ballast/decision/bounds"
	"github.com/ballast-cloud/ballast/decision/model"
	"github.com/ballast-cloud/ballast/decision/optimize"
	"github.com/ballast-cloud/ballast/decision/params"
	"github.com/ballast-cloud/ballast/decision/strategy"
)

// Params are the strategy's parameters (names follow the mgr balancer's
// options where one exists).
type Params struct {
	// Mode is upmap or reweight.
	Mode string `json:"mode"`
	// MaxDeviation is the PG count difference from target, per OSD, that
	// is good enough (upmap_max_deviation).
	MaxDeviation int `json:"upmap_max_deviation"`
	// MaxMisplacedRatio bounds the share of replicas moved in one plan
	// (target_max_misplaced_ratio).
	MaxMisplacedRatio float64 `json:"target_max_misplaced_ratio"`
	// BytesWeight weighs byte balance against PG-count balance.
	BytesWeight float64 `json:"bytes_weight"`
	// FullRatio caps an OSD's utilisation after the plan.
	FullRatio float64 `json:"full_ratio"`
	// Overload (percent of the mean utilisation) and MaxChange drive
	// reweight mode.
	Overload  float64 `json:"overload"`
	MaxChange float64 `json:"max_change"`
	MaxOSDs   int     `json:"max_osds"`
}

// Schema is the parameter schema.
func Schema() params.Schema {
	return params.Schema{Properties: map[string]*params.Property{
		"mode": {Type: "string", Default: "upmap", Enum: []any{"upmap", "reweight"},
			Description: "upmap writes pg-upmap-items exceptions; reweight sets OSD override weights."},
		"upmap_max_deviation": {Type: "integer", Default: float64(1), Minimum: params.Float(1),
			Description: "An OSD within this many PGs of its weight-proportional target is balanced."},
		"target_max_misplaced_ratio": {Type: "number", Default: 0.05, Minimum: params.Float(0), Maximum: params.Float(1),
			Description: "Largest share of PG replicas one plan may move."},
		"bytes_weight": {Type: "number", Default: 0.5, Minimum: params.Float(0),
			Description: "Weight of byte balance relative to PG-count balance."},
		"full_ratio": {Type: "number", Default: 0.85, Minimum: params.Float(0.1), Maximum: params.Float(1),
			Description: "Highest utilisation an OSD may reach through the plan."},
		"overload": {Type: "number", Default: 120.0, Minimum: params.Float(100),
			Description: "reweight mode: OSDs above this percentage of the mean utilisation are reweighted."},
		"max_change": {Type: "number", Default: 0.05, Minimum: params.Float(0), Maximum: params.Float(1),
			Description: "reweight mode: largest reweight change per OSD."},
		"max_osds": {Type: "integer", Default: float64(4), Minimum: params.Float(1),
			Description: "reweight mode: most OSDs reweighted per plan."},
	}}
}

// StorageBalance is the strategy.
type StorageBalance struct {
	p      Params
	logger *slog.Logger
}

var _ strategy.Strategy = (*StorageBalance)(nil)

// New validates p.
func New(p Params, logger *slog.Logger) (*StorageBalance, error) {
	if p.Mode != "upmap" && p.Mode != "reweight" {
		return nil, fmt.Errorf("parameter \"mode\": %q is not upmap or reweight", p.Mode)
	}
	if p.MaxDeviation < 1 {
		return nil, fmt.Errorf("parameter \"upmap_max_deviation\": %d must be at least 1", p.MaxDeviation)
	}
	if p.MaxMisplacedRatio < 0 || p.MaxMisplacedRatio > 1 {
		return nil, fmt.Errorf("parameter \"target_max_misplaced_ratio\": %v must be within [0, 1]", p.MaxMisplacedRatio)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &StorageBalance{p: p, logger: logger.With("component", "strategy/storage_balance")}, nil
}

// group is the OSDs one set of pools maps into (same CRUSH root and device
// class) and the replicas of those pools.
type group struct {
	osds []int // indices into ceph.OSDs
	pgs  []int // indices into ceph.PGs
	fd   string
}

// replica is one PG replica: the PG and its position in the OSD list.
type replica struct{ pg, pos int }

// Execute plans the rebalance.
func (b *StorageBalance) Execute(ctx context.Context, in *strategy.Input) (*strategy.Solution, error) {
	ceph := in.Cluster.Ceph
	if ceph == nil || len(ceph.OSDs) == 0 {
		return nil, fmt.Errorf("storage_balance: the model has no Ceph cluster")
	}
	before := evaluate(ceph, nil)
	sol := &strategy.Solution{}
	var after metrics
	var err error
	switch b.p.Mode {
	case "upmap":
		after, err = b.upmap(ctx, in, sol)
	case "reweight":
		after = b.reweight(ceph, sol)
	}
	if err != nil {
		return nil, err
	}
	sol.Bounds = &strategy.Bounds{Balance: map[string]strategy.BalanceBound{"pgs": {
		Mean: before.perOSD, StdDevFloor: before.floor, Before: before.sd, After: after.sd}}}
	sol.Indicators = map[string]float64{
		"pg_remaps_count":           float64(after.remapped),
		"pgs_count":                 float64(before.replicas),
		"pg_deviation_before":       before.deviation,
		"pg_deviation_after":        after.deviation,
		"balancer_score_before":     round(before.score),
		"balancer_score_after":      round(after.score),
		"utilization_spread_before": round(100 * before.spread),
		"utilization_spread_after":  round(100 * after.spread),
	}
	b.logger.Debug("Storage balance planned", "mode", b.p.Mode, "remaps", after.remapped,
		"score_before", before.score, "score_after", after.score)
	return sol, nil
}

func (b *StorageBalance) upmap(ctx context.Context, in *strategy.Input, sol *strategy.Solution) (metrics, error) {
	ceph := in.Cluster.Ceph
	osdIdx := make(map[int]int, len(ceph.OSDs))
	for i, o := range ceph.OSDs {
		osdIdx[o.ID] = i
	}
	pools := map[int]*model.Pool{}
	for i := range ceph.Pools {
		pools[ceph.Pools[i].ID] = &ceph.Pools[i]
	}
	groups := map[string]*group{}
	var keys []string
	for i, pg := range ceph.PGs {
		pl := pools[pg.Pool]
		k := pl.EffectiveRoot() + "/" + pl.DeviceClass + "/" + pl.EffectiveFailureDomain()
		g := groups[k]
		if g == nil {
			g = &group{fd: pl.EffectiveFailureDomain()}
			for oi, o := range ceph.OSDs {
				if o.Bucket("root") == pl.EffectiveRoot() && (pl.DeviceClass == "" || o.DeviceClass == pl.DeviceClass) {
					g.osds = append(g.osds, oi)
				}
			}
			groups[k] = g
			keys = append(keys, k)
		}
		g.pgs = append(g.pgs, i)
	}
	slices.Sort(keys)
	final := make([][]int, len(ceph.PGs)) // final OSD ids per PG
	for i := range ceph.PGs {
		final[i] = ceph.PGs[i].Up()
	}
	total := 0
	for _, g := range groups {
		for _, pi := range g.pgs {
			total += len(ceph.PGs[pi].Raw)
		}
	}
	budget := int(math.Floor(b.p.MaxMisplacedRatio * float64(total)))
	var st strategy.SearchStats
	for _, k := range keys {
		if budget <= 0 {
			break
		}
		g := groups[k]
		used, err := b.balanceGroup(ctx, ceph, g, osdIdx, final, budget, in.Seed, &st)
		if err != nil {
			return metrics{}, err
		}
		budget -= used
	}
	sol.Search = &st
	for i, pg := range ceph.PGs {
		items := upmapItems(pg.Raw, final[i])
		if slices.Equal(items, toPairs(pg.UpmapItems)) {
			continue
		}
		sol.Actions = append(sol.Actions, action.NewUpmap(pg.ID, items, toPairs(pg.UpmapItems)))
	}
	after := evaluate(ceph, final)
	for i, pg := range ceph.PGs {
		up := pg.Up()
		for k := range up {
			if up[k] != final[i][k] {
				after.remapped++
			}
		}
	}
	return after, nil
}

// balanceGroup runs the core on one CRUSH root/class and writes the final
// OSD lists into final. It returns the replicas moved.
func (b *StorageBalance) balanceGroup(ctx context.Context, ceph *model.Ceph, g *group, osdIdx map[int]int,
	final [][]int, budget int, seed int64, st *strategy.SearchStats) (int, error) {
	machineOf := map[int]int32{} // OSD index → machine
	var weightSum float64
	for _, oi := range g.osds {
		weightSum += weight(&ceph.OSDs[oi])
	}
	if weightSum == 0 {
		return 0, nil
	}
	var reps []replica
	for _, pi := range g.pgs {
		for pos := range ceph.PGs[pi].Raw {
			reps = append(reps, replica{pi, pos})
		}
	}
	// Failure domains are the locations.
	loc := map[string]int32{}
	p := &optimize.Problem{
		Resources: []optimize.Resource{
			{Name: "pgs", BalanceWeight: 1},
			{Name: "bytes", Transient: true, BalanceWeight: b.p.BytesWeight},
		},
		MaxMoves: budget,
	}
	targets := make([]float64, len(g.osds))
	for k, oi := range g.osds {
		o := &ceph.OSDs[oi]
		machineOf[oi] = int32(k)
		d := o.Bucket(g.fd)
		l, ok := loc[d]
		if !ok {
			l = int32(len(loc))
			loc[d] = l
		}
		share := weight(o) / weightSum
		targets[k] = share * float64(len(reps))
		// PG capacity is a scale for utilisation, ten times the target so
		// it never binds; the byte capacity is the full ratio.
		pgCap := int64(math.Ceil(10 * max(targets[k], 0.1)))
		p.Machines = append(p.Machines, optimize.Machine{
			Name:     fmt.Sprintf("osd.%d", o.ID),
			Capacity: []int64{pgCap, int64(b.p.FullRatio * float64(o.BytesTotal) / (1 << 20))},
			Location: l,
			Closed:   !o.Up || !o.In || weight(o) == 0,
		})
	}
	p.Services = make([]optimize.Service, len(g.pgs))
	svcOf := map[int]int32{}
	for s, pi := range g.pgs {
		p.Services[s] = optimize.Service{Conflict: optimize.ConflictLocation}
		svcOf[pi] = int32(s)
	}
	for _, r := range reps {
		pg := &ceph.PGs[r.pg]
		oi, ok := osdIdx[final[r.pg][r.pos]]
		m, inGroup := machineOf[oi]
		if !ok || !inGroup {
			return 0, fmt.Errorf("storage_balance: PG %s maps to osd.%d outside its pool's CRUSH root", pg.ID, final[r.pg][r.pos])
		}
		p.Processes = append(p.Processes, optimize.Process{
			Name:    fmt.Sprintf("%s/%d", pg.ID, r.pos),
			Demand:  []int64{1, max(1, pg.Bytes>>20)},
			Initial: m,
			Service: svcOf[r.pg],
			Zone:    -1,
		})
	}
	stop := func(s *optimize.State) bool {
		for k := range g.osds {
			if s.Closed(int32(k)) {
				continue
			}
			if math.Abs(float64(s.Usage(int32(k), 0))-targets[k]) > float64(b.p.MaxDeviation) {
				return false
			}
		}
		return true
	}
	res, err := optimize.Solve(ctx, p, optimize.Options{
		Seed:    seed,
		Descent: &optimize.DescentOptions{Stop: stop, Sources: 64, Destinations: 256, Swaps: true},
	})
	if err != nil {
		return 0, fmt.Errorf("storage_balance: %w", err)
	}
	if len(res.Violations) > 0 {
		return 0, fmt.Errorf("storage_balance: solver broke constraints: %v", res.Violations)
	}
	for i, r := range reps {
		final[r.pg][r.pos] = ceph.OSDs[g.osds[res.Assignment[i]]].ID
	}
	st.Seconds += res.Elapsed.Seconds()
	st.Evaluations += int64(res.Descent.Evaluations)
	st.Moves += res.Final.Moved
	st.Stopped = res.Descent.Stopped
	return res.Final.Moved, nil
}

func weight(o *model.OSD) float64 {
	if !o.Up || !o.In {
		return 0
	}
	return o.CrushWeight * o.EffectiveReweight()
}

// upmapItems returns the pg-upmap-items that turn raw into final.
func upmapItems(raw, final []int) []action.UpmapPair {
	var out []action.UpmapPair
	for k := range raw {
		if raw[k] != final[k] {
			out = append(out, action.UpmapPair{From: raw[k], To: final[k]})
		}
	}
	return out
}

func toPairs(items []model.UpmapItem) []action.UpmapPair {
	var out []action.UpmapPair
	for _, it := range items {
		out = append(out, action.UpmapPair{From: it.From, To: it.To})
	}
	return out
}

// reweight computes reweight-by-utilization.
func (b *StorageBalance) reweight(ceph *model.Ceph, sol *strategy.Solution) metrics {
	type cand struct {
		i    int
		util float64
	}
	var used, total float64
	for _, o := range ceph.OSDs {
		if o.Up && o.In && o.BytesTotal > 0 {
			used += float64(o.BytesUsed)
			total += float64(o.BytesTotal)
		}
	}
	after := evaluate(ceph, nil)
	if total == 0 {
		return after
	}
	mean := used / total
	var over []cand
	for i, o := range ceph.OSDs {
		if !o.Up || !o.In || o.BytesTotal == 0 {
			continue
		}
		if u := float64(o.BytesUsed) / float64(o.BytesTotal); u > mean*b.p.Overload/100 {
			over = append(over, cand{i, u})
		}
	}
	slices.SortFunc(over, func(x, y cand) int { return cmp.Compare(y.util, x.util) })
	if len(over) > b.p.MaxOSDs {
		over = over[:b.p.MaxOSDs]
	}
	for _, c := range over {
		o := &ceph.OSDs[c.i]
		cur := o.EffectiveReweight()
		next := max(cur*mean/c.util, cur-b.p.MaxChange, 0.1)
		next = math.Round(next*10000) / 10000
		if next < cur {
			sol.Actions = append(sol.Actions, action.NewReweight(o.ID, next, cur))
			after.remapped++
		}
	}
	return after
}

// metrics are the balance measurements of a PG mapping.
type metrics struct {
	replicas  int
	remapped  int
	deviation float64
	score     float64
	spread    float64
	// sd is the standard deviation of each OSD's PG count over its
	// weight-proportional target (1 = on target), floor its lower bound
	// and perOSD the mean count.
	sd, floor, perOSD float64
}

// evaluate measures a mapping (nil: the current one): the largest PG-count
// deviation from the weight-proportional target, the Ceph balancer score
// (mean over pgs, objects and bytes of the weighted erf of over-full OSDs'
// relative excess, 0 = perfect), and the utilisation spread (bytes).
func evaluate(ceph *model.Ceph, mapping [][]int) metrics {
	idx := make(map[int]int, len(ceph.OSDs))
	for i, o := range ceph.OSDs {
		idx[o.ID] = i
	}
	n := len(ceph.OSDs)
	pgs, objs, bytes := make([]float64, n), make([]float64, n), make([]float64, n)
	var m metrics
	for i, pg := range ceph.PGs {
		up := pg.Up()
		if mapping != nil {
			up = mapping[i]
		}
		for _, o := range up {
			k, ok := idx[o]
			if !ok {
				continue
			}
			pgs[k]++
			objs[k] += float64(pg.Objects)
			bytes[k] += float64(pg.Bytes)
			m.replicas++
		}
	}
	var wsum float64
	for i := range ceph.OSDs {
		wsum += weight(&ceph.OSDs[i])
	}
	if wsum == 0 {
		return m
	}
	var score float64
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, counts := range [][]float64{pgs, objs, bytes} {
		var totalC float64
		active := 0
		for i := range counts {
			if weight(&ceph.OSDs[i]) > 0 {
				totalC += counts[i]
				active++
			}
		}
		if totalC == 0 || active == 0 {
			continue
		}
		avg := totalC / float64(active)
		var num, den float64
		for i := range counts {
			w := weight(&ceph.OSDs[i]) / wsum
			if w == 0 {
				continue
			}
			adj := counts[i] / w / float64(active)
			if adj > avg {
				num += w * math.Erf((adj-avg)/avg/math.Sqrt2)
				den += w
			}
		}
		if den > 0 {
			score += num / den
		}
	}
	m.score = score / 3
	for i := range ceph.OSDs {
		w := weight(&ceph.OSDs[i])
		if w == 0 {
			continue
		}
		target := w / wsum * float64(m.replicas)
		m.deviation = max(m.deviation, math.Abs(pgs[i]-target))
		if t := ceph.OSDs[i].BytesTotal; t > 0 {
			u := bytes[i] / float64(t)
			lo, hi = min(lo, u), max(hi, u)
		}
	}
	if hi >= lo {
		m.spread = hi - lo
	}
	var ratios, targets, ones []float64
	for i := range ceph.OSDs {
		if w := weight(&ceph.OSDs[i]); w > 0 {
			t := w / wsum * float64(m.replicas)
			ratios = append(ratios, pgs[i]/t)
			targets = append(targets, t)
		}
	}
	for k := 0; k < m.replicas; k++ {
		ones = append(ones, 1)
	}
	m.sd = round(bounds.StdDev(ratios))
	f := bounds.BalanceFloor(ones, targets)
	m.floor = round(f.StdDevFloor)
	if len(targets) > 0 {
		m.perOSD = round(float64(m.replicas) / float64(len(targets)))
	}
	m.deviation = math.Round(m.deviation*100) / 100
	return m
}

func round(v float64) float64 { return math.Round(v*1e6) / 1e6 }
