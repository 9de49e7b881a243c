// Package kafka owns Ballast's Kafka bus: the bus.Bus implementation that
// carries samples and infrastructure events between processes through three
// topics (samples, events, dead letters), with the versioned record format of
// docs/wire.md.
//
// Publishing samples is asynchronous through a bounded buffer (block, then
// drop the oldest, counted); consuming is at-least-once through consumer
// groups, one goroutine per assigned partition, offsets committed only after
// the handler returned. Poison records go to the dead-letter topic and never
// block a partition.
//
// It must not know what consumes samples (the TSDB lives behind the
// bus.SampleHandler) and must never log or return a credential.
package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/ballast-cloud/ballast/collector/bus"
	"github.com/ballast-cloud/ballast/collector/prw"
)

// Bus is the Kafka implementation of bus.Bus.
type Bus struct {
	cfg       Config
	logger    *slog.Logger
	metrics   *metrics
	transport *kafka.Transport
	dialer    *kafka.Dialer
	client    *kafka.Client
	samplesW  *kafka.Writer
	eventsW   *kafka.Writer
	producer  *producer
	codec     *codec
	decoder   *prw.Decoder
	encoders  sync.Pool // *sampleEncoder

	parts atomic.Int32 // partitions of the samples topic, once known

	topicsReady chan struct{} // closed once the topics exist
	readyMu     sync.Mutex
	readyErr    error

	mu          sync.Mutex
	closed      bool
	closeCtx    context.Context // done once Close starts
	closeCancel context.CancelFunc
	consumers   sync.WaitGroup
	bg          sync.WaitGroup

	dlqLog sampledLogger
	errLog sampledLogger
}

var _ bus.Bus = (*Bus)(nil)

// New validates cfg and returns a Bus. It does not wait for the brokers: a
// background loop connects with backoff and creates missing topics, and
// Ready reports an error until it has. Metrics are registered with reg (nil:
// unregistered).
func New(cfg Config, reg prometheus.Registerer, logger *slog.Logger) (*Bus, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("component", "kafka")
	tlsCfg, err := cfg.TLS.build()
	if err != nil {
		return nil, err
	}
	mech, err := cfg.SASL.build()
	if err != nil {
		return nil, err
	}
	codec, err := newCodec(cfg.Compression, cfg.Consumer.MaxDecodedBytes)
	if err != nil {
		return nil, err
	}
	b := &Bus{
		cfg:         cfg,
		logger:      logger,
		metrics:     newMetrics(reg),
		codec:       codec,
		decoder:     prw.NewDecoder(prw.Limits{}),
		topicsReady: make(chan struct{}),
		readyErr:    fmt.Errorf("kafka: connecting to brokers %v", cfg.Brokers),
		dlqLog:      sampledLogger{every: 10 * time.Second},
		errLog:      sampledLogger{every: 10 * time.Second},
	}
	b.transport = &kafka.Transport{
		DialTimeout: cfg.DialTimeout,
		ClientID:    cfg.ClientID,
		TLS:         tlsCfg,
		SASL:        mech,
		MetadataTTL: 5 * time.Second,
	}
	b.dialer = &kafka.Dialer{
		ClientID:      cfg.ClientID,
		Timeout:       cfg.DialTimeout,
		DualStack:     true,
		TLS:           tlsCfg,
		SASLMechanism: mech,
	}
	addr := kafka.TCP(cfg.Brokers...)
	b.client = &kafka.Client{Addr: addr, Timeout: cfg.DialTimeout, Transport: b.transport}
	kafkaErrLog := debugLogger(logger)
	// Sample record values are compressed already (docs/wire.md); events
	// and dead letters use Kafka's batch compression.
	b.samplesW = b.newWriter(addr, cfg.Topics.Samples, 0, kafkaErrLog)
	b.eventsW = b.newWriter(addr, "", kafkaCompression(cfg.Compression), kafkaErrLog)
	b.closeCtx, b.closeCancel = context.WithCancel(context.Background())
	b.encoders.New = func() any { return newSampleEncoder(b.codec, cfg.Producer.MaxMessageBytes) }
	b.producer = newProducer(b.samplesW, cfg.Topics.Samples, cfg.Producer, b.topicsReady, b.metrics, logger)
	b.bg.Add(1)
	go func() {
		defer b.bg.Done()
		b.supervise()
	}()
	return b, nil
}

// newWriter returns a writer with acks=all, the configured batching and
// retries, for topic (empty: each message names its own).
func (b *Bus) newWriter(addr net.Addr, topic string, compression kafka.Compression, errLog kafka.Logger) *kafka.Writer {
	p := b.cfg.Producer
	return &kafka.Writer{
		Addr:            addr,
		Topic:           topic,
		Balancer:        &partitionBalancer{},
		MaxAttempts:     3,
		WriteBackoffMin: p.RetryBackoffMin,
		WriteBackoffMax: p.RetryBackoffMax,
		BatchSize:       p.BatchSize,
		BatchBytes:      int64(p.MaxMessageBytes),
		BatchTimeout:    p.BatchTimeout,
		ReadTimeout:     p.WriteTimeout,
		WriteTimeout:    p.WriteTimeout,
		RequiredAcks:    kafka.RequireAll,
		Compression:     compression,
		Transport:       b.transport,
		ErrorLogger:     errLog,
	}
}

