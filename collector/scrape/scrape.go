// Package scrape owns pull ingest: it runs Prometheus's own discovery and
// scrape managers (static_configs and file_sd_configs in the familiar
// scrape_configs shape, relabelling, up and scrape_duration_seconds per
// target) and hands every scrape to the bus as one sample batch.
//
// It must not write to the TSDB directly: with Kafka configured, scrapes go
// through Kafka like every other sample.
package scrape

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	promconfig "github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/discovery"
	_ "github.com/prometheus/prometheus/discovery/file" // file_sd_configs
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	pscrape "github.com/prometheus/prometheus/scrape"
	"github.com/prometheus/prometheus/storage"

	"github.com/ballast-cloud/ballast/collector/bus"
	"github.com/ballast-cloud/ballast/collector/ingest"
)

// Source is the ingest source label of this path.
const Source = "scrape"

// Manager scrapes the configured targets.
type Manager struct {
	sdMetrics *discovery.SDMetrics
	discovery *discovery.Manager
	scrape    *pscrape.Manager
	cancel    context.CancelFunc
	ctx       context.Context
	logger    *slog.Logger

	mu  sync.RWMutex
	cfg *promconfig.Config
}

// New builds the discovery and scrape managers; nothing runs until Run.
func New(pub bus.SamplePublisher, metrics *ingest.Metrics, reg prometheus.Registerer, logger *slog.Logger) (*Manager, error) {
	if pub == nil {
		return nil, errors.New("scrape: nil publisher")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if metrics == nil {
		metrics = ingest.NewMetrics(nil)
	}
	metrics.Received.WithLabelValues(Source) // exported as 0 until the first scrape
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	sdMetrics, err := discovery.CreateAndRegisterSDMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("scrape: register discovery metrics: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	dm := discovery.NewManager(ctx, logger.With("component", "discovery"), reg, sdMetrics, discovery.Name("scrape"))
	if dm == nil {
		cancel()
		return nil, errors.New("scrape: cannot create discovery manager")
	}
	sm, err := pscrape.NewManager(&pscrape.Options{AppendMetadata: false}, logger.With("component", "scrape"), nil, nil,
		&appendable{pub: pub, metrics: metrics}, reg)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("scrape: %w", err)
	}
	return &Manager{sdMetrics: sdMetrics, discovery: dm, scrape: sm, ctx: ctx, cancel: cancel, logger: logger.With("component", "scrape")}, nil
}

// ApplyConfig (re)configures the scrape jobs. It may be called before or
// while Run runs.
func (m *Manager) ApplyConfig(cfg *promconfig.Config) error {
	scfgs, err := cfg.GetScrapeConfigs()
	if err != nil {
		return fmt.Errorf("scrape_configs: %w", err)
	}
	sd := make(map[string]discovery.Configs, len(scfgs))
	for _, sc := range scfgs {
		sd[sc.JobName] = sc.ServiceDiscoveryConfigs
	}
	if err := m.scrape.ApplyConfig(cfg); err != nil {
		return fmt.Errorf("apply scrape config: %w", err)
	}
	if err := m.discovery.ApplyConfig(sd); err != nil {
		return fmt.Errorf("apply discovery config: %w", err)
	}
	m.mu.Lock()
	m.cfg = cfg
	m.mu.Unlock()
	m.logger.Info("Scrape configuration applied", "jobs", len(scfgs))
	return nil
}

// Run discovers and scrapes until ctx is done, then stops both managers.
func (m *Manager) Run(ctx context.Context) error {
	errc := make(chan error, 2)
	go func() { errc <- m.discovery.Run() }()
	go func() { errc <- m.scrape.Run(m.discovery.SyncCh()) }()
	select {
	case <-ctx.Done():
	case err := <-errc:
		if err != nil {
			m.logger.Error("Scrape stopped", "err", err)
		}
	}
	m.cancel()
	m.scrape.Stop()
	return nil
}

// SDMetrics are the service discovery metrics registered for this manager;
// other discovery managers of the process (Alertmanager discovery) share
// them, as in Prometheus, since they can be registered only once.
func (m *Manager) SDMetrics() *discovery.SDMetrics { return m.sdMetrics }

// Targets is what the Prometheus HTTP API's /api/v1/targets reads.
func (m *Manager) Targets() *pscrape.Manager { return m.scrape }

// appendable turns the scrape loop's appends into one bus batch per scrape.
type appendable struct {
	pub     bus.SamplePublisher
	metrics *ingest.Metrics
}

func (a *appendable) AppenderV2(ctx context.Context) storage.AppenderV2 {
	return &appender{ctx: ctx, a: a}
}

type appender struct {
	ctx   context.Context
	a     *appendable
	batch bus.SampleBatch
	index map[uint64]int
}

// errNativeHistograms refuses native histograms, which the bus does not carry.
var errNativeHistograms = errors.New("native histograms are not ingested by Ballast")

func (ap *appender) Append(_ storage.SeriesRef, ls labels.Labels, _, t int64, v float64, h *histogram.Histogram, fh *histogram.FloatHistogram, _ storage.AppendV2Options) (storage.SeriesRef, error) {
	if h != nil || fh != nil {
		ap.a.metrics.Rejected.WithLabelValues(Source, "native_histogram_unsupported").Inc()
		return 0, errNativeHistograms
	}
	hash := ls.Hash()
	if ap.index == nil {
		ap.index = map[uint64]int{}
	}
	if i, ok := ap.index[hash]; ok && labels.Equal(ap.batch.Series[i].Labels, ls) {
		ap.batch.Series[i].Samples = append(ap.batch.Series[i].Samples, bus.Sample{T: t, V: v})
	} else {
		ap.index[hash] = len(ap.batch.Series)
		ap.batch.Series = append(ap.batch.Series, bus.Series{Labels: ls, Hash: hash, Samples: []bus.Sample{{T: t, V: v}}})
	}
	// The hash is a stable reference for the scrape cache; we ignore it on
	// the way back in, so a collision costs nothing.
	return storage.SeriesRef(hash), nil
}

func (ap *appender) Commit() error {
	if len(ap.batch.Series) == 0 {
		return nil
	}
	ap.a.metrics.Received.WithLabelValues(Source).Add(float64(ap.batch.Len()))
	err := ap.a.pub.PublishSamples(ap.ctx, &ap.batch)
	var re *ingest.RejectedError
	if errors.As(err, &re) {
		// Counted by the ingester; the scrape itself succeeded.
		err = nil
	}
	ap.batch.Series, ap.index = nil, nil
	return err
}

func (ap *appender) Rollback() error {
	ap.batch.Series, ap.index = nil, nil
	return nil
}
