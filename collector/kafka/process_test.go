package kafka

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"

	"github.com/ballast-cloud/ballast/collector/bus"
	"github.com/ballast-cloud/ballast/collector/ingest"
)

// offsets reads the group's committed offset (-1: none) and the end offset
// of every partition of topic.
func offsets(t *testing.T, addrs []string, group, topic string, parts int) (committed, end map[int]int64) {
	t.Helper()
	tr := &kafka.Transport{}
	defer tr.CloseIdleConnections()
	c := &kafka.Client{Addr: kafka.TCP(addrs...), Timeout: 10 * time.Second, Transport: tr}
	ids := make([]int, parts)
	reqs := make([]kafka.OffsetRequest, parts)
	for p := range parts {
		ids[p], reqs[p] = p, kafka.LastOffsetOf(p)
	}
	of, err := c.OffsetFetch(t.Context(), &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: ids}})
	require.NoError(t, err)
	committed = map[int]int64{}
	for _, p := range of.Topics[topic] {
		require.NoError(t, p.Error)
		committed[p.Partition] = p.CommittedOffset
	}
	lo, err := c.ListOffsets(t.Context(), &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
	require.NoError(t, err)
	end = map[int]int64{}
	for _, p := range lo.Topics[topic] {
		require.NoError(t, p.Error)
		end[p.Partition] = p.LastOffset
	}
	return committed, end
}

// TestIngesterKilledResumesAtCommittedOffsets: an ingester process is
// SIGKILLed mid-stream (no final commit, no clean TSDB close) and started
// again on the same TSDB. It resumes every partition at the offset the group
// had committed, and PromQL finds every sample exactly once: the records it
// re-appends after the kill are harmless duplicates.
func TestIngesterKilledResumesAtCommittedOffsets(t *testing.T) {
	addrs := newBroker(t)
	pub, _ := newBus(t, fastConfig(addrs))
	waitReady(t, pub)
	topic, parts := pub.cfg.Topics.Samples, pub.cfg.Partitions

	bs := batches(series("killed", 300), 60, recent())
	for _, b := range bs {
		require.NoError(t, pub.PublishSamples(t.Context(), b))
	}
	require.NoError(t, pub.Flush(t.Context()))
	_, end := offsets(t, addrs, "ingest", topic, parts)
	var total int64
	for _, e := range end {
		total += e
	}

	dir := t.TempDir()
	env := []string{envBrokers + "=" + strings.Join(addrs, ","), envTSDB + "=" + dir, envGroup + "=ingest", envDelay + "=20ms"}
	first := startProcess(t, "ingester", env...)
	// Kill it once it has committed some, but not all, of the stream.
	var atKill map[int]int64
	require.Eventually(t, func() bool {
		c, _ := offsets(t, addrs, "ingest", topic, parts)
		for _, o := range c {
			if o > 0 {
				return true
			}
		}
		return false
	}, 60*time.Second, 5*time.Millisecond)
	first.kill()
	atKill, _ = offsets(t, addrs, "ingest", topic, parts)
	var done int64
	for _, o := range atKill {
		done += max(o, 0)
	}
	require.Less(t, done, total, "the ingester finished before the kill: not mid-stream")

	second := startProcess(t, "ingester", env...)
	require.Eventually(t, func() bool {
		c, e := offsets(t, addrs, "ingest", topic, parts)
		for p := range parts {
			if c[p] != e[p] {
				return false
			}
		}
		return true
	}, 120*time.Second, 20*time.Millisecond)
	second.stop()

	// Every partition resumed at the committed offset (0 where none was).
	resumed := map[int]int64{}
	for _, rec := range jsonLogs(strings.NewReader(second.stderr.String()), "Consuming partition") {
		p, off := int(rec["partition"].(float64)), int64(rec["offset"].(float64))
		if _, seen := resumed[p]; !seen {
			resumed[p] = off
		}
	}
	require.Len(t, resumed, parts)
	for p := range parts {
		want := max(atKill[p], 0)
		if want == end[p] {
			continue // nothing left to read there
		}
		require.Equal(t, want, resumed[p], "partition %d resumed at %d, committed %d", p, resumed[p], atKill[p])
	}

	s := openStore(t, dir)
	n, sum := s.countSum(t, "killed")
	wantN, wantSum := expected(bs)
	require.Equal(t, wantN, n)
	require.Equal(t, wantSum, sum)
}

// TestBrokerRestartLosesNothing: the broker (its own process, persisting to
// a data directory) is stopped mid-stream and started again; samples
// published before, during and after the outage all reach the TSDB.
func TestBrokerRestartLosesNothing(t *testing.T) {
	port := freePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	args := envArgs + "=" + strings.Join([]string{"-data-dir", t.TempDir(), "-ports", fmt.Sprint(port), "-min-session-timeout", "1s"}, "\n")
	startBroker := func() *process {
		p := startProcess(t, "kfake", args)
		require.Eventually(t, func() bool { return strings.Contains(p.stdout.String(), addr) }, 30*time.Second, 5*time.Millisecond, "broker did not start: %s", p.stderr.String())
		return p
	}
	broker := startBroker()

	b, _ := newBus(t, fastConfig([]string{addr}))
	s := openStore(t, t.TempDir())
	c := newCollector()
	consumeSamples(t, b, "ingest", func(ctx context.Context, batch *bus.SampleBatch) error {
		err := s.ing.Handle(ctx, batch)
		if _, rejected := err.(*ingest.RejectedError); err == nil || rejected {
			_ = c.handle(ctx, batch)
		}
		return err
	})
	waitReady(t, b)

	bs := batches(series("restart", 200), 90, recent())
	for _, x := range bs[:30] {
		require.NoError(t, b.PublishSamples(t.Context(), x))
	}
	require.NoError(t, b.Flush(t.Context()))
	broker.stop() // mid-stream: the consumer is still catching up

	// Published while the broker is down: buffered, then sent.
	require.Eventually(t, func() bool { return b.Ready() != nil }, 30*time.Second, 5*time.Millisecond)
	for _, x := range bs[30:60] {
		require.NoError(t, b.PublishSamples(t.Context(), x))
	}
	broker = startBroker()
	waitReady(t, b)
	for _, x := range bs[60:] {
		require.NoError(t, b.PublishSamples(t.Context(), x))
	}
	require.NoError(t, b.Flush(t.Context()))

	wantN, wantSum := expected(bs)
	require.Eventually(t, func() bool { return c.distinct() == wantN }, 120*time.Second, 10*time.Millisecond)
	n, sum := s.countSum(t, "restart")
	require.Equal(t, wantN, n)
	require.Equal(t, wantSum, sum)
	require.Zero(t, testutil.CollectAndCount(b.metrics.droppedSamples))
	broker.stop()
}
