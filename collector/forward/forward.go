// Package forward owns remote-write forwarding: everything Ballast stores is
// also sent to the remote_write endpoints configured (Thanos Receive, Mimir,
// VictoriaMetrics, another Prometheus) for long-term or global storage.
//
// It runs Prometheus's own remote-write queue managers, which tail the TSDB's
// write-ahead log: forwarding is as durable as local storage, resumes after a
// restart from the WAL, and retries with backoff and resharding.
package forward

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	promconfig "github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/storage/remote"

	"github.com/ballast-cloud/ballast/tsdb"
)

// Forwarder sends everything written to the local WAL to remote endpoints.
type Forwarder struct {
	rs     *remote.Storage
	logger *slog.Logger
}

// Options configures the forwarder.
type Options struct {
	// FlushDeadline bounds how long shutdown waits to send what is queued
	// (default 1m, as Prometheus).
	FlushDeadline time.Duration
}

// New starts tailing st's WAL. Nothing is sent until ApplyConfig names at
// least one remote_write endpoint.
func New(opts Options, st *tsdb.Storage, reg prometheus.Registerer, logger *slog.Logger) (*Forwarder, error) {
	if st == nil {
		return nil, errors.New("forward: nil storage")
	}
	if opts.FlushDeadline == 0 {
		opts.FlushDeadline = time.Minute
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("component", "forward")
	rs := remote.NewStorage(logger, reg, st.StartTime, st.Path(), opts.FlushDeadline, nil, false)
	st.NotifyWrites(rs)
	return &Forwarder{rs: rs, logger: logger}, nil
}

// ApplyConfig (re)starts one queue per cfg.RemoteWriteConfigs entry.
func (f *Forwarder) ApplyConfig(cfg *promconfig.Config) error {
	if err := f.rs.ApplyConfig(cfg); err != nil {
		return fmt.Errorf("remote_write: %w", err)
	}
	if n := len(cfg.RemoteWriteConfigs); n > 0 {
		f.logger.Info("Forwarding to remote_write endpoints", "endpoints", n)
	}
	return nil
}

// Close flushes queued samples (up to the flush deadline) and stops.
func (f *Forwarder) Close() error { return f.rs.Close() }
