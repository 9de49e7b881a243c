package sim

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/ballast-cloud/ballast/decision/action"
	"github.com/ballast-cloud/ballast/decision/model"
)

// ErrRejected wraps the refusals a real cloud would give (no room, host
// disabled, instance busy): retrying does not help.
var ErrRejected = errors.New("rejected")

func rejected(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrRejected, fmt.Sprintf(format, args...))
}

// MigrationTime is how long migrating the instance takes: the setup time
// plus its memory over the migration bandwidth, divided by the speedup.
func (s *Sim) MigrationTime(uuid string) (time.Duration, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i, ok := s.instIdx[uuid]
	if !ok {
		return 0, rejected("instance %s does not exist", uuid)
	}
	return s.migrationTime(i), nil
}

func (s *Sim) migrationTime(i int) time.Duration {
	mem := float64(s.cluster.Instances[i].Flavor.MemoryMB)
	secs := (s.cfg.MigrationSetup.Seconds() + mem/s.cfg.MigrationMBps) / s.cfg.MigrationSpeedup
	return time.Duration(secs * float64(time.Second))
}

// Migrate moves an instance to dest, taking MigrationTime; while it runs
// the instance uses its allocation on both hosts, as Nova's migration
// allocations do. It fails without change if dest cannot take the
// instance, and rolls back if ctx ends first.
func (s *Sim) Migrate(ctx context.Context, uuid, dest string) error {
	s.mu.Lock()
	i, ok := s.instIdx[uuid]
	if !ok {
		s.mu.Unlock()
		return rejected("instance %s does not exist", uuid)
	}
	in := &s.cluster.Instances[i]
	d, ok := s.hostIdx[dest]
	if !ok {
		s.mu.Unlock()
		return rejected("host %s does not exist", dest)
	}
	if err := s.canReceive(i, d); err != nil {
		s.mu.Unlock()
		return err
	}
	if _, busy := s.inflight[i]; busy {
		s.mu.Unlock()
		return rejected("instance %s is already migrating", uuid)
	}
	switch in.State {
	case model.InstanceActive, model.InstancePaused, model.InstanceStopped, model.InstanceShutoff, model.InstanceSuspended:
	default:
		s.mu.Unlock()
		return rejected("instance %s is %s", uuid, in.State)
	}
	wait := s.migrationTime(i)
	s.inflight[i] = migration{to: d, until: s.cfg.Now().Add(wait)}
	s.mu.Unlock()

	err := s.cfg.Sleep(ctx, wait)

	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.inflight, i)
	if err != nil {
		return fmt.Errorf("migrate %s to %s: %w", uuid, dest, err)
	}
	// Counters restart on the destination, as libvirt's do.
	s.advance(s.cfg.Now(), s.cfg.Now().Sub(s.last).Seconds())
	v := &s.vms[i]
	v.cpuSeconds, v.readBytes, v.writeBytes, v.rxBytes, v.txBytes, v.delaySeconds = 0, 0, 0, 0, 0, 0
	in.Host = dest
	s.changed = true
	s.saveLocked()
	s.logger.Debug("Migrated", "instance", uuid, "to", dest, "took", wait)
	return nil
}

// canReceive checks that host d can take instance i now: it exists, is
// enabled and on, is not i's host, and its allocations (including
// migrations in flight towards it) leave room for i's flavor.
func (s *Sim) canReceive(i, d int) error {
	in := &s.cluster.Instances[i]
	h := &s.cluster.Hosts[d]
	if in.Host == h.Name {
		return rejected("instance %s is already on %s", in.UUID, h.Name)
	}
	if !h.Schedulable() {
		return rejected("host %s is %s and powered %s", h.Name, h.EffectiveState(), h.EffectivePower())
	}
	var vcpu, mem, disk float64
	add := func(x *model.Instance) {
		vcpu += float64(x.Flavor.VCPUs)
		mem += float64(x.Flavor.MemoryMB)
		disk += float64(x.Flavor.DiskGB)
	}
	for k := range s.cluster.Instances {
		if s.cluster.Instances[k].Host == h.Name {
			add(&s.cluster.Instances[k])
		}
	}
	for k, m := range s.inflight {
		if m.to == d {
			add(&s.cluster.Instances[k])
		}
	}
	add(in)
	lim := h.Allocatable()
	if vcpu > lim.VCPUs || mem > lim.MemoryMB || (h.Capacity.DiskGB > 0 && disk > lim.DiskGB) {
		return rejected("host %s has no room for %s (%d vCPU, %d MB)", h.Name, in.UUID, in.Flavor.VCPUs, in.Flavor.MemoryMB)
	}
	return nil
}

