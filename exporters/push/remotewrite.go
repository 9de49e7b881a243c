package push

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	commoncfg "github.com/prometheus/common/config"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/storage/remote"
	"github.com/prometheus/prometheus/tsdb/agent"

	"github.com/ballast-cloud/ballast/collector/bus"
)

// RemoteWriteConfig configures RemoteWrite. Zero values get the defaults noted.
type RemoteWriteConfig struct {
	// URL is the receiver's remote_write endpoint (required).
	URL string
	// Dir holds the on-disk queue, a Prometheus agent WAL (required).
	Dir string
	// MaxAge bounds the queue: samples still unsent after this long are
	// dropped from the WAL so a receiver that never comes back cannot fill
	// the disk (default 2h, Prometheus agent's max_wal_time).
	MaxAge time.Duration
	// Capacity is the in-memory samples per shard between the WAL and the
	// sender (default 10000); MaxShards the parallel senders (default 4);
	// MaxSamplesPerSend the batch size (default 2000).
	Capacity, MaxShards, MaxSamplesPerSend int
	// BatchSendDeadline sends a partial batch after this long (default 5s).
	BatchSendDeadline time.Duration
	// MinBackoff and MaxBackoff bound the retry delay (30ms, 5s).
	MinBackoff, MaxBackoff time.Duration
	// Timeout bounds one request (default 30s).
	Timeout time.Duration
	// FlushDeadline is how long Close keeps sending what is queued (default 1m).
	FlushDeadline time.Duration
	// BasicAuthUsername with BasicAuthPasswordFile, or BearerTokenFile,
	// authenticate to the receiver. Secrets are read from files only, so
	// they never appear on a command line or in a log.
	BasicAuthUsername     string
	BasicAuthPasswordFile string
	BearerTokenFile       string
}

// RemoteWrite is a bus.SamplePublisher that appends samples to a Prometheus
// agent WAL on disk; Prometheus's remote-write queue manager tails that WAL
// and sends with batching, sharding and retry with backoff. While the
// receiver is down or restarting, samples wait in the WAL (up to MaxAge) and
// are sent when it answers again: nothing within the bound is lost.
//
// The WAL watcher sends only samples newer than its own start, a moment
// after NewRemoteWrite returns; the push loop's first gather is one interval
// later.
//
// What the WAL does not give: samples still unsent when the agent itself
// stops are not resent after its restart (the WAL watcher starts reading at
// the current time); Close sends for up to FlushDeadline first.
type RemoteWrite struct {
	db     *agent.DB
	rs     *remote.Storage
	logger *slog.Logger
	stop   chan struct{}
	done   chan struct{}
	// skipped counts samples the WAL refused as out of order.
	skipped prometheus.Counter
}

var _ bus.SamplePublisher = (*RemoteWrite)(nil)

// NewRemoteWrite opens the WAL in cfg.Dir and starts the sender.
func NewRemoteWrite(cfg RemoteWriteConfig, reg prometheus.Registerer, logger *slog.Logger) (*RemoteWrite, error) {
	rwc, err := cfg.remoteWriteConfig()
	if err != nil {
		return nil, err
	}
	if cfg.Dir == "" {
		return nil, errors.New("push.queue.dir: must not be empty")
	}
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	if cfg.MaxAge == 0 {
		cfg.MaxAge = 2 * time.Hour
	}
	if cfg.FlushDeadline == 0 {
		cfg.FlushDeadline = time.Minute
	}
	rs := remote.NewStorage(logger.With("subsystem", "remote_write"), reg, func() (int64, error) { return 0, nil },
		cfg.Dir, cfg.FlushDeadline, nil, false)
	opts := agent.DefaultOptions()
	opts.MaxWALTime = cfg.MaxAge.Milliseconds()
	opts.MinWALTime = min(opts.MinWALTime, opts.MaxWALTime)
	db, err := agent.Open(logger.With("subsystem", "push_wal"), reg, rs, cfg.Dir, opts)
	if err != nil {
		_ = rs.Close()
		return nil, fmt.Errorf("open push queue in %s: %w", cfg.Dir, err)
	}
	db.SetWriteNotified(rs)
	if err := rs.ApplyConfig(&config.Config{RemoteWriteConfigs: []*config.RemoteWriteConfig{rwc}}); err != nil {
		_ = db.Close()
		_ = rs.Close()
		return nil, fmt.Errorf("push.remote-write-url: %w", err)
	}
	skipped := prometheus.NewCounter(prometheus.CounterOpts{Name: "ballast_exporter_push_out_of_order_samples_total",
		Help: "Samples not queued because their series already had a newer one."})
	if err := reg.Register(skipped); err != nil {
		_ = db.Close()
		_ = rs.Close()
		return nil, fmt.Errorf("register push metrics: %w", err)
	}
	logger.Info("Pushing with remote_write", "url", rwc.URL.Redacted(), "queue_dir", cfg.Dir, "queue_max_age", cfg.MaxAge)
	r := &RemoteWrite{db: db, rs: rs, logger: logger, skipped: skipped, stop: make(chan struct{}), done: make(chan struct{})}
	go r.nudge()
	return r, nil
}

