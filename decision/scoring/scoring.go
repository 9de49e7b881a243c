// Package scoring holds scoring engines in Watcher's plugin shape (name,
// description, metainfo, calculate_score(features)), which strategies use to
// rank destinations (filter → score → normalise → select) and to predict what
// a move costs.
//
// Shipped engines: weighted_resource scores a host by the headroom it keeps
// after taking an instance; migration_cost predicts a live migration's
// duration and downtime from memory size, dirty-page rate and bandwidth
// (the pre-copy model). Engines are pure functions of their features; they
// read no metrics and keep no state.
package scoring

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
)

// Engine is a scoring engine.
type Engine interface {
	Name() string
	Description() string
	// Metainfo is a JSON document naming the feature and result columns.
	Metainfo() string
	// CalculateScore maps a feature vector to a result vector.
	CalculateScore(features []float64) ([]float64, error)
}

// Info is an engine's listing, Watcher's scoring_engines resource.
type Info struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	Metainfo    string `json:"metainfo"`
}

// InfoOf returns e's listing.
func InfoOf(e Engine) Info {
	return Info{Name: e.Name(), Description: e.Description(), Metainfo: e.Metainfo()}
}

// CalculateJSON is calculate_score with Watcher's string interface: features
// and result are JSON arrays of numbers.
func CalculateJSON(e Engine, features string) (string, error) {
	var f []float64
	if err := json.Unmarshal([]byte(features), &f); err != nil {
		return "", fmt.Errorf("%s: features must be a JSON array of numbers: %w", e.Name(), err)
	}
	out, err := e.CalculateScore(f)
	if err != nil {
		return "", err
	}
	b, err := json.Marshal(out)
	return string(b), err
}

func metainfo(features, results []string, extra map[string]any) string {
	m := map[string]any{"feature_columns": features, "result_columns": results}
	for k, v := range extra {
		m[k] = v
	}
	b, _ := json.Marshal(m)
	return string(b)
}

func checkFeatures(name string, f []float64, want int) error {
	if len(f) != want {
		return fmt.Errorf("%s: %d features, want %d", name, len(f), want)
	}
	for i, v := range f {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("%s: feature %d is not a finite number", name, i)
		}
	}
	return nil
}

// Registry holds the engines by name.
type Registry struct {
	engines map[string]Engine
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{engines: map[string]Engine{}} }

// Register adds e; a duplicate name is an error.
func (r *Registry) Register(e Engine) error {
	if e == nil || e.Name() == "" {
		return errors.New("scoring: engine without a name")
	}
	if _, dup := r.engines[e.Name()]; dup {
		return fmt.Errorf("scoring: engine %q registered twice", e.Name())
	}
	r.engines[e.Name()] = e
	return nil
}

// Get returns the engine with the given name.
func (r *Registry) Get(name string) (Engine, bool) {
	if r == nil {
		return nil, false
	}
	e, ok := r.engines[name]
	return e, ok
}

