package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/ballast-cloud/ballast/collector/bus"
)

// recordWriter is what the producer needs from kafka-go's Writer.
type recordWriter interface {
	WriteMessages(ctx context.Context, msgs ...kafka.Message) error
}

// producer owns the bounded buffer of encoded sample records and the one
// goroutine that sends them. One sender keeps records of a partition in
// publish order, retries included, which keeps every series in time order.
//
// Policy when the buffer is full: a publisher waits up to BlockTimeout for
// space, then the oldest waiting records are dropped to make room, counted
// in ballast_kafka_producer_dropped_samples_total{reason="buffer_full"} and
// logged. Nothing is dropped silently.
type producer struct {
	w       recordWriter
	topic   string
	cfg     ProducerConfig
	metrics *metrics
	logger  *slog.Logger
	ready   <-chan struct{} // closed once the topics exist

	mu       sync.Mutex
	queue    []*pendingRecord // waiting, oldest first; queue[head:] is live
	head     int
	queued   int              // bytes in queue
	inflight []*pendingRecord // handed to the writer, oldest first
	inBytes  int
	nextSeq  uint64
	changed  chan struct{} // closed and replaced on every dequeue or completion
	work     chan struct{} // wakes the sender
	closing  bool

	stop     chan struct{} // closed by close: drain, then exit
	hardStop context.CancelFunc
	sendCtx  context.Context
	done     chan struct{}
	dropLog  sampledLogger
}

type pendingRecord struct {
	msg     kafka.Message
	samples int
	bytes   int
	seq     uint64
}

func newProducer(w recordWriter, topic string, cfg ProducerConfig, ready <-chan struct{}, m *metrics, logger *slog.Logger) *producer {
	ctx, cancel := context.WithCancel(context.Background())
	p := &producer{
		w: w, topic: topic, cfg: cfg, metrics: m, logger: logger, ready: ready,
		changed: make(chan struct{}), work: make(chan struct{}, 1),
		stop: make(chan struct{}), sendCtx: ctx, hardStop: cancel, done: make(chan struct{}),
		dropLog: sampledLogger{every: 10 * time.Second},
	}
	m.bufferLimit.Set(float64(cfg.BufferBytes))
	go p.run()
	return p
}

// enqueue adds recs to the buffer, applying the full-buffer policy. On a
// context error nothing more is enqueued and the error is returned; records
// already enqueued by this call stay.
func (p *producer) enqueue(ctx context.Context, recs []encodedRecord) error {
	var (
		timer    *time.Timer
		timedOut bool
		blocked  time.Time
	)
	defer func() {
		if timer != nil {
			timer.Stop()
		}
		if !blocked.IsZero() {
			p.metrics.blockedSeconds.Add(time.Since(blocked).Seconds())
		}
	}()
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := range recs {
		r := &pendingRecord{msg: recs[i].msg, samples: recs[i].samples, bytes: len(recs[i].msg.Value) + len(recs[i].msg.Key)}
		for {
			if p.closing {
				return bus.ErrClosed
			}
			if p.queued+r.bytes <= p.cfg.BufferBytes {
				break
			}
			if timedOut {
				p.dropOldestLocked(r.bytes)
				break
			}
			if timer == nil {
				timer = time.NewTimer(p.cfg.BlockTimeout)
				blocked = time.Now()
			}
			ch := p.changed
			p.mu.Unlock()
			select {
			case <-ch:
			case <-timer.C:
				timedOut = true
			case <-ctx.Done():
				p.mu.Lock()
				return fmt.Errorf("publish samples: waiting for producer buffer space: %w", ctx.Err())
			}
			p.mu.Lock()
		}
		r.seq = p.nextSeq
		p.nextSeq++
		p.queue = append(p.queue, r)
		p.queued += r.bytes
		p.gaugesLocked()
		select {
		case p.work <- struct{}{}:
		default:
		}
	}
	return nil
}

// dropOldestLocked drops waiting records, oldest first, until need bytes fit.
func (p *producer) dropOldestLocked(need int) {
	samples, records := 0, 0
	for p.queued+need > p.cfg.BufferBytes && p.head < len(p.queue) {
		r := p.queue[p.head]
		p.queue[p.head] = nil
		p.head++
		p.queued -= r.bytes
		samples += r.samples
		records++
	}
	p.compactLocked()
	if records == 0 {
		return
	}
	p.metrics.droppedSamples.WithLabelValues("buffer_full").Add(float64(samples))
	p.metrics.droppedRecords.WithLabelValues("buffer_full").Add(float64(records))
	p.signalLocked()
	if p.dropLog.allow() {
		p.logger.Warn("Producer buffer full, dropped the oldest sample records",
			"records", records, "samples", samples, "buffer_bytes", p.cfg.BufferBytes, "block_timeout", p.cfg.BlockTimeout)
	}
}

