package scrape

import (
	"runtime"
	"sort"
	"strings"
	"sync"
	"weak"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// This file is the cheap path for collectors that send tens of thousands of
// series per scrape (the instance collector at 1000 domains sends 30 000).
// prometheus.MustNewConstMetric builds every label pair of a series anew on
// every scrape; most of a domain's labels (name, uuid, devices, metadata)
// do not change between scrapes, only the values do. A collector builds
// the label sets once with Pair and Labels, keeps them while they hold, and
// sends fresh values each scrape through a Sender. The values are never
// cached: only the label pairs are.

// pairs interns label pairs: the collectors of a host ask for the same
// pair many times (every domain has os_type="hvm", target_bus="virtio"; the
// instance and inventory collectors label the same domain alike), and one
// pair costs 80 bytes. A pair is forgotten once no label set holds it.
var pairs = struct {
	sync.Mutex
	m     map[pairKey]weak.Pointer[dto.LabelPair]
	names map[string]*string
}{m: map[pairKey]weak.Pointer[dto.LabelPair]{}, names: map[string]*string{}}

type pairKey struct{ name, value string }

// Pair returns the label pair name=value. Pairs, and the label sets built
// from them, are shared and immutable once sent (the dto contract): never
// change them. A value that is not valid UTF-8 has the bad bytes replaced
// by U+FFFD, so Gather need not check it on every scrape.
func Pair(name, value string) *dto.LabelPair {
	k := pairKey{name, strings.ToValidUTF8(value, "\uFFFD")}
	pairs.Lock()
	defer pairs.Unlock()
	if p := pairs.m[k].Value(); p != nil {
		return p
	}
	n := pairs.names[name]
	if n == nil {
		n = &k.name
		pairs.names[name] = n
	}
	p := &dto.LabelPair{Name: n, Value: &k.value}
	wp := weak.Make(p)
	pairs.m[k] = wp
	runtime.AddCleanup(p, func(k pairKey) {
		pairs.Lock()
		defer pairs.Unlock()
		if pairs.m[k] == wp { // not replaced by a newer pair meanwhile
			delete(pairs.m, k)
		}
	}, k)
	return p
}

// Labels returns the pairs as a series' label set, sorted by name as
// client_golang exposes them.
func Labels(pairs ...*dto.LabelPair) []*dto.LabelPair {
	out := append([]*dto.LabelPair(nil), pairs...)
	sort.Slice(out, func(i, j int) bool { return out[i].GetName() < out[j].GetName() })
	return out
}

// sendBlock is how many metrics a Sender allocates at once: one allocation
// per block instead of several per series.
const sendBlock = 256

// Sender sends the const metrics of one scrape with label sets built
// beforehand. It is not safe for concurrent use: one per Update call.
type Sender struct {
	ch       chan<- prometheus.Metric
	metrics  []sentMetric
	gauges   []dto.Gauge
	counters []dto.Counter
}

// NewSender returns a Sender writing to ch.
func NewSender(ch chan<- prometheus.Metric) *Sender { return &Sender{ch: ch} }

// Gauge sends a gauge of d with a label set built by Labels (nil for none).
func (s *Sender) Gauge(d *prometheus.Desc, v float64, labels []*dto.LabelPair) {
	m, g := s.next(d, v, labels), take(&s.gauges)
	g.Value, m.metric.Gauge = &m.value, g
	s.ch <- m
}

// Counter sends a counter of d with a label set built by Labels.
func (s *Sender) Counter(d *prometheus.Desc, v float64, labels []*dto.LabelPair) {
	m, c := s.next(d, v, labels), take(&s.counters)
	c.Value, m.metric.Counter = &m.value, c
	s.ch <- m
}

// Send sends a gauge or a counter.
func (s *Sender) Send(d *prometheus.Desc, kind prometheus.ValueType, v float64, labels []*dto.LabelPair) {
	if kind == prometheus.CounterValue {
		s.Counter(d, v, labels)
		return
	}
	s.Gauge(d, v, labels)
}

func (s *Sender) next(d *prometheus.Desc, v float64, labels []*dto.LabelPair) *sentMetric {
	m := take(&s.metrics)
	m.desc, m.value, m.metric.Label = d, v, labels
	return m
}

// take returns the next element of a block, allocating a new block when
// the last one is used up.
func take[T any](block *[]T) *T {
	if len(*block) == 0 {
		*block = make([]T, sendBlock)
	}
	e := &(*block)[0]
	*block = (*block)[1:]
	return e
}

// sentMetric carries its dto.Metric ready-made: Gather takes it as is, a
// registry copies it with Write.
type sentMetric struct {
	desc   *prometheus.Desc
	value  float64
	metric dto.Metric
}

func (m *sentMetric) Desc() *prometheus.Desc { return m.desc }

func (m *sentMetric) Write(out *dto.Metric) error {
	out.Label, out.Gauge, out.Counter = m.metric.Label, m.metric.Gauge, m.metric.Counter
	return nil
}

// LabelCache keeps label sets from one scrape to the next, one V per key
// (a domain's UUID, say), for a collector whose series' labels come from
// descriptions that rarely change. It is safe for concurrent scrapes.
type LabelCache[V any] struct {
	mu sync.Mutex
	m  map[string]V
}

// Sync returns a V for each of a scrape's n items, index for index: the
// kept one when keep says it still holds, otherwise a new one from build,
// kept in its place. An item whose key is empty gets the zero V. Keys the
// scrape did not have are forgotten.
func (c *LabelCache[V]) Sync(n int, key func(i int) string, keep func(i int, v V) bool, build func(i int) V) []V {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]V{}
	}
	out := make([]V, n)
	seen := make(map[string]bool, n)
	for i := range n {
		k := key(i)
		if k == "" {
			continue
		}
		v, ok := c.m[k]
		if !ok || !keep(i, v) {
			v = build(i)
			c.m[k] = v
		}
		out[i], seen[k] = v, true
	}
	for k := range c.m {
		if !seen[k] {
			delete(c.m, k)
		}
	}
	return out
}
