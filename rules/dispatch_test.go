package rules

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/notifier"
	"github.com/stretchr/testify/require"

	"github.com/ballast-cloud/ballast/rules/notify"
)

// fakeClock is a settable clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// hook is a webhook receiver recording the v4 payloads it gets; it answers
// with the queued statuses first, then 200.
type hook struct {
	*httptest.Server
	mu       sync.Mutex
	payloads []webhookPayload
	statuses []int
}

type webhookPayload struct {
	Version     string            `json:"version"`
	Status      string            `json:"status"`
	Receiver    string            `json:"receiver"`
	GroupLabels map[string]string `json:"groupLabels"`
	Alerts      []struct {
		Status string            `json:"status"`
		Labels map[string]string `json:"labels"`
	} `json:"alerts"`
}

func newHook(t *testing.T) *hook {
	h := &hook{}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		defer h.mu.Unlock()
		if len(h.statuses) > 0 {
			code := h.statuses[0]
			h.statuses = h.statuses[1:]
			w.Header().Set("Retry-After", "7")
			w.WriteHeader(code)
			return
		}
		var p webhookPayload
		if err := json.Unmarshal(body, &p); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		h.payloads = append(h.payloads, p)
	}))
	t.Cleanup(h.Close)
	return h
}

func (h *hook) got() []webhookPayload {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]webhookPayload(nil), h.payloads...)
}

// firing is an alert as the rule manager sends it while it fires: valid
// for four resend delays from now.
func (e *dispatchEnv) firing(name string, kv ...string) *notifier.Alert {
	return &notifier.Alert{Labels: labels.FromStrings(append([]string{"alertname", name}, kv...)...),
		Annotations: labels.FromStrings("summary", name+" fires"), StartsAt: e.start, EndsAt: e.clock.Now().Add(4 * time.Minute)}
}

// resolved is the alert as sent once it resolved now.
func (e *dispatchEnv) resolved(name string, kv ...string) *notifier.Alert {
	a := e.firing(name, kv...)
	a.EndsAt = e.clock.Now()
	return a
}

type dispatchEnv struct {
	t     *testing.T
	start time.Time
	clock *fakeClock
	d     *Dispatcher
	waits []time.Duration
}

func newDispatch(t *testing.T, cfg NotificationsConfig) *dispatchEnv {
	t.Helper()
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	e := &dispatchEnv{t: t, start: now, clock: &fakeClock{now: now}}
	e.d = NewDispatcher(nil, nil, e.clock.Now, nil)
	e.d.sleepFor = func(ctx context.Context, d time.Duration) error {
		e.waits = append(e.waits, d)
		return ctx.Err()
	}
	c, err := e.d.compile(cfg)
	require.NoError(t, err)
	e.d.apply(c, labels.FromStrings("cluster", "test"), "http://ballast.example")
	return e
}

// flush runs the notifications due now, synchronously.
func (e *dispatchEnv) flush() int {
	jobs := e.d.due()
	for _, j := range jobs {
		e.d.deliver(context.Background(), j)
	}
	return len(jobs)
}

func webhookReceiver(name, url string) notify.ReceiverConfig {
	return notify.ReceiverConfig{Name: name, Webhooks: []notify.WebhookConfig{{URL: url}}}
}

