package kafka

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/prometheus/prompb"
	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"

	"github.com/ballast-cloud/ballast/collector/bus"
	"github.com/ballast-cloud/ballast/collector/ingest"
	"github.com/ballast-cloud/ballast/collector/kafka/kfaketest"
	"github.com/ballast-cloud/ballast/collector/prw"
)

// consumeSamples runs ConsumeSamples until the returned stop is called (or
// the test ends) and checks it returned cleanly.
func consumeSamples(t *testing.T, b *Bus, group string, h bus.SampleHandler) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.ConsumeSamples(ctx, group, h) }()
	stop = sync.OnceFunc(func() {
		cancel()
		require.NoError(t, <-done)
	})
	t.Cleanup(stop)
	return stop
}

func assigned(b *Bus, group string) float64 {
	return testutil.ToFloat64(b.metrics.assigned.WithLabelValues(b.cfg.Topics.Samples, group))
}

func consumed(b *Bus, group string) int {
	return int(testutil.ToFloat64(b.metrics.consumedSamples.WithLabelValues(group)))
}

// TestEndToEndTwoIngesters: a publisher, Kafka, two ingesters of one group
// each writing its own TSDB; PromQL over both returns every sample, and
// every series lives in exactly one of them.
func TestEndToEndTwoIngesters(t *testing.T) {
	addrs := newBroker(t)
	pub, _ := newBus(t, fastConfig(addrs))
	waitReady(t, pub)

	const group = "ingest"
	var ings [2]*Bus
	var stores [2]*store
	for i := range ings {
		ings[i], _ = newBus(t, fastConfig(addrs))
		stores[i] = openStore(t, t.TempDir())
		consumeSamples(t, ings[i], group, stores[i].ing.Handle)
	}
	// Publish once both members share the partitions, so no partition
	// moves mid-stream and series cannot straddle the two TSDBs.
	require.Eventually(t, func() bool {
		return assigned(ings[0], group) > 0 && assigned(ings[1], group) > 0 && assigned(ings[0], group)+assigned(ings[1], group) == 6
	}, 60*time.Second, 10*time.Millisecond)
	gens := testutil.ToFloat64(ings[0].metrics.generations) + testutil.ToFloat64(ings[1].metrics.generations)

	bs := batches(series("e2e", 1000), 30, recent())
	for _, b := range bs {
		require.NoError(t, pub.PublishSamples(t.Context(), b))
	}
	require.NoError(t, pub.Flush(t.Context()))
	wantN, wantSum := expected(bs)
	require.Eventually(t, func() bool { return consumed(ings[0], group)+consumed(ings[1], group) >= wantN }, 60*time.Second, 10*time.Millisecond)

	var n [2]int
	var sum [2]float64
	for i, s := range stores {
		n[i], sum[i] = s.countSum(t, "e2e")
		require.Positive(t, n[i], "ingester %d got no partition's samples", i)
	}
	require.Equal(t, wantN, n[0]+n[1])
	require.Equal(t, wantSum, sum[0]+sum[1])
	require.Equal(t, float64(wantN), testutil.ToFloat64(pub.metrics.sentSamples))

	if testutil.ToFloat64(ings[0].metrics.generations)+testutil.ToFloat64(ings[1].metrics.generations) == gens {
		a, b := stores[0].seriesIn(t, "e2e"), stores[1].seriesIn(t, "e2e")
		require.Equal(t, 1000, len(a)+len(b))
		for s := range a {
			require.False(t, b[s], "series %s in both ingesters", s)
		}
	}
}

