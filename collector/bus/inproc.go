package bus

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// InProc is the embedded bus: one process, no broker.
//
// Samples are delivered synchronously: PublishSamples returns once one handler
// of every group has run, with their errors, so a remote_write request is
// acknowledged only after its samples are in the TSDB (and its WAL).
// A publish before the first sample consumer has subscribed waits for it up
// to InProcOptions.ConsumerWait, so what producers send while a server is
// still starting its ingester is not lost.
// Events are queued per subscriber and delivered in publish order by a
// goroutine of that subscriber, so a slow consumer never stalls a publisher
// unless its queue (EventQueue) is full, in which case Publish waits for room
// or for its context.
type InProc struct {
	mu      sync.RWMutex
	closed  bool
	done    chan struct{}
	samples map[string]*sampleGroup
	events  []*eventSub
	queue   int
	// wait is InProcOptions.ConsumerWait; first is closed when the first
	// sample consumer subscribes.
	wait      time.Duration
	first     chan struct{}
	firstOnce sync.Once
}

type sampleGroup struct {
	mu       sync.Mutex
	next     int
	handlers []*SampleHandler
}

type eventSub struct {
	group string
	types []string
	ch    chan Event
}

var _ Bus = (*InProc)(nil)

// InProcOptions configures the in-process bus.
type InProcOptions struct {
	// EventQueue is the number of events buffered per subscriber (default 1024).
	EventQueue int
	// ConsumerWait is how long PublishSamples waits for the first sample
	// consumer to subscribe before failing with ErrNoConsumer (default 0:
	// fail at once). Once a consumer has subscribed, a publish that finds
	// none (they are stopping) fails at once.
	ConsumerWait time.Duration
}

// NewInProc returns an empty in-process bus.
func NewInProc(opts InProcOptions) *InProc {
	if opts.EventQueue <= 0 {
		opts.EventQueue = 1024
	}
	return &InProc{done: make(chan struct{}), samples: map[string]*sampleGroup{}, queue: opts.EventQueue,
		wait: opts.ConsumerWait, first: make(chan struct{})}
}

// PublishSamples hands b to one handler of every consumer group and returns
// their joined errors. The handlers must not keep b after returning. Before
// the first consumer subscribes it waits for one up to ConsumerWait.
func (p *InProc) PublishSamples(ctx context.Context, b *SampleBatch) error {
	hs, err := p.handlers()
	if errors.Is(err, ErrNoConsumer) && p.wait > 0 {
		if err = p.waitFirst(ctx); err == nil {
			hs, err = p.handlers()
		}
	}
	if err != nil {
		return err
	}
	if len(hs) == 1 {
		return hs[0](ctx, b)
	}
	var errs []error
	for _, h := range hs {
		if err := h(ctx, b); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// handlers picks one handler of every consumer group, round robin.
func (p *InProc) handlers() ([]SampleHandler, error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return nil, ErrClosed
	}
	var hs []SampleHandler
	for _, g := range p.samples {
		g.mu.Lock()
		if len(g.handlers) > 0 {
			hs = append(hs, *g.handlers[g.next%len(g.handlers)])
			g.next++
		}
		g.mu.Unlock()
	}
	if len(hs) == 0 {
		return nil, ErrNoConsumer
	}
	return hs, nil
}

// waitFirst waits up to p.wait for the first sample consumer to subscribe.
// It returns at once if one has already subscribed (and left).
func (p *InProc) waitFirst(ctx context.Context) error {
	t := time.NewTimer(p.wait)
	defer t.Stop()
	select {
	case <-p.first:
		return nil
	case <-t.C:
		return ErrNoConsumer
	case <-ctx.Done():
		return fmt.Errorf("wait for a sample consumer: %w", ctx.Err())
	case <-p.done:
		return ErrClosed
	}
}

// ConsumeSamples registers h in group until ctx is done or the bus closes.
func (p *InProc) ConsumeSamples(ctx context.Context, group string, h SampleHandler) error {
	if h == nil {
		return errors.New("consume samples: nil handler")
	}
	hp := &h
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return ErrClosed
	}
	g := p.samples[group]
	if g == nil {
		g = &sampleGroup{}
		p.samples[group] = g
	}
	g.mu.Lock()
	g.handlers = append(g.handlers, hp)
	g.mu.Unlock()
	p.mu.Unlock()
	p.firstOnce.Do(func() { close(p.first) })

	defer func() {
		p.mu.Lock()
		g.mu.Lock()
		g.handlers = slices.DeleteFunc(g.handlers, func(x *SampleHandler) bool { return x == hp })
		empty := len(g.handlers) == 0
		g.mu.Unlock()
		if empty && p.samples[group] == g {
			delete(p.samples, group)
		}
		p.mu.Unlock()
	}()
	select {
	case <-ctx.Done():
		return nil
	case <-p.done:
		return nil
	}
}

// PublishEvents validates and queues every event for each matching
// subscriber. Events published while nobody subscribes are dropped, as a
// broadcast with no listener.
func (p *InProc) PublishEvents(ctx context.Context, events ...Event) error {
	for i := range events {
		if err := events[i].Validate(); err != nil {
			return fmt.Errorf("publish event %d: %w", i, err)
		}
	}
	p.mu.RLock()
	if p.closed {
		p.mu.RUnlock()
		return ErrClosed
	}
	// One subscriber per group receives each event, as with samples; the
	// first registered member of a group is enough for in-process delivery.
	seen := map[string]bool{}
	var targets []*eventSub
	for _, s := range p.events {
		if seen[s.group] {
			continue
		}
		seen[s.group] = true
		targets = append(targets, s)
	}
	p.mu.RUnlock()
	for _, e := range events {
		for _, s := range targets {
			if len(s.types) > 0 && !slices.Contains(s.types, e.Type) {
				continue
			}
			select {
			case s.ch <- e:
			case <-ctx.Done():
				return fmt.Errorf("publish event %s: %w", e.ID, ctx.Err())
			case <-p.done:
				return ErrClosed
			}
		}
	}
	return nil
}

// ConsumeEvents delivers matching events to h, in order, until ctx is done or
// the bus closes. Handler errors are returned to nobody (the publisher has
// moved on); h must log its own failures.
func (p *InProc) ConsumeEvents(ctx context.Context, group string, types []string, h EventHandler) error {
	if h == nil {
		return errors.New("consume events: nil handler")
	}
	s := &eventSub{group: group, types: slices.Clone(types), ch: make(chan Event, p.queue)}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return ErrClosed
	}
	p.events = append(p.events, s)
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		p.events = slices.DeleteFunc(p.events, func(x *eventSub) bool { return x == s })
		p.mu.Unlock()
	}()
	for {
		select {
		case e := <-s.ch:
			_ = h(ctx, e)
		case <-ctx.Done():
			return nil
		case <-p.done:
			return nil
		}
	}
}

// Ready reports nil once a sample consumer is subscribed (until then a
// publish would fail with ErrNoConsumer), ErrClosed after Close.
func (p *InProc) Ready() error {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return ErrClosed
	}
	for _, g := range p.samples {
		g.mu.Lock()
		n := len(g.handlers)
		g.mu.Unlock()
		if n > 0 {
			return nil
		}
	}
	return ErrNoConsumer
}

// Close stops every consumer; later publishes fail with ErrClosed.
func (p *InProc) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.closed {
		p.closed = true
		close(p.done)
	}
	return nil
}