// SetHostState sets a host enabled, disabled or in maintenance.
func (s *Sim) SetHostState(host string, state model.HostState, reason string) error {
	switch state {
	case model.HostEnabled, model.HostDisabled, model.HostMaintenance:
	default:
		return rejected("state %q is not enabled, disabled or maintenance", state)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	h, ok := s.hostIdx[host]
	if !ok {
		return rejected("host %s does not exist", host)
	}
	s.cluster.Hosts[h].State = state
	s.cluster.Hosts[h].DisabledReason = reason
	if state == model.HostEnabled {
		s.cluster.Hosts[h].DisabledReason = ""
	}
	s.changed = true
	s.saveLocked()
	return nil
}

// SetPowerState powers a host on or off; a host running instances cannot be
// powered off.
func (s *Sim) SetPowerState(host string, on bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	h, ok := s.hostIdx[host]
	if !ok {
		return rejected("host %s does not exist", host)
	}
	if !on {
		for k, m := range s.inflight {
			if m.to == h || s.cluster.Instances[k].Host == host {
				return rejected("host %s has a migration in flight", host)
			}
		}
		if slices.ContainsFunc(s.cluster.Instances, func(in model.Instance) bool { return in.Host == host }) {
			return rejected("host %s still runs instances", host)
		}
		s.cluster.Hosts[h].PowerState = model.PowerOff
	} else {
		s.cluster.Hosts[h].PowerState = model.PowerOn
	}
	s.changed = true
	s.saveLocked()
	return nil
}

// Execute carries out one plan action on the simulated cluster: migrate
// and sim_migrate (to the given destination), service, host and power state
// changes, nop, sleep, and Ceph upmap and reweight changes.
func (s *Sim) Execute(ctx context.Context, a action.Action) error {
	if err := action.Validate(&a); err != nil {
		return rejected("%v", err)
	}
	switch a.Type {
	case action.Migrate, action.SimMigrate:
		dest := a.Param("destination_node")
		if dest == "" {
			var err error
			if dest, err = s.pickDestination(a.Param("resource_id")); err != nil {
				return err
			}
		}
		return s.Migrate(ctx, a.Param("resource_id"), dest)
	case action.ChangeNovaServiceState:
		state := model.HostDisabled
		if a.Param("state") == "enabled" {
			state = model.HostEnabled
		}
		return s.SetHostState(a.Param("resource_name"), state, a.Param("disabled_reason"))
	case action.ChangeHostState:
		return s.SetHostState(a.Param("resource_name"), model.HostState(a.Param("state")), a.Param("reason"))
	case action.ChangeNodePowerState:
		return s.SetPowerState(a.Param("resource_name"), a.Param("state") == "on")
	case action.Nop:
		s.logger.Info("Nop action", "message", a.Param("message"))
		return nil
	case action.Sleep:
		d, _ := a.Number("duration")
		return s.cfg.Sleep(ctx, time.Duration(d*float64(time.Second)))
	case action.CephUpmap:
		m, err := action.DecodeUpmap(a.InputParameters["mappings"])
		if err != nil {
			return rejected("%v", err)
		}
		return s.setUpmap(a.Param("pgid"), m)
	case action.CephReweight:
		id, _ := a.Number("osd_id")
		w, _ := a.Number("weight")
		return s.setReweight(int(id), w)
	}
	return rejected("action %s is not supported by the simulator", a.Type)
}

// pickDestination chooses, like a scheduler, the enabled host with the most
// free memory that can take the instance.
func (s *Sim) pickDestination(uuid string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i, ok := s.instIdx[uuid]
	if !ok {
		return "", rejected("instance %s does not exist", uuid)
	}
	best, bestFree := "", math.Inf(-1)
	for d := range s.cluster.Hosts {
		if s.canReceive(i, d) != nil {
			continue
		}
		h := &s.cluster.Hosts[d]
		free := h.Allocatable().MemoryMB
		for k := range s.cluster.Instances {
			if s.cluster.Instances[k].Host == h.Name {
				free -= float64(s.cluster.Instances[k].Flavor.MemoryMB)
			}
		}
		if free > bestFree {
			best, bestFree = h.Name, free
		}
	}
	if best == "" {
		return "", rejected("no host can take instance %s", uuid)
	}
	return best, nil
}

func (s *Sim) setUpmap(pgid string, m []action.UpmapPair) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cluster.Ceph == nil {
		return rejected("the simulated cluster has no Ceph")
	}
	for i := range s.cluster.Ceph.PGs {
		pg := &s.cluster.Ceph.PGs[i]
		if pg.ID != pgid {
			continue
		}
		items := make([]model.UpmapItem, 0, len(m))
		for _, p := range m {
			if !slices.Contains(pg.Raw, p.From) {
				return rejected("pg %s: osd.%d is not in its raw mapping", pgid, p.From)
			}
			items = append(items, model.UpmapItem{From: p.From, To: p.To})
		}
		pg.UpmapItems = items
		s.changed = true
		s.saveLocked()
		return nil
	}
	return rejected("pg %s does not exist", pgid)
}

func (s *Sim) setReweight(osd int, w float64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cluster.Ceph == nil {
		return rejected("the simulated cluster has no Ceph")
	}
	for i := range s.cluster.Ceph.OSDs {
		if s.cluster.Ceph.OSDs[i].ID == osd {
			s.cluster.Ceph.OSDs[i].Reweight = w
			s.changed = true
			s.saveLocked()
			return nil
		}
	}
	return rejected("osd.%d does not exist", osd)
}