// TestDuplicatesAreHarmless proves at-least-once redelivery cannot
// double-count: identical (series, t, v) appended again, directly or through
// Kafka, leaves PromQL's count and sum unchanged.
func TestDuplicatesAreHarmless(t *testing.T) {
	bs := batches(series("dup", 50), 40, recent())
	wantN, wantSum := expected(bs)

	t.Run("ingester", func(t *testing.T) {
		s := openStore(t, t.TempDir())
		for _, b := range bs {
			require.NoError(t, s.ing.Handle(t.Context(), b))
		}
		n, sum := s.countSum(t, "dup")
		require.Equal(t, wantN, n)
		require.Equal(t, wantSum, sum)
		// Replay everything, oldest first as a rewound partition does, and
		// again newest first.
		for _, b := range bs {
			replayed(t, s.ing.Handle(t.Context(), b))
		}
		for _, b := range slices.Backward(bs) {
			replayed(t, s.ing.Handle(t.Context(), b))
		}
		n, sum = s.countSum(t, "dup")
		require.Equal(t, wantN, n)
		require.Equal(t, wantSum, sum)
	})

	t.Run("kafka", func(t *testing.T) {
		addrs := newBroker(t)
		b, _ := newBus(t, fastConfig(addrs))
		s := openStore(t, t.TempDir())
		consumeSamples(t, b, "ingest", s.ing.Handle)
		for range 2 {
			for _, x := range bs {
				require.NoError(t, b.PublishSamples(t.Context(), x))
			}
		}
		require.NoError(t, b.Flush(t.Context()))
		records := func() float64 {
			return testutil.ToFloat64(b.metrics.consumedRecords.WithLabelValues(b.cfg.Topics.Samples, "ingest"))
		}
		sent := testutil.ToFloat64(b.metrics.sentRecords.WithLabelValues(b.cfg.Topics.Samples))
		require.Eventually(t, func() bool { return records() == sent }, 60*time.Second, 10*time.Millisecond)
		n, sum := s.countSum(t, "dup")
		require.Equal(t, wantN, n)
		require.Equal(t, wantSum, sum)
	})
}

// replayed accepts what an ingester returns for a replayed batch: nil, or
// samples refused as duplicates or out of order (the TSDB already has them).
func replayed(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	var re *ingest.RejectedError
	require.ErrorAs(t, err, &re)
}

// rawWriter writes records as given, all to partition 0 of topic.
func rawWriter(t *testing.T, addrs []string, topic string) *kafka.Writer {
	tr := &kafka.Transport{}
	w := &kafka.Writer{
		Addr: kafka.TCP(addrs...), Topic: topic, BatchTimeout: time.Millisecond, RequiredAcks: kafka.RequireAll,
		Balancer:  kafka.BalancerFunc(func(kafka.Message, ...int) int { return 0 }),
		Transport: tr,
	}
	t.Cleanup(func() {
		require.NoError(t, w.Close())
		tr.CloseIdleConnections()
	})
	return w
}

// readAll reads every record of topic's partitions up to their end.
func readAll(t *testing.T, addrs []string, topic string) []kafka.Message {
	t.Helper()
	conn, err := kafka.Dial("tcp", addrs[0])
	require.NoError(t, err)
	parts, err := conn.ReadPartitions(topic)
	require.NoError(t, conn.Close())
	require.NoError(t, err)
	var out []kafka.Message
	for _, p := range parts {
		lc, err := kafka.DialLeader(t.Context(), "tcp", addrs[0], topic, p.ID)
		require.NoError(t, err)
		last, err := lc.ReadLastOffset()
		require.NoError(t, lc.Close())
		require.NoError(t, err)
		if last == 0 {
			continue
		}
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: addrs, Topic: topic, Partition: p.ID, MaxWait: 100 * time.Millisecond})
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		for {
			m, err := r.ReadMessage(ctx)
			require.NoError(t, err)
			out = append(out, m)
			if m.Offset == last-1 {
				break
			}
		}
		require.NoError(t, r.Close())
	}
	return out
}

// readAt reads the record at offset of partition.
func readAt(t *testing.T, addrs []string, topic string, partition int, offset int64) kafka.Message {
	t.Helper()
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: addrs, Topic: topic, Partition: partition, MaxWait: 100 * time.Millisecond})
	defer func() { require.NoError(t, r.Close()) }()
	require.NoError(t, r.SetOffset(offset))
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	m, err := r.ReadMessage(ctx)
	require.NoError(t, err)
	return m
}