func (p *producer) compactLocked() {
	if p.head > 0 && p.head*2 >= len(p.queue) {
		n := copy(p.queue, p.queue[p.head:])
		clear(p.queue[n:])
		p.queue = p.queue[:n]
		p.head = 0
	}
}

func (p *producer) signalLocked() {
	close(p.changed)
	p.changed = make(chan struct{})
}

func (p *producer) gaugesLocked() {
	p.metrics.bufferBytes.Set(float64(p.queued + p.inBytes))
	p.metrics.bufferRecords.Set(float64(len(p.queue) - p.head + len(p.inflight)))
}

// flush waits until every record enqueued before the call was acknowledged
// or dropped.
func (p *producer) flush(ctx context.Context) error {
	p.mu.Lock()
	target := p.nextSeq
	for {
		if p.minOutstandingLocked() >= target {
			p.mu.Unlock()
			return nil
		}
		ch := p.changed
		p.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("flush sample records: %w", ctx.Err())
		case <-p.done:
			return bus.ErrClosed
		}
		p.mu.Lock()
	}
}

func (p *producer) minOutstandingLocked() uint64 {
	if len(p.inflight) > 0 {
		return p.inflight[0].seq
	}
	if p.head < len(p.queue) {
		return p.queue[p.head].seq
	}
	return p.nextSeq
}

// close stops accepting records, sends what is buffered for up to
// CloseTimeout, and drops (counting) the rest.
func (p *producer) close() {
	p.mu.Lock()
	if p.closing {
		p.mu.Unlock()
		<-p.done
		return
	}
	p.closing = true
	close(p.stop)
	p.signalLocked()
	p.mu.Unlock()
	t := time.NewTimer(p.cfg.CloseTimeout)
	defer t.Stop()
	select {
	case <-p.done:
	case <-t.C:
		p.hardStop()
		<-p.done
	}
	p.hardStop()
}

// run is the sender: it takes the oldest waiting records, up to
// MaxInflightBytes, and sends them until they are acknowledged.
func (p *producer) run() {
	defer close(p.done)
	select {
	case <-p.ready:
	case <-p.sendCtx.Done():
		p.dropAll("shutdown")
		return
	case <-p.stop:
		// Closed before the brokers were ever reachable: wait for them,
		// if anything is buffered, until the close timeout cuts it short.
		p.mu.Lock()
		empty := p.head == len(p.queue)
		p.mu.Unlock()
		if empty {
			return
		}
		select {
		case <-p.ready:
		case <-p.sendCtx.Done():
			p.dropAll("shutdown")
			return
		}
	}
	for {
		msgs, ok := p.take()
		if !ok {
			return
		}
		p.send(msgs)
	}
}

// take moves the next round from the queue to inflight. It returns false
// once the producer is closing and the queue is empty.
func (p *producer) take() ([]kafka.Message, bool) {
	p.mu.Lock()
	for p.head == len(p.queue) {
		if p.closing {
			p.mu.Unlock()
			return nil, false
		}
		p.mu.Unlock()
		select {
		case <-p.work:
		case <-p.stop:
		}
		p.mu.Lock()
	}
	var msgs []kafka.Message
	for p.head < len(p.queue) && (len(p.inflight) == 0 || p.inBytes+p.queue[p.head].bytes <= p.cfg.MaxInflightBytes) {
		r := p.queue[p.head]
		p.queue[p.head] = nil
		p.head++
		p.queued -= r.bytes
		p.inflight = append(p.inflight, r)
		p.inBytes += r.bytes
		msgs = append(msgs, r.msg)
	}
	p.compactLocked()
	p.signalLocked() // space freed for blocked publishers
	p.mu.Unlock()
	return msgs, true
}

