package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/ballast-cloud/ballast/collector/bus"
	"github.com/ballast-cloud/ballast/collector/ingest"
	"github.com/ballast-cloud/ballast/collector/prw"
)

// recordHandler handles one record. nil commits it; a bus.PermanentError
// dead-letters it, then commits; any other error is retried with backoff, the
// partition waiting. A handler is used by one partition goroutine only, so it
// may keep scratch state between records.
type recordHandler func(ctx context.Context, m *kafka.Message) error

// ConsumeSamples runs h for every sample record of the partitions the group
// assigns to this member, one goroutine per partition, committing offsets
// only after h returned. An empty group means Config.Group. It blocks until
// ctx is done or the bus closes.
//
// h's errors decide the record's fate: nil or *ingest.RejectedError (some
// samples refused by the TSDB, the rest stored) commit it; a bus.Permanent
// error dead-letters it; any other error is retried with backoff. Records
// that cannot be decoded, carry an unknown schema or encoding, or are too
// large are dead-lettered without reaching h; series with invalid labels are
// left out, the rest handed to h, and the record dead-lettered afterwards.
func (b *Bus) ConsumeSamples(ctx context.Context, group string, h bus.SampleHandler) error {
	if h == nil {
		return errors.New("consume samples: nil handler")
	}
	if group == "" {
		group = b.cfg.Group
	}
	return b.consume(ctx, b.cfg.Topics.Samples, group, func() recordHandler { return b.sampleHandler(group, h) })
}

func (b *Bus) sampleHandler(group string, h bus.SampleHandler) recordHandler {
	var (
		batch   bus.SampleBatch
		scratch []byte
	)
	return func(ctx context.Context, m *kafka.Message) error {
		batch.Series = batch.Series[:0]
		var rej prw.Rejection
		if err := decodeSamples(b.codec, b.decoder, m, &scratch, &batch, &rej); err != nil {
			return err
		}
		if n := batch.Len(); n > 0 {
			err := h(ctx, &batch)
			var re *ingest.RejectedError
			switch {
			case errors.As(err, &re):
				refused := 0
				for reason, k := range re.Samples {
					b.metrics.rejectedSamples.WithLabelValues(group, reason).Add(float64(k))
					refused += k
				}
				n -= refused
			case err != nil:
				return err
			}
			b.metrics.consumedSamples.WithLabelValues(group).Add(float64(n))
		}
		if rej.Empty() {
			return nil
		}
		// Invalid series make the record poison (a producer to find);
		// native histograms are only unsupported, so counted, not
		// dead-lettered.
		var reasons []string
		series := 0
		for reason, k := range rej.Samples {
			b.metrics.rejectedSamples.WithLabelValues(group, reason).Add(float64(k))
			if reason != prw.ReasonNativeHistogram {
				reasons = append(reasons, reason)
				series += rej.Series[reason]
			}
		}
		if len(reasons) == 0 {
			return nil
		}
		sort.Strings(reasons)
		return bus.Permanent(reasons[0], fmt.Errorf("%d series refused while decoding, the rest stored; first: %s", series, rej.Example))
	}
}

// ConsumeEvents runs h for every event of the types listed (all when types
// is empty), in order per partition, committing after h returned. Events of
// other types are skipped and counted; undecodable or invalid events are
// dead-lettered. h's errors are handled as ConsumeSamples does. An empty
// group means Config.Group.
func (b *Bus) ConsumeEvents(ctx context.Context, group string, types []string, h bus.EventHandler) error {
	if h == nil {
		return errors.New("consume events: nil handler")
	}
	if group == "" {
		group = b.cfg.Group
	}
	types = slices.Clone(types)
	wanted := func(t string) bool { return len(types) == 0 || slices.Contains(types, t) }
	return b.consume(ctx, b.cfg.Topics.Events, group, func() recordHandler {
		return func(ctx context.Context, m *kafka.Message) error {
			// The type header lets filtered events skip the JSON decode.
			if t, ok := header(m, HeaderEventType); ok && !wanted(t) {
				b.metrics.skippedEvents.WithLabelValues(group, "type_filtered").Inc()
				return nil
			}
			e, err := decodeEvent(m)
			if err != nil {
				return err
			}
			if !wanted(e.Type) {
				b.metrics.skippedEvents.WithLabelValues(group, "type_filtered").Inc()
				return nil
			}
			return h(ctx, e)
		}
	})
}