// TestDispatcherGrouping follows one group through group_wait,
// group_interval, a resolution and repeat_interval.
func TestDispatcherGrouping(t *testing.T) {
	h := newHook(t)
	e := newDispatch(t, NotificationsConfig{Receivers: []notify.ReceiverConfig{webhookReceiver("ops", h.URL)}})
	e.d.Send(e.firing("HostDown", "host", "a"), e.firing("HostDown", "host", "b"))
	e.clock.Add(10 * time.Second)
	require.Zero(t, e.flush(), "group_wait (30s) not over")
	e.clock.Add(21 * time.Second)
	require.Equal(t, 1, e.flush())
	got := h.got()
	require.Len(t, got, 1)
	require.Equal(t, "4", got[0].Version)
	require.Equal(t, "firing", got[0].Status)
	require.Equal(t, "ops", got[0].Receiver)
	require.Equal(t, map[string]string{"alertname": "HostDown"}, got[0].GroupLabels)
	require.Len(t, got[0].Alerts, 2)
	require.Equal(t, "test", got[0].Alerts[0].Labels["cluster"], "external labels are added")

	// Unchanged: nothing before repeat_interval.
	e.clock.Add(6 * time.Minute)
	e.d.Send(e.firing("HostDown", "host", "a"), e.firing("HostDown", "host", "b"))
	require.Zero(t, e.flush())
	require.Len(t, h.got(), 1)

	// One resolves: told at the next group_interval, then forgotten. (The
	// rule manager sends firing alerts every resend_delay; each send here
	// stands for those.)
	e.d.Send(e.firing("HostDown", "host", "a"), e.resolved("HostDown", "host", "b"))
	e.clock.Add(5 * time.Minute)
	e.d.Send(e.firing("HostDown", "host", "a"))
	require.Equal(t, 1, e.flush())
	got = h.got()
	require.Len(t, got, 2)
	require.Equal(t, "firing", got[1].Status)
	require.Len(t, got[1].Alerts, 2)
	require.Equal(t, "firing", got[1].Alerts[0].Status)
	require.Equal(t, "resolved", got[1].Alerts[1].Status)
	// The rule manager keeps sending the resolved alert: not news.
	e.clock.Add(5 * time.Minute)
	e.d.Send(e.firing("HostDown", "host", "a"), e.resolved("HostDown", "host", "b"))
	require.Zero(t, e.flush())

	// repeat_interval (4h) brings the firing alert back.
	e.clock.Add(4 * time.Hour)
	e.d.Send(e.firing("HostDown", "host", "a"))
	require.Equal(t, 1, e.flush())
	got = h.got()
	require.Len(t, got, 3)
	require.Len(t, got[2].Alerts, 1)

	// An alert no longer sent (its rule was removed) resolves when its
	// validity ends.
	e.clock.Add(5 * time.Minute)
	require.Equal(t, 1, e.flush())
	got = h.got()
	require.Len(t, got, 4)
	require.Equal(t, "resolved", got[3].Status)
}

// TestDispatcherRoutes: first match wins unless continue; alerts of other
// alert names are separate groups.
func TestDispatcherRoutes(t *testing.T) {
	pager, team, rest := newHook(t), newHook(t), newHook(t)
	e := newDispatch(t, NotificationsConfig{
		GroupWait: model.Duration(time.Second),
		Routes: []RouteConfig{
			{Receiver: "pager", Matchers: []string{`severity="critical"`}, Continue: true},
			{Receiver: "team", Matchers: []string{`alertname=~"Ceph.*"`}},
			{Receiver: "rest"},
		},
		Receivers: []notify.ReceiverConfig{webhookReceiver("pager", pager.URL), webhookReceiver("team", team.URL), webhookReceiver("rest", rest.URL)},
	})
	e.d.Send(e.firing("CephOSDDown", "severity", "critical"), e.firing("CephNearFull", "severity", "warning"),
		e.firing("HostDown", "severity", "warning"))
	e.clock.Add(2 * time.Second)
	require.Equal(t, 4, e.flush())
	require.Len(t, pager.got(), 1)
	require.Len(t, team.got(), 2, "two alert names, two groups")
	require.Len(t, rest.got(), 1)
	require.Equal(t, "HostDown", rest.got()[0].GroupLabels["alertname"])
}

// TestDispatcherRetry: a 503 with Retry-After is retried after the wait
// asked; a 400 is not retried, and the group is tried again at the next
// group_interval.
func TestDispatcherRetry(t *testing.T) {
	h := newHook(t)
	e := newDispatch(t, NotificationsConfig{GroupWait: model.Duration(time.Second),
		Receivers: []notify.ReceiverConfig{webhookReceiver("ops", h.URL)}})
	e.d.sleepFor = func(_ context.Context, d time.Duration) error { e.waits = append(e.waits, d); return nil }
	h.statuses = []int{http.StatusServiceUnavailable}
	e.d.Send(e.firing("HostDown"))
	e.clock.Add(2 * time.Second)
	require.Equal(t, 1, e.flush())
	require.Equal(t, []time.Duration{7 * time.Second}, e.waits)
	require.Len(t, h.got(), 1)

	h.mu.Lock()
	h.statuses = []int{http.StatusBadRequest}
	h.mu.Unlock()
	e.d.Send(e.firing("DiskFull"))
	e.clock.Add(2 * time.Second)
	require.Equal(t, 1, e.flush())
	require.Len(t, h.got(), 1, "400 is not retried")
	require.Len(t, e.waits, 1)
	e.clock.Add(5 * time.Minute)
	e.d.Send(e.firing("HostDown"), e.firing("DiskFull"))
	require.Equal(t, 1, e.flush(), "a failed group is tried again at group_interval")
	require.Len(t, h.got(), 2)
	require.Equal(t, "DiskFull", h.got()[1].GroupLabels["alertname"])
}

