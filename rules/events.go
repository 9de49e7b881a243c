package rules

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/prometheus/model/labels"
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
// resolves, not on every evaluation. A firing alert that is no longer sent
// (its rule was removed) resolves when its validity ends.
type alertEvents struct {
	pub    bus.EventPublisher
	now    func() time.Time
	logger *slog.Logger

	mu       sync.Mutex
	external labels.Labels
	firing   map[string]firingAlert
	queue    chan bus.Event
}

type firingAlert struct {
	ev         AlertEvent
	validUntil time.Time
}

func newAlertEvents(pub bus.EventPublisher, now func() time.Time, logger *slog.Logger) *alertEvents {
	return &alertEvents{pub: pub, now: now, logger: logger, firing: map[string]firingAlert{}, queue: make(chan bus.Event, 4096)}
}

func (a *alertEvents) setExternal(ls labels.Labels) {
	a.mu.Lock()
	a.external = ls
	a.mu.Unlock()
}

// Send records transitions; it must not block the rule evaluation, so
// events are queued and published by run.
func (a *alertEvents) Send(alerts ...*notifier.Alert) {
	now := a.now()
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, al := range alerts {
		ls := withExternal(al.Labels, a.external)
		fp := Fingerprint(ls)
		resolved := al.ResolvedAt(now)
		ev := AlertEvent{Status: statusFiring, Labels: ls.Map(), Annotations: al.Annotations.Map(),
			StartsAt: al.StartsAt, GeneratorURL: al.GeneratorURL, Fingerprint: fp}
		_, was := a.firing[fp]
		switch {
		case !resolved:
			a.firing[fp] = firingAlert{ev: ev, validUntil: al.EndsAt}
			if was {
				continue
			}
		case was:
			delete(a.firing, fp)
			ev.Status, ev.EndsAt = statusResolved, al.EndsAt
		default:
			continue
		}
		a.publish(ev)
	}
}

// expire resolves firing alerts whose validity ended without a resend.
func (a *alertEvents) expire() {
	now := a.now()
	a.mu.Lock()
	defer a.mu.Unlock()
	for fp, f := range a.firing {
		if f.validUntil.IsZero() || f.validUntil.After(now) {
			continue
		}
		delete(a.firing, fp)
		ev := f.ev
		ev.Status, ev.EndsAt = statusResolved, f.validUntil
		a.publish(ev)
	}
}

// publish queues ev; a.mu is held.
func (a *alertEvents) publish(ev AlertEvent) {
	e, err := bus.NewEvent(eventSource, bus.TypeAlert, ev.Fingerprint, ev)
	if err != nil {
		a.logger.Error("Cannot encode alert event", "err", err)
		return
	}
	select {
	case a.queue <- e:
	default:
		a.logger.Warn("Alert event queue full; event dropped", "alertname", ev.Labels["alertname"], "status", ev.Status)
	}
}

// run publishes queued events until ctx ends.
func (a *alertEvents) run(ctx context.Context) {
	tick := time.NewTicker(10 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			a.expire()
		case e := <-a.queue:
			if err := a.pub.PublishEvents(ctx, e); err != nil && ctx.Err() == nil {
				a.logger.Error("Cannot publish alert event", "subject", e.Subject, "err", err)
			}
		}
	}
}
