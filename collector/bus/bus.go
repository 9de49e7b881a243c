// Package bus owns the seam every sample and infrastructure event crosses on
// its way between producers (scrape, remote_write, exporters, the simulator,
// the decision engine) and consumers (the TSDB ingester, rules, audits).
//
// Producers and consumers see only the small interfaces below. The in-process
// implementation in this package is the embedded default; the Kafka
// implementation (collector/kafka) drops in behind the same interfaces, so no
// producer or consumer changes when a deployment moves to Kafka.
//
// This package must not import the TSDB or any consumer: it defines data and
// delivery only.
package bus

import (
	"context"
	"errors"
	"sync/atomic"

	"github.com/prometheus/prometheus/model/labels"
)

// Sample is one float sample: a Unix timestamp in milliseconds and a value.
type Sample struct {
	T int64
	V float64
}

// Series is one time series and the samples of it carried by a batch.
type Series struct {
	Labels labels.Labels
	// Hash is Labels.Hash() when the producer already knows it, else 0.
	// Consumers that cache per-series state key on it to skip re-hashing.
	Hash    uint64
	Samples []Sample
	// Memo, when not nil, is a slot the producer keeps for this label set
	// across batches, where a consumer can keep per-series state instead of
	// looking it up again (the ingester keeps the TSDB series reference).
	// The remote-write and Kafka decoders set it from their label caches.
	Memo *SeriesMemo
}

// SeriesMemo holds one consumer's per-series value for one label set. It
// remembers who stored the value and for which labels, so a value is only
// given back to the consumer that stored it, for the same labels: a memo
// that travels with a relabelled copy of a series, or that two consumers
// share, misses instead of answering wrongly. Safe for concurrent use.
type SeriesMemo struct {
	p atomic.Pointer[memoValue]
}

type memoValue struct {
	owner  any
	labels labels.Labels
	v      uint64
}

// Load returns the value owner stored for ls, if any.
func (m *SeriesMemo) Load(owner any, ls labels.Labels) (uint64, bool) {
	if m == nil {
		return 0, false
	}
	mv := m.p.Load()
	if mv == nil || mv.owner != owner || !labels.Equal(mv.labels, ls) {
		return 0, false
	}
	return mv.v, true
}

// Store keeps v for owner and ls, replacing what any consumer stored before.
func (m *SeriesMemo) Store(owner any, ls labels.Labels, v uint64) {
	if m == nil {
		return
	}
	m.p.Store(&memoValue{owner: owner, labels: ls, v: v})
}

// SampleBatch is the unit of sample delivery: what one scrape, one
// remote_write request or one exporter push produced.
type SampleBatch struct {
	Series []Series
}

// Len returns the number of samples in the batch.
func (b *SampleBatch) Len() int {
	n := 0
	for i := range b.Series {
		n += len(b.Series[i].Samples)
	}
	return n
}

// SampleHandler consumes a batch. A returned error is reported back to the
// publisher by the in-process bus; the Kafka bus retries transient errors and
// dead-letters permanent ones (see Permanent).
type SampleHandler func(ctx context.Context, b *SampleBatch) error

// EventHandler consumes one event.
type EventHandler func(ctx context.Context, e Event) error

// SamplePublisher is what a sample producer needs. PublishSamples returns
// once the batch is durable (in-process: appended to the TSDB; Kafka: acked
// by the brokers); implementations must not retain b or its slices after
// returning, because producers reuse them.
type SamplePublisher interface {
	PublishSamples(ctx context.Context, b *SampleBatch) error
}

// EventPublisher is what an event producer needs.
type EventPublisher interface {
	PublishEvents(ctx context.Context, events ...Event) error
}

// SampleConsumer runs h for every batch published, sharing the stream with the
// other consumers of the same group (each batch goes to one member of each
// group). It blocks until ctx is done or the bus is closed.
type SampleConsumer interface {
	ConsumeSamples(ctx context.Context, group string, h SampleHandler) error
}

// EventConsumer is SampleConsumer for events. An empty types list means every
// event type; otherwise only events whose Type is listed reach h.
type EventConsumer interface {
	ConsumeEvents(ctx context.Context, group string, types []string, h EventHandler) error
}

// Bus is the whole seam, implemented by the in-process bus and by Kafka.
type Bus interface {
	SamplePublisher
	EventPublisher
	SampleConsumer
	EventConsumer
	// Ready reports nil once the bus can deliver (the Kafka bus is not ready
	// while its brokers are unreachable).
	Ready() error
	Close() error
}

// ErrClosed is returned by a bus used after Close.
var ErrClosed = errors.New("bus closed")

// ErrNoConsumer is returned by the in-process bus when samples are published
// but nothing consumes them: the publisher must not believe they were stored.
var ErrNoConsumer = errors.New("no sample consumer subscribed")

// PermanentError marks a handler error that retrying cannot fix (a poison
// message: undecodable, invalid labels). The Kafka bus sends such messages to
// the dead-letter topic instead of retrying them.
type PermanentError struct {
	Reason string // short, metric-label friendly: "invalid_labels", "decode"
	Err    error
}

func (e *PermanentError) Error() string { return e.Reason + ": " + e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// Permanent wraps err as a PermanentError with the given reason.
func Permanent(reason string, err error) error {
	if err == nil {
		return nil
	}
	return &PermanentError{Reason: reason, Err: err}
}

// IsPermanent reports whether err (or anything it wraps) is permanent.
func IsPermanent(err error) bool {
	var p *PermanentError
	return errors.As(err, &p)
}
