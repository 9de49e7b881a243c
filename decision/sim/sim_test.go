package sim

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ballast-cloud/ballast/collector/bus"
	"github.com/ballast-cloud/ballast/decision"
	"github.com/ballast-cloud/ballast/decision/model"
)

// fakeClock is a manual clock whose Sleep advances time instantly.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
	return nil
}

func newSim(t *testing.T, cfg Config, pub bus.SamplePublisher) (*Sim, *fakeClock) {
	t.Helper()
	clk := &fakeClock{now: time.Date(2026, 3, 3, 0, 0, 0, 0, time.UTC)}
	cfg.Now, cfg.Sleep = clk.Now, clk.Sleep
	s, err := New(cfg, pub, nil)
	require.NoError(t, err)
	return s, clk
}

func TestDefaultsAndSnapshot(t *testing.T) {
	s, _ := newSim(t, Config{Seed: 1}, nil)
	c := s.Snapshot()
	require.NoError(t, c.Validate())
	require.Len(t, c.Hosts, 40)
	require.Len(t, c.Instances, 400)
	require.Equal(t, "simulator", c.Source)
	require.Empty(t, model.CheckPlacement(c))
	other, _ := newSim(t, Config{Seed: 1}, nil)
	require.Equal(t, c, other.Snapshot(), "deterministic per seed")
	third, _ := newSim(t, Config{Seed: 2}, nil)
	require.NotEqual(t, c.Instances[0].UUID, third.Snapshot().Instances[0].UUID)
}

func TestTracesDriveLoad(t *testing.T) {
	s, clk := newSim(t, Config{Hosts: 4, Instances: 30, Seed: 3, TraceSpeed: 12}, nil)
	var loads []float64
	for k := 0; k < 6; k++ {
		clk.Sleep(context.Background(), 10*time.Minute)
		s.Tick(context.Background())
		var sum float64
		for _, in := range s.Snapshot().Instances {
			sum += in.Usage.CPU
		}
		loads = append(loads, sum)
	}
	distinct := map[float64]bool{}
	for _, l := range loads {
		distinct[l] = true
		require.Positive(t, l)
	}
	require.Greater(t, len(distinct), 1, "load changes with the traces")
}

func TestPublishes(t *testing.T) {
	b := bus.NewInProc(bus.InProcOptions{})
	defer b.Close()
	var mu sync.Mutex
	names := map[string]int{}
	var cpu []float64
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan struct{})
	go func() {
		_ = b.ConsumeSamples(ctx, "test", func(_ context.Context, batch *bus.SampleBatch) error {
			mu.Lock()
			defer mu.Unlock()
			for _, s := range batch.Series {
				n := s.Labels.Get("__name__")
				names[n]++
				if n == "libvirt_domain_info_cpu_time_seconds_total" && s.Labels.Get("uuid") != "" && len(cpu) < 2 &&
					s.Labels.Get("domain") != "" && s.Labels.Get("host") != "" {
					cpu = append(cpu, s.Samples[0].V)
				}
				if n == "node_cpu_seconds_total" {
					require.NotEmpty(t, s.Labels.Get("fqdn"))
					require.NotEmpty(t, s.Labels.Get("mode"))
				}
				if n == "ceilometer_cpu" {
					require.NotEmpty(t, s.Labels.Get("resource"))
				}
			}
			return nil
		})
	}()
	go func() {
		for {
			if err := b.PublishSamples(ctx, &bus.SampleBatch{}); !errors.Is(err, bus.ErrNoConsumer) {
				close(ready)
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	<-ready
	s, clk := newSim(t, Config{Hosts: 3, Instances: 12, Seed: 1}, b)
	s.Tick(ctx)
	clk.Sleep(ctx, time.Minute)
	s.Tick(ctx)
	mu.Lock()
	defer mu.Unlock()
	for _, n := range []string{"node_cpu_seconds_total", "node_memory_MemTotal_bytes", "node_memory_MemAvailable_bytes",
		"libvirt_domain_info_cpu_time_seconds_total", "libvirt_domain_info_memory_usage_bytes", "libvirt_domain_openstack_info",
		"ceilometer_cpu", "ceilometer_memory_usage", "node_disk_io_time_seconds_total"} {
		require.Positive(t, names[n], n)
	}
	require.Equal(t, 2*12, names["libvirt_domain_info_cpu_time_seconds_total"])
}

func TestMigrateAndExecutePlan(t *testing.T) {
	s, clk := newSim(t, Config{Hosts: 10, Instances: 60, Seed: 5, MigrationMBps: 100}, nil)
	c := s.Snapshot()
	in := c.Instances[0]
	var dest string
	for _, h := range c.Hosts {
		if h.Name != in.Host {
			dest = h.Name
			break
		}
	}
	wait, err := s.MigrationTime(in.UUID)
	require.NoError(t, err)
	require.Equal(t, 2*time.Second+time.Duration(float64(in.Flavor.MemoryMB)/100*float64(time.Second)), wait)
	before := clk.Now()
	require.NoError(t, s.Migrate(context.Background(), in.UUID, dest))
	require.Equal(t, wait, clk.Now().Sub(before), "a migration takes time proportional to memory")
	require.Equal(t, dest, instance(s.Snapshot(), in.UUID).Host)
	err = s.Migrate(context.Background(), in.UUID, dest)
	require.ErrorIs(t, err, ErrRejected)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.Error(t, s.Migrate(ctx, in.UUID, in.Host))
	require.Equal(t, dest, instance(s.Snapshot(), in.UUID).Host, "a cancelled migration leaves the instance")

	// Plan a consolidation on the snapshot and execute it end to end.
	e, err := decision.New(decision.Config{}, nil)
	require.NoError(t, err)
	snap := s.Snapshot()
	p, err := e.Plan(context.Background(), decision.Request{Goal: "saving_energy", Model: snap, Seed: 1})
	require.NoError(t, err)
	require.NotEmpty(t, p.Moves)
	for _, a := range p.Actions {
		require.NoError(t, s.Execute(context.Background(), a), a.Description)
	}
	after := s.Snapshot()
	want, err := model.ApplyMoves(snap, p.Moves)
	require.NoError(t, err)
	for _, in := range want.Instances {
		require.Equal(t, in.Host, instance(after, in.UUID).Host)
	}
	require.Empty(t, model.CheckPlacement(after))
	off := 0
	for _, h := range after.Hosts {
		if h.EffectivePower() == model.PowerOff {
			off++
		}
	}
	require.Equal(t, int(indicator(p, "powered_off_nodes_count")), off)
	require.ErrorIs(t, s.SetPowerState(after.Instances[0].Host, false), ErrRejected)
}

func TestRejectsNoRoom(t *testing.T) {
	s, _ := newSim(t, Config{Hosts: 2, Instances: 2, Seed: 1}, nil)
	c := s.Snapshot()
	require.NoError(t, s.SetHostState(c.Hosts[1].Name, model.HostDisabled, "test"))
	for _, in := range c.Instances {
		if in.Host == c.Hosts[0].Name {
			err := s.Migrate(context.Background(), in.UUID, c.Hosts[1].Name)
			require.ErrorIs(t, err, ErrRejected)
			require.ErrorContains(t, err, "disabled")
		}
	}
}

func instance(c *model.Cluster, uuid string) model.Instance {
	for _, in := range c.Instances {
		if in.UUID == uuid {
			return in
		}
	}
	panic(uuid)
}

func indicator(p *decision.Plan, name string) float64 {
	for _, i := range p.EfficacyIndicators {
		if i.Name == name {
			return i.Value
		}
	}
	return -1
}