// nudgeInterval bounds how long a queued sample can wait unread.
const nudgeInterval = 500 * time.Millisecond

// nudge wakes the WAL watcher regularly. Each commit notifies it, but a
// notification that arrives while it is busy is dropped and it would then
// wait for its own 15s timer (always so for the first commits, made before
// the watcher runs).
func (r *RemoteWrite) nudge() {
	defer close(r.done)
	t := time.NewTicker(nudgeInterval)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
			r.rs.Notify()
		}
	}
}

func (cfg RemoteWriteConfig) remoteWriteConfig() (*config.RemoteWriteConfig, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("push.remote-write-url %q: want an http or https URL", redact(cfg.URL))
	}
	rwc := config.DefaultRemoteWriteConfig
	// Credentials in the URL become basic auth: Prometheus's queue logs its
	// URL unredacted, so the URL it gets must carry none.
	var urlUser *url.Userinfo
	if u.User != nil {
		urlUser, u.User = u.User, nil
		if cfg.BasicAuthUsername != "" || cfg.BearerTokenFile != "" {
			return nil, errors.New("push.remote-write-url: credentials in the URL and in flags; give one")
		}
	}
	rwc.URL = &commoncfg.URL{URL: u}
	rwc.Name = "ballast"
	// Metadata would need a scrape manager; the receiver gets types from names.
	rwc.MetadataConfig.Send = false
	q := &rwc.QueueConfig
	q.MaxShards = 4
	set := func(dst *int, v int) {
		if v > 0 {
			*dst = v
		}
	}
	setD := func(dst *model.Duration, v time.Duration) {
		if v > 0 {
			*dst = model.Duration(v)
		}
	}
	set(&q.Capacity, cfg.Capacity)
	set(&q.MaxShards, cfg.MaxShards)
	set(&q.MaxSamplesPerSend, cfg.MaxSamplesPerSend)
	setD(&q.BatchSendDeadline, cfg.BatchSendDeadline)
	setD(&q.MinBackoff, cfg.MinBackoff)
	setD(&q.MaxBackoff, cfg.MaxBackoff)
	setD(&rwc.RemoteTimeout, cfg.Timeout)
	q.MinShards = min(q.MinShards, q.MaxShards)
	if q.MaxBackoff < q.MinBackoff {
		return nil, fmt.Errorf("push.queue.max-backoff %s: must not be below push.queue.min-backoff %s", q.MaxBackoff, q.MinBackoff)
	}
	switch {
	case urlUser != nil:
		pw, _ := urlUser.Password()
		rwc.HTTPClientConfig.BasicAuth = &commoncfg.BasicAuth{Username: urlUser.Username(), Password: commoncfg.Secret(pw)}
	case cfg.BasicAuthUsername != "" && cfg.BearerTokenFile != "":
		return nil, errors.New("push.remote-write.bearer-token-file: not allowed together with basic auth")
	case cfg.BasicAuthUsername != "":
		if cfg.BasicAuthPasswordFile == "" {
			return nil, errors.New("push.remote-write.basic-auth-password-file: required with a basic auth username")
		}
		rwc.HTTPClientConfig.BasicAuth = &commoncfg.BasicAuth{Username: cfg.BasicAuthUsername, PasswordFile: cfg.BasicAuthPasswordFile}
	case cfg.BearerTokenFile != "":
		rwc.HTTPClientConfig.Authorization = &commoncfg.Authorization{Type: "Bearer", CredentialsFile: cfg.BearerTokenFile}
	}
	if err := rwc.HTTPClientConfig.Validate(); err != nil {
		return nil, fmt.Errorf("push.remote-write auth: %w", err)
	}
	return &rwc, nil
}

// redact hides a password in a URL for error messages.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "<unparsable URL>"
	}
	return u.Redacted()
}

// PublishSamples queues b on disk. It returns once the samples are in the
// WAL, not once they are sent.
func (r *RemoteWrite) PublishSamples(ctx context.Context, b *bus.SampleBatch) error {
	app := r.db.Appender(ctx)
	for i := range b.Series {
		s := &b.Series[i]
		var ref storage.SeriesRef
		for _, smp := range s.Samples {
			var err error
			ref, err = app.Append(ref, s.Labels, smp.T, smp.V)
			switch {
			case err == nil:
			case errors.Is(err, storage.ErrOutOfOrderSample), errors.Is(err, storage.ErrDuplicateSampleForTimestamp), errors.Is(err, storage.ErrTooOldSample):
				r.skipped.Inc()
			default:
				_ = app.Rollback()
				return fmt.Errorf("queue sample of %s: %w", s.Labels.Get("__name__"), err)
			}
		}
	}
	if err := app.Commit(); err != nil {
		return fmt.Errorf("commit push queue: %w", err)
	}
	return nil
}

// Close sends what is queued for up to FlushDeadline, then closes the WAL.
func (r *RemoteWrite) Close() error {
	close(r.stop)
	<-r.done
	return errors.Join(r.rs.Close(), r.db.Close())
}
