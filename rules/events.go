package rules

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/prometheus/notifier"

	"github.com/ballast-cloud/ballast/collector/bus"
)

// AlertEvent is the data of an io.ballast.alert.v1 event: an alert that
// started firing or resolved (docs/wire.md).
type AlertEvent struct {
	Status       string            `json:"status"` // firing or resolved
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt,omitzero"`
	GeneratorURL string            `json:"generatorURL,omitempty"`
	Fingerprint  string            `json:"fingerprint"`
}

// eventSource is the source attribute of the alert events.
const eventSource = "ballast/rules"

// alertEvents publishes an event when an alert starts firing and when it
// resolves, not on every evaluation.
type alertEvents struct {
	pub    bus.EventPublisher
	now    func() time.Time
	logger *slog.Logger

	mu     sync.Mutex
	firing map[uint64]bool
	queue  chan bus.Event
}

func newAlertEvents(pub bus.EventPublisher, now func() time.Time, logger *slog.Logger) *alertEvents {
	return &alertEvents{pub: pub, now: now, logger: logger, firing: map[uint64]bool{}, queue: make(chan bus.Event, 4096)}
}

// Send records transitions; it must not block the rule evaluation, so
// events are queued and published by run.
func (a *alertEvents) Send(alerts ...*notifier.Alert) {
	now := a.now()
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, al := range alerts {
		fp := al.Labels.Hash()
		resolved := al.ResolvedAt(now)
		was := a.firing[fp]
		switch {
		case !resolved && !was:
			a.firing[fp] = true
		case resolved && was:
			delete(a.firing, fp)
		default:
			continue
		}
		ev := AlertEvent{Status: statusFiring, Labels: al.Labels.Map(), Annotations: al.Annotations.Map(),
			StartsAt: al.StartsAt, GeneratorURL: al.GeneratorURL, Fingerprint: fmt.Sprintf("%016x", fp)}
		if resolved {
			ev.Status, ev.EndsAt = statusResolved, al.EndsAt
		}
		e, err := bus.NewEvent(eventSource, bus.TypeAlert, ev.Fingerprint, ev)
		if err != nil {
			a.logger.Error("Cannot encode alert event", "err", err)
			continue
		}
		select {
		case a.queue <- e:
		default:
			a.logger.Warn("Alert event queue full; event dropped", "alertname", al.Name(), "status", ev.Status)
		}
	}
}

// run publishes queued events until ctx ends.
func (a *alertEvents) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case e := <-a.queue:
			if err := a.pub.PublishEvents(ctx, e); err != nil && ctx.Err() == nil {
				a.logger.Error("Cannot publish alert event", "subject", e.Subject, "err", err)
			}
		}
	}
}
