package kafka

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"
)

// fakeWriter records what it is asked to write; fail, when set, decides the
// outcome of each call, and gate, when set, holds every call until closed.
type fakeWriter struct {
	mu      sync.Mutex
	calls   int
	written []string
	fail    func(call int, msgs []kafka.Message) error
	gate    chan struct{}
}

func (w *fakeWriter) WriteMessages(ctx context.Context, msgs ...kafka.Message) error {
	if w.gate != nil {
		select {
		case <-w.gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.calls++
	var err error
	if w.fail != nil {
		err = w.fail(w.calls, msgs)
	}
	var werrs kafka.WriteErrors
	for i, m := range msgs {
		if err == nil || (errors.As(err, &werrs) && werrs[i] == nil) {
			w.written = append(w.written, string(m.Key))
		}
	}
	return err
}

func (w *fakeWriter) keys() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.written...)
}

func rec(key string, size, samples int) encodedRecord {
	return encodedRecord{msg: kafka.Message{Key: []byte(key), Value: make([]byte, size-len(key))}, samples: samples}
}

func testProducer(t *testing.T, w recordWriter, cfg ProducerConfig) (*producer, *metrics) {
	t.Helper()
	full, err := Config{Brokers: []string{"x:1"}, Producer: cfg}.withDefaults()
	require.NoError(t, err)
	ready := make(chan struct{})
	close(ready)
	m := newMetrics(nil)
	p := newProducer(w, "samples", full.Producer, ready, m, testLogger(t))
	t.Cleanup(p.close)
	return p, m
}

func (p *producer) inflightLen() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.inflight)
}

func TestProducerFullBufferBlocksThenDropsOldest(t *testing.T) {
	w := &fakeWriter{gate: make(chan struct{})}
	p, m := testProducer(t, w, ProducerConfig{
		MaxMessageBytes: 64 << 10, BufferBytes: 128 << 10, MaxInflightBytes: 1, BlockTimeout: 20 * time.Millisecond,
	})
	const size = 40 << 10 // three fit in the buffer
	ctx := t.Context()
	require.NoError(t, p.enqueue(ctx, []encodedRecord{rec("r1", size, 10)}))
	require.Eventually(t, func() bool { return p.inflightLen() == 1 }, 10*time.Second, time.Millisecond)
	require.NoError(t, p.enqueue(ctx, []encodedRecord{rec("r2", size, 20), rec("r3", size, 30), rec("r4", size, 40)}))
	require.Zero(t, testutil.ToFloat64(m.droppedSamples.WithLabelValues("buffer_full")))

	// The buffer is full and the writer stuck: r5 waits, then r2 (the
	// oldest waiting; r1 is in flight) is dropped for it.
	require.NoError(t, p.enqueue(ctx, []encodedRecord{rec("r5", size, 50)}))
	require.Equal(t, 20.0, testutil.ToFloat64(m.droppedSamples.WithLabelValues("buffer_full")))
	require.Equal(t, 1.0, testutil.ToFloat64(m.droppedRecords.WithLabelValues("buffer_full")))
	require.Positive(t, testutil.ToFloat64(m.blockedSeconds))
	require.Equal(t, float64(4*size), testutil.ToFloat64(m.bufferBytes))

	close(w.gate)
	require.NoError(t, p.flush(ctx))
	require.Equal(t, []string{"r1", "r3", "r4", "r5"}, w.keys())
	require.Equal(t, 130.0, testutil.ToFloat64(m.sentSamples))
	require.Zero(t, testutil.ToFloat64(m.bufferBytes))
}

func TestProducerBlockedPublisherHonoursContext(t *testing.T) {
	w := &fakeWriter{gate: make(chan struct{})}
	defer close(w.gate)
	p, m := testProducer(t, w, ProducerConfig{
		MaxMessageBytes: 64 << 10, BufferBytes: 128 << 10, MaxInflightBytes: 1, BlockTimeout: time.Hour,
	})
	require.NoError(t, p.enqueue(t.Context(), []encodedRecord{rec("r1", 40<<10, 1)}))
	require.Eventually(t, func() bool { return p.inflightLen() == 1 }, 10*time.Second, time.Millisecond)
	require.NoError(t, p.enqueue(t.Context(), []encodedRecord{rec("r2", 60<<10, 1), rec("r3", 60<<10, 1)}))
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() { errc <- p.enqueue(ctx, []encodedRecord{rec("r4", 60<<10, 1)}) }()
	cancel()
	require.ErrorIs(t, <-errc, context.Canceled)
	require.Zero(t, testutil.ToFloat64(m.droppedSamples.WithLabelValues("buffer_full")))
}

// TestProducerRetriesOnlyFailedRecordsInOrder: a partly failed round is
// retried with only its failed records, before anything newer is sent.
func TestProducerRetriesOnlyFailedRecordsInOrder(t *testing.T) {
	w := &fakeWriter{fail: func(call int, msgs []kafka.Message) error {
		if call > 2 {
			return nil
		}
		werrs := make(kafka.WriteErrors, len(msgs))
		for i, m := range msgs {
			if string(m.Key) == "b" || string(m.Key) == "d" {
				werrs[i] = kafka.NotLeaderForPartition
			}
		}
		return werrs
	}}
	p, m := testProducer(t, w, ProducerConfig{RetryBackoffMin: time.Millisecond, RetryBackoffMax: time.Millisecond})
	var recs []encodedRecord
	for _, k := range []string{"a", "b", "c", "d"} {
		recs = append(recs, rec(k, 100, 1))
	}
	require.NoError(t, p.enqueue(t.Context(), recs))
	require.NoError(t, p.flush(t.Context()))
	require.NoError(t, p.enqueue(t.Context(), []encodedRecord{rec("e", 100, 1)}))
	require.NoError(t, p.flush(t.Context()))
	require.Equal(t, []string{"a", "c", "b", "d", "e"}, w.keys())
	require.Equal(t, 5.0, testutil.ToFloat64(m.sentSamples))
	require.Equal(t, 2.0, testutil.ToFloat64(m.writeErrors.WithLabelValues("samples")))
}

// TestProducerCloseCountsWhatItCouldNotSend: a broker that never answers
// loses the buffered records at Close, and they are counted.
func TestProducerCloseCountsWhatItCouldNotSend(t *testing.T) {
	w := &fakeWriter{fail: func(int, []kafka.Message) error { return kafka.BrokerNotAvailable }}
	p, m := testProducer(t, w, ProducerConfig{
		CloseTimeout: 50 * time.Millisecond, RetryBackoffMin: time.Millisecond, RetryBackoffMax: 5 * time.Millisecond,
	})
	var recs []encodedRecord
	for i := range 10 {
		recs = append(recs, rec(fmt.Sprint(i), 100, 7))
	}
	require.NoError(t, p.enqueue(t.Context(), recs))
	p.close()
	require.Equal(t, 70.0, testutil.ToFloat64(m.droppedSamples.WithLabelValues("shutdown")))
	require.Zero(t, testutil.ToFloat64(m.sentSamples))
	require.Error(t, p.enqueue(t.Context(), recs[:1]))
}

func TestBackoff(t *testing.T) {
	for _, tc := range []struct {
		attempt int
		want    time.Duration
	}{{0, 100 * time.Millisecond}, {1, 200 * time.Millisecond}, {3, 800 * time.Millisecond}, {10, 5 * time.Second}, {1000, 5 * time.Second}} {
		require.Equal(t, tc.want, backoff(tc.attempt, 100*time.Millisecond, 5*time.Second))
	}
}
