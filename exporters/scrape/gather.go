package scrape

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

var _ prometheus.Gatherer = (*Set)(nil)

// Gather runs the collectors (as Collect does) and builds the metric
// families itself, so the Set is the exporter's Gatherer without a
// prometheus.Registry in between.
//
// Why: Registry.Gather checks every series by hashing its labels into a
// map, allocating as it goes; at 30 000 series that was a third of a
// scrape's CPU, twice over when promhttp merged it with the process
// metrics. Collectors here send each family in label order, so after a sort
// that costs one comparison per series on sorted input, a duplicate is the
// neighbour of its twin. The registry's other checks stay: one help text
// and one type per family, label pairs sorted by name, label values valid
// UTF-8 (checked once, when built with Pair, for Sender's metrics). Tests
// gather through a Registry as well, which keeps its hashing check over
// the same collectors.
func (s *Set) Gather() ([]*dto.MetricFamily, error) {
	ch := make(chan prometheus.Metric, 1024)
	go func() {
		s.Collect(ch)
		close(ch)
	}()
	var (
		errs    prometheus.MultiError
		byName  = map[string]*dto.MetricFamily{}
		byDesc  = map[*prometheus.Desc]*dto.MetricFamily{}
		metrics []dto.Metric
	)
	for m := range ch {
		desc := m.Desc()
		mf := byDesc[desc]
		if mf == nil {
			meta, err := s.metas.of(m)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if mf = byName[meta.GetName()]; mf == nil {
				mf = &dto.MetricFamily{Name: meta.Name, Help: meta.Help, Type: meta.Type, Unit: meta.Unit}
				byName[meta.GetName()] = mf
			} else if mf.GetHelp() != meta.GetHelp() || mf.GetType() != meta.GetType() {
				errs = append(errs, fmt.Errorf("collected metric %s has help %q and type %s but should have %q and %s",
					meta.GetName(), meta.GetHelp(), meta.GetType(), mf.GetHelp(), mf.GetType()))
				continue
			}
			byDesc[desc] = mf
		}
		dm, trusted := ready(m)
		if !trusted {
			dm = take(&metrics)
			if err := m.Write(dm); err != nil {
				errs = append(errs, fmt.Errorf("error collecting metric %s: %w", mf.GetName(), err))
				continue
			}
		}
		if err := checkMetric(mf, dm, trusted); err != nil {
			errs = append(errs, err)
			continue
		}
		mf.Metric = append(mf.Metric, dm)
	}
	out := make([]*dto.MetricFamily, 0, len(byName))
	for _, mf := range byName {
		if len(mf.Metric) == 0 {
			continue
		}
		mf.Metric = sortUnique(mf, &errs)
		out = append(out, mf)
	}
	slices.SortFunc(out, func(a, b *dto.MetricFamily) int { return strings.Compare(a.GetName(), b.GetName()) })
	s.metas.sweep(byDesc)
	return out, errs.MaybeUnwrap()
}

// ready returns the dto.Metric a Sender made, with its label set built by
// Labels.
func ready(m prometheus.Metric) (*dto.Metric, bool) {
	if sm, ok := m.(*sentMetric); ok {
		return &sm.metric, true
	}
	return nil, false
}

// checkMetric does the registry's per-series checks but the duplicate one.
// The label sets of trusted metrics were checked when Labels built them.
func checkMetric(mf *dto.MetricFamily, m *dto.Metric, trusted bool) error {
	var ok bool
	switch mf.GetType() {
	case dto.MetricType_GAUGE:
		ok = m.Gauge != nil
	case dto.MetricType_COUNTER:
		ok = m.Counter != nil
	case dto.MetricType_UNTYPED:
		ok = m.Untyped != nil
	case dto.MetricType_SUMMARY:
		ok = m.Summary != nil
	case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
		ok = m.Histogram != nil
	}
	if !ok {
		return fmt.Errorf("collected metric %q { %s} is not a %s", mf.GetName(), m, mf.GetType())
	}
	if trusted {
		return nil
	}
	if !slices.IsSortedFunc(m.Label, compareLabelNames) {
		// The label pairs are immutable by contract: sort a copy.
		m.Label = slices.Clone(m.Label)
		slices.SortFunc(m.Label, compareLabelNames)
	}
	for i, lp := range m.Label {
		if i > 0 && lp.GetName() == m.Label[i-1].GetName() {
			return fmt.Errorf("collected metric %q { %s} has two or more labels with the same name: %s", mf.GetName(), m, lp.GetName())
		}
		if !utf8.ValidString(lp.GetValue()) {
			return fmt.Errorf("collected metric %q { %s} has a label named %q whose value is not utf8: %#v", mf.GetName(), m, lp.GetName(), lp.GetValue())
		}
	}
	return nil
}

func compareLabelNames(a, b *dto.LabelPair) int { return strings.Compare(a.GetName(), b.GetName()) }

