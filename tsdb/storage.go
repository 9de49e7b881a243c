// Package tsdb owns Ballast's time-series storage: the embedded Prometheus
// TSDB (WAL, head, blocks, retention) and the PromQL engine over it.
//
// Everything that touches the upstream storage API lives here, so the churn of
// that API (the V1 Appender giving way to AppenderV2, option renames) stays in
// one package. Callers append through Appender and read through Queryable or
// the PromQL engine; they never import github.com/prometheus/prometheus/tsdb.
package tsdb

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/storage"
	ptsdb "github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/util/compression"
)

// Config is the storage configuration. Zero values get the defaults noted.
type Config struct {
	// Path is the data directory (required).
	Path string
	// Retention is how long samples are kept (default 15d).
	Retention time.Duration
	// RetentionSize caps the bytes kept on disk, oldest blocks first (0: no cap).
	RetentionSize int64
	// OutOfOrderWindow accepts samples this much older than the newest sample
	// of their series (default 10m: late exporters, Kafka replays). Negative
	// disables out-of-order ingestion.
	OutOfOrderWindow time.Duration
	// WALCompression is none, snappy (default) or zstd.
	WALCompression string
	// MinBlockDuration and MaxBlockDuration bound block sizes (2h and 10% of
	// retention, at most 31d, as Prometheus does).
	MinBlockDuration time.Duration
	MaxBlockDuration time.Duration

	// QueryTimeout bounds one PromQL evaluation (default 2m).
	QueryTimeout time.Duration
	// QueryMaxSamples bounds the samples one query may load (default 50M).
	QueryMaxSamples int
	// LookbackDelta is PromQL's staleness window (default 5m).
	LookbackDelta time.Duration
	// QueryShards splits shardable aggregations into this many parallel
	// series shards (default GOMAXPROCS; 1 disables sharding).
	QueryShards int
}

// withDefaults returns c with zero values replaced by defaults, or an error
// naming the first invalid field.
func (c Config) withDefaults() (Config, error) {
	if c.Path == "" {
		return c, errors.New("storage.tsdb.path: must not be empty")
	}
	if c.Retention == 0 {
		c.Retention = 15 * 24 * time.Hour
	}
	if c.Retention < 0 {
		return c, fmt.Errorf("storage.tsdb.retention_time: %s must be positive", c.Retention)
	}
	if c.RetentionSize < 0 {
		return c, fmt.Errorf("storage.tsdb.retention_size: %d must not be negative", c.RetentionSize)
	}
	if c.OutOfOrderWindow == 0 {
		c.OutOfOrderWindow = 10 * time.Minute
	}
	if c.OutOfOrderWindow < 0 {
		c.OutOfOrderWindow = 0
	}
	switch c.WALCompression {
	case "":
		c.WALCompression = "snappy"
	case "none", "snappy", "zstd":
	default:
		return c, fmt.Errorf("storage.tsdb.wal_compression: %q is not one of none, snappy, zstd", c.WALCompression)
	}
	if c.MinBlockDuration == 0 {
		c.MinBlockDuration = 2 * time.Hour
	}
	if c.MaxBlockDuration == 0 {
		c.MaxBlockDuration = min(max(c.Retention/10, c.MinBlockDuration), 31*24*time.Hour)
	}
	if c.MaxBlockDuration < c.MinBlockDuration {
		return c, fmt.Errorf("storage.tsdb.max_block_duration: %s is below min_block_duration %s", c.MaxBlockDuration, c.MinBlockDuration)
	}
	if c.QueryTimeout == 0 {
		c.QueryTimeout = 2 * time.Minute
	}
	if c.QueryMaxSamples == 0 {
		c.QueryMaxSamples = 50_000_000
	}
	if c.LookbackDelta == 0 {
		c.LookbackDelta = 5 * time.Minute
	}
	if c.QueryShards == 0 {
		c.QueryShards = runtime.GOMAXPROCS(0)
	}
	if c.QueryTimeout < 0 || c.QueryMaxSamples < 0 || c.LookbackDelta < 0 || c.QueryShards < 0 {
		return c, errors.New("storage.tsdb query limits: query_timeout, query_max_samples and lookback_delta must be positive")
	}
	return c, nil
}

// Storage is the embedded TSDB plus the PromQL engine reading it.
type Storage struct {
	cfg    Config
	db     *ptsdb.DB
	stats  *ptsdb.DBStats
	engine promql.QueryEngine
	logger *slog.Logger
}