// partState is one assigned partition's progress.
type partState struct {
	partition int
	label     string
	start     int64        // offset assigned: committed, or FirstOffset/LastOffset
	handled   atomic.Int64 // next offset to commit; -1 until a record is handled
	committed int64        // last committed by this member, -1 if none
}

// consume runs the group protocol for topic until ctx is done or the bus
// closes: every generation gets one goroutine per assigned partition and a
// commit loop.
func (b *Bus) consume(ctx context.Context, topic, group string, newHandler func() recordHandler) error {
	ctx, done, err := b.scope(ctx)
	if err != nil {
		return err
	}
	defer done()
	if err := b.waitTopics(ctx); err != nil {
		return nil // ctx done or bus closed before the brokers were reachable
	}
	start := kafka.FirstOffset
	if b.cfg.Consumer.StartOffset == "latest" {
		start = kafka.LastOffset
	}
	logger := b.logger.With("topic", topic, "group", group)
	cg, err := kafka.NewConsumerGroup(kafka.ConsumerGroupConfig{
		ID:                     group,
		Brokers:                b.cfg.Brokers,
		Dialer:                 b.dialer,
		Topics:                 []string{topic},
		HeartbeatInterval:      b.cfg.Consumer.HeartbeatInterval,
		SessionTimeout:         b.cfg.Consumer.SessionTimeout,
		RebalanceTimeout:       b.cfg.Consumer.RebalanceTimeout,
		JoinGroupBackoff:       b.cfg.Consumer.JoinBackoff,
		WatchPartitionChanges:  true,
		PartitionWatchInterval: b.cfg.HealthInterval,
		StartOffset:            start,
		Timeout:                b.cfg.DialTimeout,
		ErrorLogger:            debugLogger(logger),
	})
	if err != nil {
		return fmt.Errorf("consume %s as group %s: %w", topic, group, err)
	}
	// Closing the group ends the running generation (its goroutines commit
	// what they handled) and leaves the group, so partitions move at once.
	stop := context.AfterFunc(ctx, func() { _ = cg.Close() })
	defer stop()
	groupLog := sampledLogger{every: 10 * time.Second}
	for {
		gen, err := cg.Next(ctx)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, kafka.ErrGroupClosed) {
				break
			}
			if errors.Is(err, kafka.RebalanceInProgress) {
				// Another member joined or left: the normal way in.
				logger.Debug("Consumer group rebalancing", "err", err)
				continue
			}
			b.metrics.groupErrors.WithLabelValues(topic, group).Inc()
			if groupLog.allow() {
				logger.Warn("Joining consumer group failed, retrying", "err", err)
			}
			continue
		}
		b.metrics.generations.WithLabelValues(topic, group).Inc()
		gen.Start(func(gctx context.Context) { b.runGeneration(gctx, gen, topic, group, newHandler, logger) })
	}
	_ = cg.Close()
	return nil
}

// runGeneration consumes the partitions of one generation until it ends,
// committing handled offsets every CommitInterval and once more at the end.
func (b *Bus) runGeneration(ctx context.Context, gen *kafka.Generation, topic, group string, newHandler func() recordHandler, logger *slog.Logger) {
	assigned := gen.Assignments[topic]
	b.metrics.assigned.WithLabelValues(topic, group).Set(float64(len(assigned)))
	parts := make([]*partState, len(assigned))
	ids := make([]int, len(assigned))
	var wg sync.WaitGroup
	for i, a := range assigned {
		ps := &partState{partition: a.ID, label: strconv.Itoa(a.ID), start: a.Offset, committed: -1}
		if a.Offset >= 0 {
			ps.committed = a.Offset
		}
		ps.handled.Store(-1)
		parts[i], ids[i] = ps, a.ID
		h := newHandler()
		wg.Add(1)
		go func() {
			defer wg.Done()
			b.consumePartition(ctx, topic, group, ps, h, logger)
		}()
	}
	logger.Info("Consumer group generation started", "generation", gen.ID, "member", gen.MemberID, "partitions", ids)
	t := time.NewTicker(b.cfg.Consumer.CommitInterval)
	for running := true; running; {
		select {
		case <-ctx.Done():
			running = false
		case <-t.C:
			b.commit(gen, topic, group, parts, logger)
			b.refreshLag(ctx, topic, group, parts)
		}
	}
	t.Stop()
	wg.Wait()
	b.commit(gen, topic, group, parts, logger)
	for _, ps := range parts {
		b.metrics.lag.DeleteLabelValues(topic, group, ps.label)
	}
	b.metrics.assigned.WithLabelValues(topic, group).Set(0)
	logger.Info("Consumer group generation ended", "generation", gen.ID)
}

