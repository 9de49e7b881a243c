package strategy

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"

	"github.com/ballast-cloud/ballast/decision/optimize"
	"github.com/ballast-cloud/ballast/decision/scoring"
)

// scoreFeatures maps the weighted_resource feature columns to the compute
// resources that measure them, best first.
var scoreFeatures = [][]string{
	{CPU, AllocVCPU},
	{Memory, AllocMemory},
	{AllocDisk},
	{Net},
	{DiskIO},
}

// Place moves each process in procs (largest first) to a destination chosen
// by the pipeline filter → score → normalise → select:
//
//   - filter: the core's feasibility check (capacity including transient
//     room, anti-affinity, zones, closed hosts, the migration budget) — the
//     cheap structural checks run first inside it;
//   - score: the scoring engine on the host's utilisation after the move;
//   - normalise: scores are rescaled to [0, 1] over the candidates, so
//     engines with different ranges compose;
//   - select: the highest score, the lower host index on ties.
//
// It returns the processes no host could take.
func (c *Compute) Place(ctx context.Context, st *optimize.State, procs []int32, eng scoring.Engine) ([]int32, error) {
	R := len(c.Names)
	cols := make([]int, len(scoreFeatures))
	for k, names := range scoreFeatures {
		cols[k] = -1
		for _, n := range names {
			if r, ok := c.res[n]; ok {
				cols[k] = r
				break
			}
		}
	}
	mean := make([]float64, R)
	for i, v := range c.Physical {
		mean[i%R] += v
	}
	size := func(p int32) float64 {
		var v float64
		for r, d := range c.Problem.Processes[p].Demand {
			if mean[r] > 0 {
				v += float64(d) / mean[r]
			}
		}
		return v
	}
	order := slices.Clone(procs)
	slices.SortStableFunc(order, func(a, b int32) int { return cmp.Compare(size(b), size(a)) })
	features := make([]float64, len(scoreFeatures))
	type cand struct {
		m     int32
		score float64
	}
	var cands []cand
	var unplaced []int32
	for _, p := range order {
		if err := ctx.Err(); err != nil {
			return append(unplaced, p), err
		}
		cands = cands[:0]
		d := c.Problem.Processes[p].Demand
		for m := int32(0); m < int32(len(c.Problem.Machines)); m++ {
			if _, ok := st.ShiftDelta(p, m); !ok {
				continue
			}
			for k, r := range cols {
				features[k] = 0
				if r >= 0 {
					if phys := c.Physical[int(m)*R+r]; phys > 0 {
						features[k] = float64(st.Usage(m, r)+d[r]) / phys
					}
				}
			}
			out, err := eng.CalculateScore(features)
			if err != nil {
				return nil, fmt.Errorf("score host %d: %w", m, err)
			}
			cands = append(cands, cand{m, out[0]})
		}
		if len(cands) == 0 {
			unplaced = append(unplaced, p)
			continue
		}
		lo, hi := math.Inf(1), math.Inf(-1)
		for _, x := range cands {
			lo, hi = min(lo, x.score), max(hi, x.score)
		}
		best := cands[0]
		bestN := -1.0
		for _, x := range cands {
			n := 1.0
			if hi > lo {
				n = (x.score - lo) / (hi - lo)
			}
			if n > bestN {
				best, bestN = x, n
			}
		}
		st.Shift(p, best.m)
	}
	return unplaced, nil
}