// Open opens (or creates) the TSDB at cfg.Path, replaying its WAL, and builds
// the PromQL engine. Metrics of both are registered with reg.
func Open(cfg Config, reg prometheus.Registerer, logger *slog.Logger) (*Storage, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	base := logger
	logger = logger.With("component", "tsdb")
	if err := os.MkdirAll(cfg.Path, 0o755); err != nil {
		return nil, fmt.Errorf("create storage directory: %w", err)
	}
	opts := ptsdb.DefaultOptions()
	opts.RetentionDuration = cfg.Retention.Milliseconds()
	opts.MaxBytes = cfg.RetentionSize
	opts.OutOfOrderTimeWindow = cfg.OutOfOrderWindow.Milliseconds()
	opts.MinBlockDuration = cfg.MinBlockDuration.Milliseconds()
	opts.MaxBlockDuration = cfg.MaxBlockDuration.Milliseconds()
	opts.EnableExemplarStorage = true
	opts.MaxExemplars = 100_000
	opts.EnableMemorySnapshotOnShutdown = false
	opts.EnableSharding = true // parallel query shards (shard.go)
	switch cfg.WALCompression {
	case "none":
		opts.WALCompression = compression.None
	case "snappy":
		opts.WALCompression = compression.Snappy
	case "zstd":
		opts.WALCompression = compression.Zstd
	}
	stats := ptsdb.NewDBStats()
	start := time.Now()
	logger.Info("Opening storage", "path", cfg.Path, "retention", cfg.Retention, "out_of_order_window", cfg.OutOfOrderWindow)
	db, err := ptsdb.Open(cfg.Path, logger, reg, opts, stats)
	if err != nil {
		return nil, fmt.Errorf("open tsdb %s: %w", cfg.Path, err)
	}
	logger.Info("Storage ready", "duration", time.Since(start).Round(time.Millisecond), "head_series", db.Head().NumSeries())

	engine := promql.NewEngine(promql.EngineOpts{
		Logger:                   base.With("component", "tsdb/promql"),
		Reg:                      reg,
		MaxSamples:               cfg.QueryMaxSamples,
		Timeout:                  cfg.QueryTimeout,
		LookbackDelta:            cfg.LookbackDelta,
		EnableAtModifier:         true,
		EnableNegativeOffset:     true,
		EnablePerStepStats:       true,
		NoStepSubqueryIntervalFn: func(int64) int64 { return time.Minute.Milliseconds() },
	})
	return &Storage{cfg: cfg, db: db, stats: stats, engine: newShardedEngine(engine, db, cfg.QueryShards, reg), logger: logger}, nil
}

// Config returns the effective configuration, defaults filled in.
func (s *Storage) Config() Config { return s.cfg }

// Engine returns the PromQL engine over this storage.
func (s *Storage) Engine() promql.QueryEngine { return s.engine }

// Queryable returns the storage for PromQL and the HTTP API.
func (s *Storage) Queryable() storage.SampleAndChunkQueryable { return s.db }

// ExemplarQueryable returns the exemplar storage.
func (s *Storage) ExemplarQueryable() storage.ExemplarQueryable { return s.db }

// HeadSeries returns the number of series in the in-memory head.
func (s *Storage) HeadSeries() uint64 { return s.db.Head().NumSeries() }

// Close flushes and closes the TSDB. Samples acknowledged before Close are in
// the WAL and are replayed by the next Open.
func (s *Storage) Close() error {
	s.logger.Info("Closing storage")
	return s.db.Close()
}

// Ref is an opaque series reference returned by Append. Passing it back with
// the same labels skips the label lookup; a stale Ref is harmless.
type Ref uint64

// Appender adds samples in a transaction. It is not safe for concurrent use;
// take one per goroutine.
type Appender interface {
	Append(ref Ref, ls labels.Labels, t int64, v float64) (Ref, error)
	Commit() error
	Rollback() error
}

// Appender starts a transaction.
func (s *Storage) Appender(ctx context.Context) Appender {
	return &appender{app: s.db.AppenderV2(ctx)}
}

// AppendableV2 exposes the upstream append interface for upstream components
// (remote-write compatibility tests, the PromQL test harness). Ballast's own
// ingest uses Appender.
func (s *Storage) AppendableV2() storage.AppendableV2 { return s.db }

// Appendable is the V1 appender interface, for Prometheus's rule manager
// (recording rules and the ALERTS series).
func (s *Storage) Appendable() storage.Appendable { return s.db }

type appender struct {
	app storage.AppenderV2
}

func (a *appender) Append(ref Ref, ls labels.Labels, t int64, v float64) (Ref, error) {
	r, err := a.app.Append(storage.SeriesRef(ref), ls, 0, t, v, nil, nil, storage.AOptions{})
	return Ref(r), err
}

func (a *appender) Commit() error   { return a.app.Commit() }
func (a *appender) Rollback() error { return a.app.Rollback() }

// Reject reasons, used as metric label values and in error messages.
const (
	ReasonOutOfOrder    = "out_of_order"
	ReasonOutOfBounds   = "out_of_bounds"
	ReasonTooOld        = "too_old"
	ReasonDuplicate     = "duplicate_timestamp"
	ReasonInvalidLabels = "invalid_labels"
	ReasonOther         = "other"
)

// RejectReason classifies an Append error. It returns "" for nil.
func RejectReason(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, storage.ErrOutOfOrderSample):
		return ReasonOutOfOrder
	case errors.Is(err, storage.ErrOutOfBounds):
		return ReasonOutOfBounds
	case errors.Is(err, storage.ErrTooOldSample):
		return ReasonTooOld
	case errors.Is(err, storage.ErrDuplicateSampleForTimestamp):
		return ReasonDuplicate
	case errors.Is(err, ptsdb.ErrInvalidSample):
		return ReasonInvalidLabels
	}
	return ReasonOther
}