func kafkaCompression(c string) kafka.Compression {
	switch c {
	case "snappy":
		return kafka.Snappy
	case "zstd":
		return kafka.Zstd
	}
	return 0
}

// Config returns the effective configuration, defaults filled in.
func (b *Bus) Config() Config { return b.cfg }

// Ready reports nil once the brokers answered and the topics exist, and an
// error while the brokers are unreachable or after Close.
func (b *Bus) Ready() error {
	b.readyMu.Lock()
	defer b.readyMu.Unlock()
	return b.readyErr
}

func (b *Bus) setReady(err error) {
	b.readyMu.Lock()
	b.readyErr = err
	b.readyMu.Unlock()
	if err == nil {
		b.metrics.ready.Set(1)
	} else {
		b.metrics.ready.Set(0)
	}
}

// supervise connects with backoff, creates missing topics, then re-checks the
// brokers every HealthInterval for Ready.
func (b *Bus) supervise() {
	ctx := b.closeCtx
	for attempt := 0; ; attempt++ {
		err := b.ensureTopics(ctx)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return
		}
		b.setReady(fmt.Errorf("kafka: brokers %v not ready: %w", b.cfg.Brokers, err))
		wait := backoff(attempt, b.cfg.ConnectBackoffMin, b.cfg.ConnectBackoffMax)
		if attempt == 0 || b.errLog.allow() {
			b.logger.Warn("Kafka brokers not ready, retrying", "brokers", b.cfg.Brokers, "attempt", attempt+1, "retry_in", wait, "err", err)
		}
		if !sleepCtx(ctx, wait) {
			return
		}
	}
	b.setReady(nil)
	close(b.topicsReady)
	b.logger.Info("Kafka bus ready", "brokers", b.cfg.Brokers, "samples_topic", b.cfg.Topics.Samples, "partitions", b.parts.Load())
	t := time.NewTicker(b.cfg.HealthInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := b.probe(ctx)
		if ctx.Err() != nil {
			return
		}
		was := b.Ready()
		if err != nil {
			err = fmt.Errorf("kafka: brokers %v unreachable: %w", b.cfg.Brokers, err)
			if was == nil {
				b.logger.Warn("Kafka brokers unreachable", "brokers", b.cfg.Brokers, "err", err)
			}
		} else if was != nil {
			b.logger.Info("Kafka brokers reachable again", "brokers", b.cfg.Brokers)
		}
		b.setReady(err)
	}
}

// topicNames lists the bus's topics with the partitions each gets if created.
func (b *Bus) topicNames() []string {
	return []string{b.cfg.Topics.Samples, b.cfg.Topics.Events, b.cfg.Topics.DeadLetter}
}

// ensureTopics creates the missing topics and learns the partition counts.
func (b *Bus) ensureTopics(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, b.cfg.DialTimeout)
	defer cancel()
	md, err := b.client.Metadata(ctx, &kafka.MetadataRequest{Topics: b.topicNames()})
	if err != nil {
		return fmt.Errorf("read metadata: %w", err)
	}
	var create []kafka.TopicConfig
	for _, name := range b.topicNames() {
		i := slices.IndexFunc(md.Topics, func(t kafka.Topic) bool { return t.Name == name })
		switch {
		case i >= 0 && md.Topics[i].Error == nil && len(md.Topics[i].Partitions) > 0:
			continue
		case i >= 0 && md.Topics[i].Error != nil && !errors.Is(md.Topics[i].Error, kafka.UnknownTopicOrPartition):
			return fmt.Errorf("topic %s: %w", name, md.Topics[i].Error)
		}
		parts := b.cfg.EventPartitions
		if name == b.cfg.Topics.Samples {
			parts = b.cfg.Partitions
		}
		create = append(create, kafka.TopicConfig{Topic: name, NumPartitions: parts, ReplicationFactor: b.cfg.ReplicationFactor})
	}
	if len(create) > 0 {
		resp, err := b.client.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: create})
		if err != nil {
			return fmt.Errorf("create topics: %w", err)
		}
		for name, terr := range resp.Errors {
			if terr != nil && !errors.Is(terr, kafka.TopicAlreadyExists) {
				return fmt.Errorf("create topic %s: %w", name, terr)
			}
		}
		for _, t := range create {
			b.logger.Info("Created Kafka topic", "topic", t.Topic, "partitions", t.NumPartitions, "replication_factor", t.ReplicationFactor)
		}
	}
	return b.probe(ctx)
}