// compareMetrics orders series as client_golang's registry does: by label
// values in label name order, then by timestamp, missing ones last.
func compareMetrics(a, b *dto.Metric) int {
	if c := cmp.Compare(len(a.Label), len(b.Label)); c != 0 {
		return c
	}
	for i, lp := range a.Label {
		if c := strings.Compare(lp.GetValue(), b.Label[i].GetValue()); c != 0 {
			return c
		}
	}
	switch {
	case a.TimestampMs == nil && b.TimestampMs == nil:
		return 0
	case a.TimestampMs == nil:
		return 1
	case b.TimestampMs == nil:
		return -1
	}
	return cmp.Compare(a.GetTimestampMs(), b.GetTimestampMs())
}

// sortUnique returns the family's series in the registry's order without
// duplicates (same label names and values, same timestamp), reporting each
// duplicate as the registry does. Series usually arrive sorted: one pass
// then both checks the order and finds the duplicates.
func sortUnique(mf *dto.MetricFamily, errs *prometheus.MultiError) []*dto.Metric {
	ms := mf.Metric
	for {
		out := make([]*dto.Metric, 1, len(ms))
		out[0] = ms[0]
		var dups prometheus.MultiError
		inOrder := true
		for _, m := range ms[1:] {
			prev := out[len(out)-1]
			c := compareMetrics(prev, m)
			if c > 0 {
				inOrder = false
				break
			}
			if c == 0 && sameLabelNames(prev, m) {
				dups = append(dups, fmt.Errorf("collected metric %q { %s} was collected before with the same name and label values", mf.GetName(), m))
				continue
			}
			out = append(out, m)
		}
		if inOrder {
			*errs = append(*errs, dups...)
			return out
		}
		slices.SortStableFunc(ms, compareMetrics)
	}
}

func sameLabelNames(a, b *dto.Metric) bool {
	for i, lp := range a.Label {
		if lp.GetName() != b.Label[i].GetName() {
			return false
		}
	}
	return true
}

// familyMetas caches, per descriptor, the family a metric of it belongs to:
// name, help, type and unit. A Desc does not expose them, so the first
// metric of each descriptor is gathered once through a registry of its own,
// which also validates it as the registry would.
type familyMetas struct {
	mu    sync.Mutex
	metas map[*prometheus.Desc]*dto.MetricFamily
}

func (f *familyMetas) of(m prometheus.Metric) (*dto.MetricFamily, error) {
	desc := m.Desc()
	f.mu.Lock()
	meta, ok := f.metas[desc]
	f.mu.Unlock()
	if ok {
		return meta, nil
	}
	reg := prometheus.NewRegistry()
	if err := reg.Register(oneMetric{m}); err != nil {
		return nil, err
	}
	mfs, err := reg.Gather()
	if err != nil {
		return nil, err
	}
	if len(mfs) != 1 {
		return nil, fmt.Errorf("metric of %s gathered into %d families", desc, len(mfs))
	}
	mf := mfs[0]
	meta = &dto.MetricFamily{Name: mf.Name, Help: mf.Help, Type: mf.Type, Unit: mf.Unit}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.metas == nil {
		f.metas = map[*prometheus.Desc]*dto.MetricFamily{}
	}
	f.metas[desc] = meta
	return meta, nil
}

// sweep forgets descriptors not seen in a gather once the cache holds many
// more than one gather uses: a collector that made descriptors per scrape
// would otherwise grow it without bound.
func (f *familyMetas) sweep(used map[*prometheus.Desc]*dto.MetricFamily) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.metas) <= 2*len(used)+64 {
		return
	}
	for d := range f.metas {
		if _, ok := used[d]; !ok {
			delete(f.metas, d)
		}
	}
}

// oneMetric is an unchecked collector of a single metric.
type oneMetric struct{ m prometheus.Metric }

func (oneMetric) Describe(chan<- *prometheus.Desc) {}

func (o oneMetric) Collect(ch chan<- prometheus.Metric) { ch <- o.m }

// Merge returns a Gatherer of the families of all gs. Each of them has
// checked its own series; when no family name appears in two of them (the
// exporter's collectors and the agent's process metrics), merging is
// concatenation, and otherwise prometheus.Gatherers checks every series.
func Merge(gs ...prometheus.Gatherer) prometheus.Gatherer {
	return merged(gs)
}

type merged []prometheus.Gatherer

func (m merged) Gather() ([]*dto.MetricFamily, error) {
	var (
		errs    prometheus.MultiError
		results = make(prometheus.Gatherers, 0, len(m))
		out     []*dto.MetricFamily
		names   = map[string]bool{}
		clash   bool
	)
	for i, g := range m {
		mfs, err := g.Gather()
		if err != nil {
			errs = append(errs, fmt.Errorf("[from Gatherer #%d] %w", i+1, err))
		}
		for _, mf := range mfs {
			clash = clash || names[mf.GetName()]
			names[mf.GetName()] = true
		}
		out = append(out, mfs...)
		results = append(results, prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) { return mfs, nil }))
	}
	if clash {
		mfs, err := results.Gather()
		if err != nil {
			errs = append(errs, err)
		}
		return mfs, errs.MaybeUnwrap()
	}
	slices.SortFunc(out, func(a, b *dto.MetricFamily) int { return strings.Compare(a.GetName(), b.GetName()) })
	return out, errs.MaybeUnwrap()
}
