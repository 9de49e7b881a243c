package bus

import (
	"context"
	"testing"

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