// probe checks that a broker answers and the topics exist, recording
// partition counts.
func (b *Bus) probe(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, b.cfg.DialTimeout)
	defer cancel()
	if err := b.ping(ctx); err != nil {
		return err
	}
	// The transport answers metadata from a cache it refreshes every few
	// seconds: fine for partition counts, not for liveness (ping's job).
	md, err := b.client.Metadata(ctx, &kafka.MetadataRequest{Topics: b.topicNames()})
	if err != nil {
		return fmt.Errorf("read metadata: %w", err)
	}
	for _, name := range b.topicNames() {
		i := slices.IndexFunc(md.Topics, func(t kafka.Topic) bool { return t.Name == name })
		if i < 0 || md.Topics[i].Error != nil || len(md.Topics[i].Partitions) == 0 {
			return fmt.Errorf("topic %s is missing", name)
		}
		n := len(md.Topics[i].Partitions)
		b.metrics.partitions.WithLabelValues(name).Set(float64(n))
		if name == b.cfg.Topics.Samples {
			if old := b.parts.Swap(int32(n)); old != 0 && old != int32(n) {
				b.logger.Warn("Samples topic partition count changed; series move partitions once", "topic", name, "from", old, "to", n)
			}
		}
	}
	return nil
}

// ping asks a broker for its API versions over the pooled connections
// (TLS and SASL included): a round trip no cache can answer, without a new
// connection per probe (thousands of exporters may be probing).
func (b *Bus) ping(ctx context.Context) error {
	resp, err := b.client.ApiVersions(ctx, &kafka.ApiVersionsRequest{})
	if err != nil {
		return err
	}
	return resp.Error
}

// partitions is the partition count series are grouped by.
func (b *Bus) partitions() int {
	if n := b.parts.Load(); n > 0 {
		return int(n)
	}
	return b.cfg.Partitions
}

// PublishSamples encodes b into sample records (grouped so one series always
// lands on one partition, split under the message size limit) and buffers
// them for sending. It returns once they are buffered: see Flush. When the
// buffer is full it waits up to producer.block_timeout, then drops the oldest
// waiting records (counted and logged). The caller may reuse b on return.
func (b *Bus) PublishSamples(ctx context.Context, batch *bus.SampleBatch) error {
	if b.isClosed() {
		return bus.ErrClosed
	}
	enc := b.encoders.Get().(*sampleEncoder)
	recs, err := enc.encode(nil, batch, b.partitions())
	b.encoders.Put(enc)
	if err != nil {
		return fmt.Errorf("publish samples: %w", err)
	}
	return b.producer.enqueue(ctx, recs)
}

// Flush waits until every sample record buffered before the call has been
// acknowledged by the brokers (or dropped, and counted).
func (b *Bus) Flush(ctx context.Context) error { return b.producer.flush(ctx) }

// PublishEvents validates and sends events, waiting for the brokers to
// acknowledge them: events are few and each matters (audit, action plans),
// so they bypass the sample buffer and its drop policy.
func (b *Bus) PublishEvents(ctx context.Context, events ...bus.Event) error {
	if b.isClosed() {
		return bus.ErrClosed
	}
	msgs := make([]kafka.Message, 0, len(events))
	for i := range events {
		m, err := encodeEvent(&events[i])
		if err != nil {
			return fmt.Errorf("publish event %d: %w", i, err)
		}
		m.Topic = b.cfg.Topics.Events
		msgs = append(msgs, m)
	}
	if err := b.waitTopics(ctx); err != nil {
		return fmt.Errorf("publish events: %w", err)
	}
	if err := b.eventsW.WriteMessages(ctx, msgs...); err != nil {
		b.metrics.writeErrors.WithLabelValues(b.cfg.Topics.Events).Inc()
		return fmt.Errorf("publish %d events: %w", len(msgs), err)
	}
	b.metrics.publishedEvents.Add(float64(len(msgs)))
	b.metrics.sentRecords.WithLabelValues(b.cfg.Topics.Events).Add(float64(len(msgs)))
	return nil
}

// waitTopics blocks until the topics exist, ctx is done or the bus closes.
func (b *Bus) waitTopics(ctx context.Context) error {
	select {
	case <-b.topicsReady:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-b.closeCtx.Done():
		return bus.ErrClosed
	}
}

func (b *Bus) isClosed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.closed
}

// Close stops every consumer (each commits what it handled), sends buffered
// samples for up to producer.close_timeout, and releases connections.
// Publishing after Close fails with bus.ErrClosed.
func (b *Bus) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	b.closeCancel()
	b.mu.Unlock()

	b.producer.close()
	b.consumers.Wait()
	b.bg.Wait()
	b.setReady(bus.ErrClosed)
	err := errors.Join(b.samplesW.Close(), b.eventsW.Close())
	b.transport.CloseIdleConnections()
	b.codec.close()
	if err != nil {
		return fmt.Errorf("close kafka bus: %w", err)
	}
	return nil
}

// scope derives a context cancelled when ctx is or the bus closes, and
// registers a consumer so Close waits for it. It fails once the bus closed.
func (b *Bus) scope(ctx context.Context) (context.Context, func(), error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, nil, bus.ErrClosed
	}
	b.consumers.Add(1)
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(b.closeCtx, cancel)
	return ctx, func() {
		stop()
		cancel()
		b.consumers.Done()
	}, nil
}