// send writes the inflight round, retrying what failed with backoff until
// everything is acknowledged or the producer is hard-stopped.
func (p *producer) send(msgs []kafka.Message) {
	start := time.Now()
	pending := p.inflight // only this goroutine changes inflight
	for attempt := 0; ; attempt++ {
		err := p.w.WriteMessages(p.sendCtx, msgs...)
		if err == nil {
			break
		}
		var tooLarge kafka.MessageTooLargeError
		if errors.As(err, &tooLarge) {
			// Records are sized under the limit when encoded, so this is a
			// broker configured below producer.max_message_bytes.
			p.logger.Error("Sample record over the broker's size limit, dropped; lower producer.max_message_bytes",
				"bytes", len(tooLarge.Message.Value), "max_message_bytes", p.cfg.MaxMessageBytes)
			if idx := indexOfValue(msgs, tooLarge.Message.Value); idx >= 0 {
				p.metrics.droppedSamples.WithLabelValues(ReasonTooLarge).Add(float64(pending[idx].samples))
				p.metrics.droppedRecords.WithLabelValues(ReasonTooLarge).Inc()
				pending[idx].samples = -1 // counted
				msgs = append(msgs[:idx:idx], msgs[idx+1:]...)
				pending = append(pending[:idx:idx], pending[idx+1:]...)
				continue
			}
		}
		p.metrics.writeErrors.WithLabelValues(p.topic).Inc()
		var werrs kafka.WriteErrors
		if errors.As(err, &werrs) && len(werrs) == len(msgs) {
			// Keep only the failed records, in order, for the retry.
			var keepMsgs []kafka.Message
			var keep []*pendingRecord
			for i, e := range werrs {
				if e != nil {
					keepMsgs = append(keepMsgs, msgs[i])
					keep = append(keep, pending[i])
				} else {
					p.acked(pending[i])
				}
			}
			msgs, pending = keepMsgs, keep
		}
		if p.sendCtx.Err() != nil {
			p.complete("shutdown")
			return
		}
		if p.dropLog.allow() {
			p.logger.Warn("Producing sample records failed, retrying", "records", len(msgs), "attempt", attempt+1, "err", err)
		}
		if !sleepCtx(p.sendCtx, backoff(attempt, p.cfg.RetryBackoffMin, p.cfg.RetryBackoffMax)) {
			p.complete("shutdown")
			return
		}
	}
	for _, r := range pending {
		p.acked(r)
	}
	p.metrics.writeDuration.Observe(time.Since(start).Seconds())
	p.complete("")
}

func (p *producer) acked(r *pendingRecord) {
	if r.samples < 0 {
		return
	}
	p.metrics.sentRecords.WithLabelValues(p.topic).Inc()
	p.metrics.sentBytes.WithLabelValues(p.topic).Add(float64(len(r.msg.Value)))
	p.metrics.sentSamples.Add(float64(r.samples))
	r.samples = -1 // counted
}

// complete retires the inflight round; records not acknowledged are counted
// as dropped with reason.
func (p *producer) complete(reason string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	samples, records := 0, 0
	for _, r := range p.inflight {
		if r.samples >= 0 && reason != "" {
			samples += r.samples
			records++
		}
	}
	if records > 0 {
		p.metrics.droppedSamples.WithLabelValues(reason).Add(float64(samples))
		p.metrics.droppedRecords.WithLabelValues(reason).Add(float64(records))
		p.logger.Warn("Sample records dropped unsent", "reason", reason, "records", records, "samples", samples)
	}
	clear(p.inflight)
	p.inflight = p.inflight[:0]
	p.inBytes = 0
	if reason != "" {
		p.dropAllLocked(reason)
	}
	p.gaugesLocked()
	p.signalLocked()
}

func (p *producer) dropAll(reason string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.dropAllLocked(reason)
	p.gaugesLocked()
	p.signalLocked()
}

func (p *producer) dropAllLocked(reason string) {
	samples, records := 0, 0
	for _, r := range p.queue[p.head:] {
		samples += r.samples
		records++
	}
	clear(p.queue)
	p.queue, p.head, p.queued = p.queue[:0], 0, 0
	if records > 0 {
		p.metrics.droppedSamples.WithLabelValues(reason).Add(float64(samples))
		p.metrics.droppedRecords.WithLabelValues(reason).Add(float64(records))
		p.logger.Warn("Sample records dropped unsent", "reason", reason, "records", records, "samples", samples)
	}
}

func indexOfValue(msgs []kafka.Message, v []byte) int {
	for i := range msgs {
		if len(msgs[i].Value) == len(v) && (len(v) == 0 || &msgs[i].Value[0] == &v[0]) {
			return i
		}
	}
	return -1
}

// backoff is min·2^attempt, capped at max.
func backoff(attempt int, lo, hi time.Duration) time.Duration {
	d := lo
	for i := 0; i < attempt && d < hi; i++ {
		d *= 2
	}
	return min(d, hi)
}

// sleepCtx waits d or until ctx is done; it reports whether d elapsed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// sampledLogger lets one message through per interval, so a hot path that
// fails on every record logs a line, not a flood.
type sampledLogger struct {
	every time.Duration
	mu    sync.Mutex
	last  time.Time
}

func (s *sampledLogger) allow() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	if now.Sub(s.last) < s.every {
		return false
	}
	s.last = now
	return true
}
