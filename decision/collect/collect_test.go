package collect_test

import (
	"context"
	"errors"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/util/teststorage"
	"github.com/stretchr/testify/require"

	"github.com/ballast-cloud/ballast/collector/bus"
	"github.com/ballast-cloud/ballast/decision/collect"
	dmodel "github.com/ballast-cloud/ballast/decision/model"
	"github.com/ballast-cloud/ballast/decision/sim"
	"github.com/ballast-cloud/ballast/tsdb/datasource"
)

func TestQueries(t *testing.T) {
	b, err := collect.New(collect.Config{}, collect.Deps{Inventory: collect.StaticInventory{}}, nil)
	require.NoError(t, err)
	for _, tc := range []struct {
		w    collect.Window
		want string
	}{
		{collect.DefaultWindow, "avg_over_time((sum by (uuid) (rate(libvirt_domain_info_cpu_time_seconds_total[300s])))[3600s:300s])"},
		{collect.Window{Period: time.Hour, Granularity: time.Minute, Aggregate: "max"}, "max_over_time("},
		{collect.Window{Period: time.Hour, Granularity: time.Minute, Aggregate: "p95"}, "quantile_over_time(0.95, "},
		{collect.Window{Period: 0, Granularity: time.Minute, Aggregate: "mean"}, "sum by (uuid) (rate(libvirt_domain_info_cpu_time_seconds_total[60s]))"},
	} {
		q, err := b.Query(collect.InstanceCPUCores, tc.w)
		require.NoError(t, err)
		require.True(t, strings.HasPrefix(q, tc.want), q)
	}
	for _, name := range []string{collect.InstanceCPUCores, collect.InstanceMemoryMB, collect.InstanceDiskIO, collect.InstanceNet,
		collect.InstanceSteal, collect.HostCPU, collect.HostMemoryMB, collect.HostDiskIOUtil, collect.HostSteal} {
		for _, agg := range []string{"mean", "max", "min", "p90"} {
			q, err := b.Query(name, collect.Window{Period: time.Hour, Granularity: 5 * time.Minute, Aggregate: agg})
			require.NoError(t, err)
			require.NoError(t, datasource.Validate(q), "%s %s", name, agg)
		}
	}
	_, err = b.Query(collect.HostCPU, collect.Window{Period: time.Hour, Granularity: time.Minute, Aggregate: "median"})
	require.Error(t, err)
	_, err = collect.New(collect.Config{Queries: map[string]string{"bogus": "up"}}, collect.Deps{Inventory: collect.StaticInventory{}}, nil)
	require.ErrorContains(t, err, `"bogus" is not one of`)
	_, err = collect.New(collect.Config{}, collect.Deps{}, nil)
	require.ErrorContains(t, err, "inventory is required")
}

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) Sleep(_ context.Context, d time.Duration) error {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
	return nil
}