// commit commits the handled offsets that moved. A failed commit is counted
// and logged: the records after the last good commit are redelivered, which
// is harmless.
func (b *Bus) commit(gen *kafka.Generation, topic, group string, parts []*partState, logger *slog.Logger) {
	offsets := map[int]int64{}
	for _, ps := range parts {
		if h := ps.handled.Load(); h >= 0 && h != ps.committed {
			offsets[ps.partition] = h
		}
	}
	if len(offsets) == 0 {
		return
	}
	if err := gen.CommitOffsets(map[string]map[int]int64{topic: offsets}); err != nil {
		b.metrics.commitErrors.WithLabelValues(topic, group).Inc()
		if b.errLog.allow() {
			logger.Warn("Committing offsets failed; records since the last commit will be redelivered", "generation", gen.ID, "err", err)
		}
		return
	}
	for _, ps := range parts {
		if off, ok := offsets[ps.partition]; ok {
			ps.committed = off
			b.metrics.committedOffset.WithLabelValues(topic, group, ps.label).Set(float64(off))
		}
	}
}

// refreshLag sets each partition's lag from the brokers' end offsets, so the
// gauge keeps rising while a partition is stuck.
func (b *Bus) refreshLag(ctx context.Context, topic, group string, parts []*partState) {
	if len(parts) == 0 {
		return
	}
	reqs := make([]kafka.OffsetRequest, 0, 2*len(parts))
	for _, ps := range parts {
		reqs = append(reqs, kafka.FirstOffsetOf(ps.partition), kafka.LastOffsetOf(ps.partition))
	}
	ctx, cancel := context.WithTimeout(ctx, b.cfg.Consumer.CommitInterval)
	defer cancel()
	resp, err := b.client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
	if err != nil {
		return // the brokers are unreachable; Ready says so
	}
	for _, po := range resp.Topics[topic] {
		if po.Error != nil {
			continue
		}
		i := slices.IndexFunc(parts, func(ps *partState) bool { return ps.partition == po.Partition })
		if i < 0 {
			continue
		}
		next := parts[i].handled.Load()
		if next < 0 {
			next = parts[i].start
			if next == kafka.FirstOffset {
				next = po.FirstOffset
			}
		}
		if next >= 0 {
			b.metrics.lag.WithLabelValues(topic, group, parts[i].label).Set(float64(max(po.LastOffset-next, 0)))
		}
	}
}

