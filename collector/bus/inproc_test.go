package bus

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The in-process bus is ready only while a sample consumer is subscribed,
// so a server does not report ready before its ingester can take writes.
func TestInProcReady(t *testing.T) {
	p := NewInProc(InProcOptions{})
	require.ErrorIs(t, p.Ready(), ErrNoConsumer)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- p.ConsumeSamples(ctx, "ingest", func(context.Context, *SampleBatch) error { return nil })
	}()
	require.Eventually(t, func() bool { return p.Ready() == nil }, 5e9, 1e6)
	require.NoError(t, p.PublishSamples(context.Background(), &SampleBatch{}))

	cancel()
	require.NoError(t, <-done)
	require.ErrorIs(t, p.Ready(), ErrNoConsumer, "the consumer left")
	require.NoError(t, p.Close())
	require.ErrorIs(t, p.Ready(), ErrClosed)
}

// A batch published before the first consumer subscribes waits for it (up
// to ConsumerWait) instead of being lost; without a wait, or once the wait
// is over, the publish fails with ErrNoConsumer.
func TestInProcConsumerWait(t *testing.T) {
	for _, tc := range []struct {
		name      string
		wait      time.Duration
		subscribe time.Duration // after the publish; <0: never
		cancel    bool
		want      error
	}{
		{name: "held until the consumer subscribes", wait: 10 * time.Second, subscribe: 100 * time.Millisecond},
		{name: "no wait", subscribe: -1, want: ErrNoConsumer},
		{name: "wait over", wait: 50 * time.Millisecond, subscribe: -1, want: ErrNoConsumer},
		{name: "publisher gives up", wait: 10 * time.Second, subscribe: -1, cancel: true, want: context.Canceled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := NewInProc(InProcOptions{ConsumerWait: tc.wait})
			defer p.Close()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			got := make(chan int, 1)
			if tc.subscribe >= 0 {
				time.AfterFunc(tc.subscribe, func() {
					_ = p.ConsumeSamples(ctx, "ingest", func(_ context.Context, b *SampleBatch) error {
						got <- b.Len()
						return nil
					})
				})
			}
			if tc.cancel {
				time.AfterFunc(50*time.Millisecond, cancel)
			}
			b := &SampleBatch{Series: []Series{{Samples: []Sample{{T: 1, V: 1}, {T: 2, V: 2}}}}}
			err := p.PublishSamples(ctx, b)
			if tc.want != nil {
				require.ErrorIs(t, err, tc.want)
				return
			}
			require.NoError(t, err)
			require.Equal(t, 2, <-got, "the batch reached the consumer")
		})
	}
}

// Once a consumer has subscribed, a publish that finds none (the consumers
// are stopping) fails at once instead of waiting.
func TestInProcNoWaitAfterFirstConsumer(t *testing.T) {
	p := NewInProc(InProcOptions{ConsumerWait: time.Minute})
	defer p.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- p.ConsumeSamples(ctx, "ingest", func(context.Context, *SampleBatch) error { return nil })
	}()
	require.NoError(t, p.PublishSamples(context.Background(), &SampleBatch{}))
	cancel()
	require.NoError(t, <-done)
	start := time.Now()
	require.ErrorIs(t, p.PublishSamples(context.Background(), &SampleBatch{}), ErrNoConsumer)
	require.Less(t, time.Since(start), time.Second)
}