// List returns every engine's listing, sorted by name.
func (r *Registry) List() []Info {
	var out []Info
	for _, e := range r.engines {
		out = append(out, InfoOf(e))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// WeightedResourceName is the weighted-resource engine's name.
const WeightedResourceName = "weighted_resource"

// WeightedResource scores a destination host by the headroom it keeps after
// taking an instance: features are the host's utilisation after the move per
// resource (cpu, memory, disk, network, disk IO; 0..1), the score is
// 1 − Σ wᵢ·uᵢᵖ / Σ wᵢ (higher is better; p > 1 punishes one hot resource
// more than several warm ones), or −1 if any utilisation exceeds 1.
type WeightedResource struct {
	Weights []float64
	Power   float64
}

var _ Engine = (*WeightedResource)(nil)

// WeightedResourceFeatures names the feature columns.
var WeightedResourceFeatures = []string{"cpu_util", "memory_util", "disk_util", "net_util", "disk_io_util"}

// NewWeightedResource validates weights (one per feature, not negative, not
// all zero; nil: 1, 1, 0.5, 0.25, 0.25) and power (default 2).
func NewWeightedResource(weights []float64, power float64) (*WeightedResource, error) {
	if weights == nil {
		weights = []float64{1, 1, 0.5, 0.25, 0.25}
	}
	if len(weights) != len(WeightedResourceFeatures) {
		return nil, fmt.Errorf("weighted_resource: %d weights, want %d (%v)", len(weights), len(WeightedResourceFeatures), WeightedResourceFeatures)
	}
	var sum float64
	for i, w := range weights {
		if w < 0 || math.IsNaN(w) || math.IsInf(w, 0) {
			return nil, fmt.Errorf("weighted_resource: weight %d (%s) must be a non-negative number", i, WeightedResourceFeatures[i])
		}
		sum += w
	}
	if sum == 0 {
		return nil, errors.New("weighted_resource: weights must not all be zero")
	}
	if power == 0 {
		power = 2
	}
	if power < 1 {
		return nil, fmt.Errorf("weighted_resource: power %v must be at least 1", power)
	}
	return &WeightedResource{Weights: slices.Clone(weights), Power: power}, nil
}

func (*WeightedResource) Name() string { return WeightedResourceName }
func (*WeightedResource) Description() string {
	return "Scores a destination host by the headroom it keeps after taking an instance (weighted utilisation)."
}
func (w *WeightedResource) Metainfo() string {
	return metainfo(WeightedResourceFeatures, []string{"score"}, map[string]any{"weights": w.Weights, "power": w.Power})
}

// CalculateScore returns [score].
func (w *WeightedResource) CalculateScore(f []float64) ([]float64, error) {
	if err := checkFeatures(w.Name(), f, len(WeightedResourceFeatures)); err != nil {
		return nil, err
	}
	var num, den float64
	for i, u := range f {
		if u > 1+1e-9 {
			return []float64{-1}, nil
		}
		num += w.Weights[i] * math.Pow(max(0, u), w.Power)
		den += w.Weights[i]
	}
	return []float64{1 - num/den}, nil
}

// MigrationCostName is the migration-cost engine's name.
const MigrationCostName = "migration_cost"

// MigrationCost predicts a live migration with the pre-copy model: the first
// round copies all memory M at bandwidth B; each next round copies what the
// guest dirtied meanwhile (dirty rate D), so round i lasts (M/B)·(D/B)^i;
// rounds stop when the remainder copies within the downtime target or after
// MaxRounds, and the guest pauses to copy the rest. A guest dirtying faster
// than the link converges only by that forced stop, with a long downtime.
//
// Features: memory_mb, dirty_rate_mbps, bandwidth_mbps (0: the engine's
// default). Results: seconds, downtime_ms, transferred_mb.
type MigrationCost struct {
	// BandwidthMBps is the default migration bandwidth (1000 MB/s: a
	// 10 Gb/s link at about 80 %).
	BandwidthMBps float64
	// DowntimeMs is the target downtime (300 ms, libvirt's default).
	DowntimeMs float64
	// MaxRounds bounds the pre-copy rounds (30).
	MaxRounds int
	// SetupSeconds is the fixed cost of a migration (3 s).
	SetupSeconds float64
}

var _ Engine = (*MigrationCost)(nil)

// MigrationCostFeatures and MigrationCostResults name the columns.
var (
	MigrationCostFeatures = []string{"memory_mb", "dirty_rate_mbps", "bandwidth_mbps"}
	MigrationCostResults  = []string{"seconds", "downtime_ms", "transferred_mb"}
)

// NewMigrationCost fills defaults and validates.
func NewMigrationCost(m MigrationCost) (*MigrationCost, error) {
	if m.BandwidthMBps == 0 {
		m.BandwidthMBps = 1000
	}
	if m.DowntimeMs == 0 {
		m.DowntimeMs = 300
	}
	if m.MaxRounds == 0 {
		m.MaxRounds = 30
	}
	if m.SetupSeconds == 0 {
		m.SetupSeconds = 3
	}
	if m.BandwidthMBps < 0 || m.DowntimeMs < 0 || m.MaxRounds < 1 || m.SetupSeconds < 0 {
		return nil, errors.New("migration_cost: bandwidth, downtime and setup must not be negative, rounds at least 1")
	}
	return &m, nil
}

func (*MigrationCost) Name() string { return MigrationCostName }
func (*MigrationCost) Description() string {
	return "Predicts live-migration time and downtime from memory size, dirty-page rate and bandwidth (pre-copy model)."
}
func (m *MigrationCost) Metainfo() string {
	return metainfo(MigrationCostFeatures, MigrationCostResults, map[string]any{
		"default_bandwidth_mbps": m.BandwidthMBps, "downtime_ms": m.DowntimeMs, "max_rounds": m.MaxRounds, "setup_s": m.SetupSeconds})
}

// CalculateScore returns [seconds, downtime_ms, transferred_mb].
func (m *MigrationCost) CalculateScore(f []float64) ([]float64, error) {
	if err := checkFeatures(m.Name(), f, len(MigrationCostFeatures)); err != nil {
		return nil, err
	}
	mem, dirty, bw := f[0], f[1], f[2]
	if mem < 0 || dirty < 0 || bw < 0 {
		return nil, errors.New("migration_cost: features must not be negative")
	}
	if bw == 0 {
		bw = m.BandwidthMBps
	}
	stop := bw * m.DowntimeMs / 1000 // MB copyable within the downtime
	remaining := mem
	var seconds, transferred float64
	for round := 0; round < m.MaxRounds && remaining > stop; round++ {
		t := remaining / bw
		seconds += t
		transferred += remaining
		next := min(mem, dirty*t)
		if next >= remaining && round > 0 {
			remaining = next
			break // not converging: force the stop-and-copy
		}
		remaining = next
	}
	down := remaining / bw
	seconds += down + m.SetupSeconds
	transferred += remaining
	return []float64{seconds, down * 1000, transferred}, nil
}

// Seconds is the predicted duration of migrating memMB at dirtyMBps with the
// default bandwidth.
func (m *MigrationCost) Seconds(memMB, dirtyMBps float64) float64 {
	r, err := m.CalculateScore([]float64{memMB, dirtyMBps, 0})
	if err != nil {
		return m.SetupSeconds + memMB/m.BandwidthMBps
	}
	return r[0]
}