// TestPoisonRecordsAreDeadLettered: every kind of poison record goes to the
// dead-letter topic with its reason and origin, is counted, and the good
// records behind it on the same partition are stored.
func TestPoisonRecordsAreDeadLettered(t *testing.T) {
	addrs := newBroker(t)
	cfg := fastConfig(addrs)
	cfg.Consumer.MaxDecodedBytes = 64 << 10
	b, _ := newBus(t, cfg)
	waitReady(t, b)

	var transient atomic.Int32
	c := newCollector()
	consumeSamples(t, b, "ingest", func(ctx context.Context, batch *bus.SampleBatch) error {
		for _, s := range batch.Series {
			switch s.Labels.Get("__name__") {
			case "refused_by_handler":
				return bus.Permanent("refused_by_handler", errors.New("the handler says no"))
			case "flaky":
				if transient.Add(1) <= 3 {
					return errors.New("storage busy")
				}
			}
		}
		return c.handle(ctx, batch)
	})

	rw := func(ts ...prompb.TimeSeries) []byte { return snappy.Encode(nil, remoteWrite(t, ts...)) }
	one := func(name string, kv ...string) prompb.TimeSeries {
		ls := []prompb.Label{{Name: "__name__", Value: name}}
		for i := 0; i < len(kv); i += 2 {
			ls = append(ls, prompb.Label{Name: kv[i], Value: kv[i+1]})
		}
		return prompb.TimeSeries{Labels: ls, Samples: []prompb.Sample{{Value: 1, Timestamp: recent()}}}
	}
	h := func(k, v string) kafka.Header { return kafka.Header{Key: k, Value: []byte(v)} }
	poison := map[string]kafka.Message{
		ReasonDecode:          {Value: []byte("this is not snappy at all")},
		ReasonUnknownSchema:   {Value: rw(one("from_the_future")), Headers: []kafka.Header{h(HeaderSchema, "samples/v2")}},
		ReasonUnknownEncoding: {Value: rw(one("brotli")), Headers: []kafka.Header{h(HeaderContentEncoding, "br")}},
		ReasonTooLarge:        {Value: snappy.Encode(nil, make([]byte, 100<<10))},
		"missing_metric_name": {Value: rw(prompb.TimeSeries{Labels: []prompb.Label{{Name: "job", Value: "x"}}, Samples: []prompb.Sample{{Value: 1, Timestamp: recent()}}}, one("good_beside_bad"))},
		"refused_by_handler":  {Value: rw(one("refused_by_handler"))},
	}
	w := rawWriter(t, addrs, b.cfg.Topics.Samples)
	reasons := slices.Sorted(func(yield func(string) bool) {
		for r := range poison {
			if !yield(r) {
				return
			}
		}
	})
	for _, r := range reasons {
		require.NoError(t, w.WriteMessages(t.Context(), poison[r]))
	}
	// Good records behind the poison on partition 0: one failing
	// transiently, one with a native histogram (unsupported: counted, not
	// poison) beside a float series.
	histogram := prompb.TimeSeries{Labels: []prompb.Label{{Name: "__name__", Value: "h"}}, Histograms: []prompb.Histogram{{Timestamp: recent(), Count: &prompb.Histogram_CountInt{CountInt: 3}}}}
	require.NoError(t, w.WriteMessages(t.Context(),
		kafka.Message{Value: rw(one("flaky"))},
		kafka.Message{Value: rw(histogram, one("float_beside_histogram"))},
		kafka.Message{Value: rw(one("after_poison"))}))

	require.Eventually(t, func() bool { return c.distinct() == 4 }, 60*time.Second, 10*time.Millisecond)
	c.mu.Lock()
	names := []string{}
	for k := range c.samples {
		names = append(names, k)
	}
	c.mu.Unlock()
	sort.Strings(names)
	require.Len(t, names, 4)
	require.Contains(t, names[0], "after_poison")
	require.Contains(t, names[1], "flaky")
	require.Contains(t, names[2], "float_beside_histogram")
	require.Contains(t, names[3], "good_beside_bad")
	require.Equal(t, 1.0, testutil.ToFloat64(b.metrics.rejectedSamples.WithLabelValues("ingest", prw.ReasonNativeHistogram)))
	require.Equal(t, 3.0, testutil.ToFloat64(b.metrics.handlerRetries.WithLabelValues(b.cfg.Topics.Samples, "ingest")))
	require.Equal(t, 1.0, testutil.ToFloat64(b.metrics.rejectedSamples.WithLabelValues("ingest", "missing_metric_name")))

	require.Eventually(t, func() bool {
		return testutil.CollectAndCount(b.metrics.deadLetters) == len(poison)
	}, 30*time.Second, 10*time.Millisecond)
	dead := readAll(t, addrs, b.cfg.Topics.DeadLetter)
	require.Len(t, dead, len(poison))
	for _, d := range dead {
		reason, _ := header(&d, HeaderDLQReason)
		orig, ok := poison[reason]
		require.True(t, ok, "unexpected reason %q", reason)
		require.Equal(t, 1.0, testutil.ToFloat64(b.metrics.deadLetters.WithLabelValues(b.cfg.Topics.Samples, "ingest", reason)))
		require.Equal(t, orig.Value, d.Value, reason)
		topic, _ := header(&d, HeaderDLQTopic)
		require.Equal(t, b.cfg.Topics.Samples, topic)
		group, _ := header(&d, HeaderDLQGroup)
		require.Equal(t, "ingest", group)
		errText, _ := header(&d, HeaderDLQError)
		require.NotEmpty(t, errText)
		part, _ := header(&d, HeaderDLQPartition)
		off, _ := header(&d, HeaderDLQOffset)
		p, err := strconv.Atoi(part)
		require.NoError(t, err)
		o, err := strconv.ParseInt(off, 10, 64)
		require.NoError(t, err)
		// The origin headers point at the very record.
		require.Equal(t, orig.Value, readAt(t, addrs, b.cfg.Topics.Samples, p, o).Value, reason)
	}
}