func TestNotificationsConfigErrors(t *testing.T) {
	ok := webhookReceiver("ops", "http://127.0.0.1:1/hook")
	for _, tc := range []struct {
		name string
		cfg  NotificationsConfig
		want string
	}{
		{"bad matcher", NotificationsConfig{Receivers: []notify.ReceiverConfig{ok},
			Routes: []RouteConfig{{Receiver: "ops", Matchers: []string{`severity=="x"`}}}}, "rules.notifications.routes[0].matchers[0]"},
		{"unknown receiver", NotificationsConfig{Receivers: []notify.ReceiverConfig{ok},
			Routes: []RouteConfig{{Receiver: "nobody"}}}, `rules.notifications.routes[0].receiver: "nobody" is not a receiver`},
		{"duplicate receiver", NotificationsConfig{Receivers: []notify.ReceiverConfig{ok, ok}}, `rules.notifications.receivers[1].name: "ops" is used twice`},
		{"unnamed receiver", NotificationsConfig{Receivers: []notify.ReceiverConfig{{}}}, "rules.notifications.receivers[0].name: required"},
		{"bad group_by", NotificationsConfig{GroupBy: []string{""}}, `rules.notifications.group_by[0]: "" is not a label name`},
		{"all and names", NotificationsConfig{GroupBy: []string{"...", "alertname"}}, `rules.notifications.group_by: "..." cannot be combined`},
		{"negative wait", NotificationsConfig{GroupWait: model.Duration(-time.Second)}, "rules.notifications.group_wait: must not be negative"},
		{"receiver without url", NotificationsConfig{Receivers: []notify.ReceiverConfig{{Name: "x", Webhooks: []notify.WebhookConfig{{}}}}},
			"rules.notifications.receivers[0] (x)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewDispatcher(nil, nil, nil, nil).compile(tc.cfg)
			require.ErrorContains(t, err, tc.want)
		})
	}
}

// TestDispatcherChangeDuringDelivery: an alert that resolves while its
// group's notification is being sent is reported at the next
// group_interval, not lost.
func TestDispatcherChangeDuringDelivery(t *testing.T) {
	h := newHook(t)
	e := newDispatch(t, NotificationsConfig{GroupWait: model.Duration(time.Second),
		Receivers: []notify.ReceiverConfig{webhookReceiver("ops", h.URL)}})
	e.d.Send(e.firing("HostDown", "host", "a"), e.firing("HostDown", "host", "b"))
	e.clock.Add(2 * time.Second)
	jobs := e.d.due()
	require.Len(t, jobs, 1)
	e.d.Send(e.firing("HostDown", "host", "a"), e.resolved("HostDown", "host", "b")) // while in flight
	e.d.deliver(context.Background(), jobs[0])
	e.clock.Add(5 * time.Minute)
	e.d.Send(e.firing("HostDown", "host", "a"))
	require.Equal(t, 1, e.flush())
	got := h.got()
	require.Len(t, got, 2)
	require.Equal(t, "resolved", got[1].Alerts[1].Status)
}

// TestDispatcherPartialFailure: when one integration of a receiver fails,
// only that one is tried again; the others do not repeat the message.
func TestDispatcherPartialFailure(t *testing.T) {
	good, bad := newHook(t), newHook(t)
	bad.statuses = []int{http.StatusBadRequest}
	e := newDispatch(t, NotificationsConfig{GroupWait: model.Duration(time.Second),
		Receivers: []notify.ReceiverConfig{{Name: "ops", Webhooks: []notify.WebhookConfig{{URL: good.URL}, {URL: bad.URL}}}}})
	e.d.Send(e.firing("HostDown"))
	e.clock.Add(2 * time.Second)
	require.Equal(t, 1, e.flush())
	require.Len(t, good.got(), 1)
	require.Empty(t, bad.got())
	e.clock.Add(5 * time.Minute)
	e.d.Send(e.firing("HostDown"))
	require.Equal(t, 1, e.flush())
	require.Len(t, good.got(), 1, "the integration that succeeded is not repeated")
	require.Len(t, bad.got(), 1)
	e.clock.Add(5 * time.Minute)
	e.d.Send(e.firing("HostDown"))
	require.Zero(t, e.flush(), "all delivered: nothing until repeat_interval")
}