// TestEndToEnd runs the simulator through the bus into a TSDB, keeps the
// inventory from its events, and builds the model with PromQL through the
// datasource seam: the measured usage must match what the simulator ran.
func TestEndToEnd(t *testing.T) {
	st := teststorage.New(t)
	defer st.Close()
	engine := promql.NewEngine(promql.EngineOpts{MaxSamples: 50_000_000, Timeout: time.Minute, LookbackDelta: 5 * time.Minute})
	ds, err := datasource.NewLocal(engine, st)
	require.NoError(t, err)

	b := bus.NewInProc(bus.InProcOptions{})
	defer b.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	inv := collect.NewEventInventory(nil)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		_ = b.ConsumeSamples(ctx, "tsdb", func(ctx context.Context, batch *bus.SampleBatch) error {
			app := st.Appender(ctx)
			for _, s := range batch.Series {
				for _, x := range s.Samples {
					if _, err := app.Append(0, s.Labels, x.T, x.V); err != nil {
						return err
					}
				}
			}
			return app.Commit()
		})
	}()
	go func() {
		defer wg.Done()
		_ = inv.Run(ctx, b, "decision")
	}()
	for {
		if err := b.PublishSamples(ctx, &bus.SampleBatch{}); !errors.Is(err, bus.ErrNoConsumer) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	clk := &fakeClock{now: time.Now().Add(-time.Hour).Truncate(time.Minute)}
	s, err := sim.New(sim.Config{Hosts: 4, Instances: 24, Seed: 9, Now: clk.Now, Sleep: clk.Sleep, TraceSpeed: 1}, b, nil)
	require.NoError(t, err)
	for k := 0; k <= 40; k++ {
		s.Tick(ctx)
		clk.Sleep(ctx, 15*time.Second)
	}
	at := clk.Now().Add(-15 * time.Second)
	require.Eventually(t, func() bool {
		c, _ := inv.Inventory(ctx)
		return len(c.Hosts) == 4 && len(c.Instances) == 24
	}, 5*time.Second, 10*time.Millisecond)

	builder, err := collect.New(collect.Config{}, collect.Deps{Inventory: inv, Querier: ds}, nil)
	require.NoError(t, err)
	c, err := builder.Build(ctx, at, collect.Window{Period: 5 * time.Minute, Granularity: time.Minute, Aggregate: "mean"})
	require.NoError(t, err)
	require.Equal(t, 300, c.Metrics.PeriodSeconds)
	truth := s.Snapshot()
	byID := map[string]dmodel.Instance{}
	for _, in := range truth.Instances {
		byID[in.UUID] = in
	}
	measured := 0
	for _, in := range c.Instances {
		require.NotNil(t, in.Usage, in.UUID)
		want := byID[in.UUID]
		require.InDelta(t, want.Usage.MemoryMB, in.Usage.MemoryMB, 1, "memory of %s", in.UUID)
		if want.Usage.CPU > 0.05 {
			measured++
			// The simulator's snapshot averages an hour of trace; the
			// builder measured 5 minutes: same order, not equal.
			require.Less(t, math.Abs(in.Usage.CPU-want.Usage.CPU), 0.5, in.UUID)
		}
	}
	require.Positive(t, measured)
	for _, h := range c.Hosts {
		require.NotNil(t, h.Usage, h.Name)
		require.Greater(t, h.Usage.MemoryMB, 0.0)
	}
	cancel()
	wg.Wait()
}

func TestEventInventory(t *testing.T) {
	inv := collect.NewEventInventory(nil)
	ev := func(typ, subject string, data any) bus.Event {
		e, err := bus.NewEvent("test", typ, subject, data)
		require.NoError(t, err)
		return e
	}
	host := func(name string) dmodel.Host {
		return dmodel.Host{Name: name, Capacity: dmodel.Capacity{VCPUs: 8, MemoryMB: 8192}}
	}
	vm := func(id string) dmodel.Instance {
		return dmodel.Instance{UUID: id, State: dmodel.InstanceActive, Flavor: dmodel.Flavor{VCPUs: 1, MemoryMB: 512}}
	}
	ctx := context.Background()
	require.NoError(t, inv.Handle(ctx, ev(bus.TypeInventory, "a", dmodel.HostInventory{Host: host("a"), Instances: []dmodel.Instance{vm("1"), vm("2")}})))
	require.NoError(t, inv.Handle(ctx, ev(bus.TypeInventory, "b", dmodel.HostInventory{Host: host("b"), Instances: []dmodel.Instance{vm("3")}})))
	// Instance 2 migrated: b reports it before a's next inventory.
	require.NoError(t, inv.Handle(ctx, ev(bus.TypeInventory, "b", dmodel.HostInventory{Host: host("b"), Instances: []dmodel.Instance{vm("3"), vm("2")}})))
	require.NoError(t, inv.Handle(ctx, ev(bus.TypeHostState, "a", collect.HostStateEvent{Host: "a", State: "disabled", DisabledReason: "x"})))
	del := vm("3")
	require.NoError(t, inv.Handle(ctx, ev(bus.TypeInstanceLifecycle, "3", collect.InstanceEvent{Event: "deleted", Instance: del})))
	c, err := inv.Inventory(ctx)
	require.NoError(t, err)
	require.NoError(t, c.Validate())
	hosts := map[string]string{}
	for _, in := range c.Instances {
		hosts[in.UUID] = in.Host
	}
	require.Equal(t, map[string]string{"1": "a", "2": "b"}, hosts)
	require.Equal(t, dmodel.HostDisabled, c.Hosts[0].State)
	bad := bus.Event{SpecVersion: bus.SpecVersion, ID: "x", Source: "s", Type: bus.TypeInventory, Time: time.Now(), Data: []byte(`{"host":{}}`)}
	require.True(t, bus.IsPermanent(inv.Handle(ctx, bad)))
}