// TestEventsTypedConsumption: a consumer filtering on types gets only those,
// in publish order per subject; one without a filter gets all; a bad event
// is dead-lettered by each group.
func TestEventsTypedConsumption(t *testing.T) {
	addrs := newBroker(t)
	b, _ := newBus(t, fastConfig(addrs))
	waitReady(t, b)

	type got struct {
		mu     sync.Mutex
		events []bus.Event
	}
	consume := func(group string, types []string) *got {
		g := &got{}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			done <- b.ConsumeEvents(ctx, group, types, func(_ context.Context, e bus.Event) error {
				g.mu.Lock()
				defer g.mu.Unlock()
				g.events = append(g.events, e)
				return nil
			})
		}()
		t.Cleanup(func() { cancel(); require.NoError(t, <-done) })
		return g
	}
	rules := consume("rules", []string{bus.TypeAlert})
	engine := consume("engine", nil)

	var events []bus.Event
	for i := range 5 {
		e, err := bus.NewEvent("/ballast/rules", bus.TypeAlert, fmt.Sprintf("alert-%d", i), map[string]int{"n": i})
		require.NoError(t, err)
		events = append(events, e)
	}
	for _, state := range []string{"enabled", "maintenance", "disabled"} {
		e, err := bus.NewEvent("/ballast/agent/hv-01", bus.TypeHostState, "hv-01", map[string]string{"state": state})
		require.NoError(t, err)
		events = append(events, e)
	}
	require.NoError(t, b.PublishEvents(t.Context(), events[:4]...))
	require.NoError(t, b.PublishEvents(t.Context(), events[4:]...))
	require.NoError(t, rawWriter(t, addrs, b.cfg.Topics.Events).WriteMessages(t.Context(), kafka.Message{Value: []byte(`{"specversion":"1.0"`)}))
	require.Error(t, b.PublishEvents(t.Context(), bus.Event{ID: "no-type"}))

	snapshot := func(g *got) []bus.Event {
		g.mu.Lock()
		defer g.mu.Unlock()
		return slices.Clone(g.events)
	}
	require.Eventually(t, func() bool { return len(snapshot(rules)) == 5 && len(snapshot(engine)) == 8 }, 60*time.Second, 10*time.Millisecond)
	for _, e := range snapshot(rules) {
		require.Equal(t, bus.TypeAlert, e.Type)
	}
	require.Equal(t, 3.0, testutil.ToFloat64(b.metrics.skippedEvents.WithLabelValues("rules", "type_filtered")))
	var states []string
	for _, e := range snapshot(engine) {
		if e.Type == bus.TypeHostState {
			var d map[string]string
			require.NoError(t, e.Decode(&d))
			states = append(states, d["state"])
		}
	}
	require.Equal(t, []string{"enabled", "maintenance", "disabled"}, states)
	require.Eventually(t, func() bool {
		return testutil.ToFloat64(b.metrics.deadLetters.WithLabelValues(b.cfg.Topics.Events, "rules", ReasonDecode)) == 1 &&
			testutil.ToFloat64(b.metrics.deadLetters.WithLabelValues(b.cfg.Topics.Events, "engine", ReasonDecode)) == 1
	}, 30*time.Second, 10*time.Millisecond)
}

// freePort returns a port nothing listens on (yet).
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	require.NoError(t, l.Close())
	return port
}

