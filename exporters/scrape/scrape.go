// Package scrape owns the shape every Ballast exporter collector has: the
// one-method Collector interface, and the Set that runs the enabled
// collectors concurrently on each scrape and reports per collector how long
// it took and whether it succeeded. It also owns the path from collectors
// to a /metrics response that stays cheap at tens of thousands of series:
// label sets built once (Pair, Labels) sent with fresh values (Sender), the
// Set's own Gather, and a Handler with a fast text encoder.
//
// It must not know any concrete collector: the wiring lives in package
// exporters, and each collector lives in its own package.
package scrape

import (
	"errors"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Namespace is the prefix of the exporter's own metrics.
const Namespace = "ballast_exporter"

// Collector is one source of metrics. Update sends const metrics built for
// this scrape to ch and returns an error when the source could not be read
// completely; what was sent before the error is still exposed.
type Collector interface {
	Update(ch chan<- prometheus.Metric) error
}

// ErrNoData marks a collector that found nothing to report on this host (no
// libvirt domains, no block devices): it counts as success and is logged at
// debug level only.
var ErrNoData = errors.New("collector returned no data")

var (
	durationDesc = prometheus.NewDesc(
		prometheus.BuildFQName(Namespace, "scrape", "collector_duration_seconds"),
		"Duration of a collector scrape.",
		[]string{"collector"}, nil)
	successDesc = prometheus.NewDesc(
		prometheus.BuildFQName(Namespace, "scrape", "collector_success"),
		"Whether a collector succeeded (1) or failed (0) on this scrape.",
		[]string{"collector"}, nil)
)

// Set is a prometheus.Collector over named Collectors.
type Set struct {
	collectors map[string]Collector
	names      []string
	logger     *slog.Logger
	// now is the clock used for durations; tests may replace it.
	now   func() time.Time
	metas familyMetas
}

var _ prometheus.Collector = (*Set)(nil)

// NewSet returns a Set over collectors, keyed by collector name.
func NewSet(collectors map[string]Collector, logger *slog.Logger) *Set {
	names := make([]string, 0, len(collectors))
	for n := range collectors {
		names = append(names, n)
	}
	sort.Strings(names)
	return &Set{collectors: collectors, names: names, logger: logger, now: time.Now}
}

// Names returns the names of the collectors in the set, sorted.
func (s *Set) Names() []string { return append([]string(nil), s.names...) }

// Describe sends the descriptors of the per-collector scrape metrics. The
// collectors' own metrics are unchecked: they vary with what each host has.
func (s *Set) Describe(ch chan<- *prometheus.Desc) {
	ch <- durationDesc
	ch <- successDesc
}

// Collect runs every collector concurrently and waits for all of them.
func (s *Set) Collect(ch chan<- prometheus.Metric) {
	var wg sync.WaitGroup
	wg.Add(len(s.names))
	for _, name := range s.names {
		go func() {
			defer wg.Done()
			s.execute(name, s.collectors[name], ch)
		}()
	}
	wg.Wait()
}

func (s *Set) execute(name string, c Collector, ch chan<- prometheus.Metric) {
	begin := s.now()
	err := c.Update(ch)
	duration := s.now().Sub(begin)
	success := 1.0
	switch {
	case err == nil:
		s.logger.Debug("Collector succeeded", "collector", name, "duration_seconds", duration.Seconds())
	case errors.Is(err, ErrNoData):
		s.logger.Debug("Collector returned no data", "collector", name, "duration_seconds", duration.Seconds(), "err", err)
	default:
		success = 0
		s.logger.Error("Collector failed", "collector", name, "duration_seconds", duration.Seconds(), "err", err)
	}
	ch <- prometheus.MustNewConstMetric(durationDesc, prometheus.GaugeValue, duration.Seconds(), name)
	ch <- prometheus.MustNewConstMetric(successDesc, prometheus.GaugeValue, success, name)
}

// ReportUp sends desc (a "<service>_up" gauge without labels) as 1 when err
// is nil and 0 otherwise, and returns err: the ending of every collector
// that talks to a service which may be down.
func ReportUp(ch chan<- prometheus.Metric, desc *prometheus.Desc, err error) error {
	up := 1.0
	if err != nil {
		up = 0
	}
	ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, up)
	return err
}