// consumePartition reads one partition from its assigned offset until ctx is
// done, handling every record before moving on.
func (b *Bus) consumePartition(ctx context.Context, topic, group string, ps *partState, h recordHandler, logger *slog.Logger) {
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:         b.cfg.Brokers,
		Topic:           topic,
		Partition:       ps.partition,
		Dialer:          b.dialer,
		MinBytes:        1,
		MaxBytes:        b.cfg.Consumer.FetchMaxBytes,
		MaxWait:         b.cfg.Consumer.FetchMaxWait,
		ReadLagInterval: -1,
		// Bounds the records read ahead of the handler per partition.
		QueueCapacity:  32,
		ReadBackoffMin: b.cfg.Consumer.RetryBackoffMin,
		ReadBackoffMax: b.cfg.Consumer.RetryBackoffMax,
		ErrorLogger:    debugLogger(logger),
	})
	defer func() { _ = r.Close() }()
	if err := r.SetOffset(ps.start); err != nil {
		logger.Error("Seeking partition failed", "partition", ps.partition, "offset", ps.start, "err", err)
		return
	}
	lag := b.metrics.lag.WithLabelValues(topic, group, ps.label)
	records := b.metrics.consumedRecords.WithLabelValues(topic, group)
	took := b.metrics.handleDuration.WithLabelValues(topic)
	first := true
	for attempt := 0; ; {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if b.errLog.allow() {
				logger.Warn("Fetching records failed, retrying", "partition", ps.partition, "err", err)
			}
			if !sleepCtx(ctx, backoff(attempt, b.cfg.Consumer.RetryBackoffMin, b.cfg.Consumer.RetryBackoffMax)) {
				return
			}
			attempt++
			continue
		}
		attempt = 0
		if first {
			first = false
			logger.Info("Consuming partition", "partition", ps.partition, "offset", m.Offset, "assigned_offset", ps.start)
		}
		start := time.Now()
		if !b.handle(ctx, group, &m, h, logger) {
			return // stopped before the record was done: it is not committed
		}
		took.Observe(time.Since(start).Seconds())
		ps.handled.Store(m.Offset + 1)
		lag.Set(float64(max(m.HighWaterMark-m.Offset-1, 0)))
		records.Inc()
	}
}

// handle runs h on m until it is done with: handled, dead-lettered, or
// retried until ctx ended (false: the record must not be committed).
func (b *Bus) handle(ctx context.Context, group string, m *kafka.Message, h recordHandler, logger *slog.Logger) bool {
	for attempt := 0; ; attempt++ {
		err := h(ctx, m)
		switch {
		case err == nil:
			return true
		case bus.IsPermanent(err):
			return b.deadLetter(ctx, group, m, err, logger)
		case ctx.Err() != nil:
			return false
		}
		b.metrics.handlerRetries.WithLabelValues(m.Topic, group).Inc()
		wait := backoff(attempt, b.cfg.Consumer.RetryBackoffMin, b.cfg.Consumer.RetryBackoffMax)
		if attempt == 0 || b.errLog.allow() {
			logger.Warn("Handler failed, retrying the record", "partition", m.Partition, "offset", m.Offset, "attempt", attempt+1, "retry_in", wait, "err", err)
		}
		if !sleepCtx(ctx, wait) {
			return false
		}
	}
}

// deadLetter sends m with the reason of perr to the dead-letter topic,
// retrying until it is stored or ctx ends (false).
func (b *Bus) deadLetter(ctx context.Context, group string, m *kafka.Message, perr error, logger *slog.Logger) bool {
	reason := "permanent"
	var p *bus.PermanentError
	if errors.As(perr, &p) && p.Reason != "" {
		reason = p.Reason
	}
	dl := deadLetter(m, group, reason, perr, time.Now(), b.cfg.Producer.MaxMessageBytes)
	dl.Topic = b.cfg.Topics.DeadLetter
	for attempt := 0; ; attempt++ {
		err := b.eventsW.WriteMessages(ctx, dl)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return false
		}
		b.metrics.writeErrors.WithLabelValues(b.cfg.Topics.DeadLetter).Inc()
		if b.errLog.allow() {
			logger.Warn("Writing a dead letter failed, retrying", "partition", m.Partition, "offset", m.Offset, "err", err)
		}
		if !sleepCtx(ctx, backoff(attempt, b.cfg.Producer.RetryBackoffMin, b.cfg.Producer.RetryBackoffMax)) {
			return false
		}
	}
	b.metrics.deadLetters.WithLabelValues(m.Topic, group, reason).Inc()
	b.metrics.sentRecords.WithLabelValues(b.cfg.Topics.DeadLetter).Inc()
	if b.dlqLog.allow() {
		logger.Warn("Record dead-lettered", "partition", m.Partition, "offset", m.Offset, "reason", reason, "err", perr)
	}
	return true
}

// debugLogger routes kafka-go's own error chatter (every retry of every
// connection) to debug level; the bus logs what matters itself.
func debugLogger(l *slog.Logger) kafka.Logger {
	return kafka.LoggerFunc(func(msg string, args ...any) {
		if l.Enabled(context.Background(), slog.LevelDebug) {
			l.Debug("Kafka client", "detail", fmt.Sprintf(msg, args...))
		}
	})
}