// TestBrokerUnreachableAtStart: New succeeds without brokers, Ready says
// why, publishing buffers and consuming waits; once a broker listens the bus
// connects by itself and nothing published meanwhile is lost.
func TestBrokerUnreachableAtStart(t *testing.T) {
	port := freePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	b, _ := newBus(t, fastConfig([]string{addr}))
	err := b.Ready()
	require.Error(t, err)
	require.Contains(t, err.Error(), addr)
	require.Zero(t, testutil.ToFloat64(b.metrics.ready))

	c := newCollector()
	consumeSamples(t, b, "ingest", c.handle)
	bs := batches(series("early", 100), 5, recent())
	for _, x := range bs {
		require.NoError(t, b.PublishSamples(t.Context(), x))
	}
	// Still no broker: several connection attempts fail, Ready stays false.
	require.Eventually(t, func() bool { return testutil.ToFloat64(b.metrics.ready) == 0 && b.Ready() != nil }, time.Second, 10*time.Millisecond)
	require.Zero(t, c.distinct())

	kfaketest.New(t, kfaketest.Options{Ports: []int{port}, MinSessionTimeout: time.Second})
	waitReady(t, b)
	require.Equal(t, 1.0, testutil.ToFloat64(b.metrics.ready))
	n, _ := expected(bs)
	require.Eventually(t, func() bool { return c.distinct() == n }, 60*time.Second, 10*time.Millisecond)
}

// TestOversizedBatchIsSplit: a batch many times the broker's message size
// limit arrives whole, as records that each fit the limit.
func TestOversizedBatchIsSplit(t *testing.T) {
	const limit = 128 << 10
	addrs := kfaketest.New(t, kfaketest.Options{
		MinSessionTimeout: time.Second,
		BrokerConfigs:     map[string]string{"message.max.bytes": strconv.Itoa(limit)},
	})
	cfg := fastConfig(addrs)
	cfg.Producer.MaxMessageBytes = limit
	cfg.Compression = "none" // the worst case for size
	b, _ := newBus(t, cfg)
	c := newCollector()
	consumeSamples(t, b, "ingest", c.handle)

	huge := &bus.SampleBatch{}
	for i, l := range series("huge_batch_metric_with_a_rather_long_name", 20000) {
		huge.Series = append(huge.Series, bus.Series{Labels: l, Samples: []bus.Sample{{T: recent(), V: float64(i)}}})
	}
	require.Greater(t, len(prw.AppendWriteRequest(nil, huge)), 10*limit)
	require.NoError(t, b.PublishSamples(t.Context(), huge))
	require.NoError(t, b.Flush(t.Context()))
	require.Eventually(t, func() bool { return c.distinct() == huge.Len() }, 60*time.Second, 10*time.Millisecond)
	require.Zero(t, testutil.CollectAndCount(b.metrics.droppedSamples))
	require.Greater(t, testutil.ToFloat64(b.metrics.sentRecords.WithLabelValues(b.cfg.Topics.Samples)), 10.0)
}

// TestLagPerPartition: records waiting behind a stuck handler show as lag
// on their partition, and the lag drains to zero once it resumes.
func TestLagPerPartition(t *testing.T) {
	addrs := newBroker(t)
	b, _ := newBus(t, fastConfig(addrs))
	gate := make(chan struct{})
	c := newCollector()
	consumeSamples(t, b, "ingest", func(ctx context.Context, batch *bus.SampleBatch) error {
		select {
		case <-gate:
		case <-ctx.Done():
			return ctx.Err()
		}
		return c.handle(ctx, batch)
	})
	require.Eventually(t, func() bool { return assigned(b, "ingest") == 6 }, 60*time.Second, 10*time.Millisecond)
	bs := batches(series("lag", 60), 10, recent())
	for _, x := range bs {
		require.NoError(t, b.PublishSamples(t.Context(), x))
	}
	require.NoError(t, b.Flush(t.Context()))
	lag := func() (total float64, parts int) {
		for p := range 6 {
			g, err := b.metrics.lag.GetMetricWithLabelValues(b.cfg.Topics.Samples, "ingest", strconv.Itoa(p))
			require.NoError(t, err)
			total += testutil.ToFloat64(g)
		}
		return total, testutil.CollectAndCount(b.metrics.lag)
	}
	require.Eventually(t, func() bool { l, n := lag(); return l > 0 && n == 6 }, 30*time.Second, 10*time.Millisecond)
	close(gate)
	n, _ := expected(bs)
	require.Eventually(t, func() bool { return c.distinct() == n }, 60*time.Second, 10*time.Millisecond)
	require.Eventually(t, func() bool { l, _ := lag(); return l == 0 }, 30*time.Second, 10*time.Millisecond)
}
