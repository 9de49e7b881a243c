package sim

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"github.com/ballast-cloud/ballast/decision/model"
)

// stateVersion is the version of the state file's format.
const stateVersion = 1

// savedState is what the simulator keeps across restarts in
// Config.StateFile: everything plans change (placement, host and power
// states, Ceph upmaps and reweights). Counters and load are not kept: they
// restart, as exporters' counters do after a reboot.
type savedState struct {
	Version int `json:"version"`
	// Cluster identifies the generated cluster the state applies to; a
	// state for another configuration is not applied.
	Cluster   string                       `json:"cluster"`
	Placement map[string]string            `json:"placement"` // instance UUID → host
	Hosts     map[string]savedHost         `json:"hosts"`
	Upmaps    map[string][]model.UpmapItem `json:"upmaps,omitempty"`    // PG → items, PGs with items only
	Reweights map[string]float64           `json:"reweights,omitempty"` // "osd.N" → override weight
}

type savedHost struct {
	State  model.HostState  `json:"state"`
	Reason string           `json:"reason,omitempty"`
	Power  model.PowerState `json:"power,omitempty"`
}

// fingerprint names the generated cluster: the settings that shape it.
func (c Config) fingerprint() string {
	return fmt.Sprintf("hosts=%d instances=%d seed=%d zones=%d ceph_hosts=%d", c.Hosts, c.Instances, c.Seed, c.Zones, c.CephHosts)
}

// stateLocked captures the changeable state; s.mu is held.
func (s *Sim) stateLocked() *savedState {
	c := s.cluster
	st := &savedState{Version: stateVersion, Cluster: s.cfg.fingerprint(),
		Placement: make(map[string]string, len(c.Instances)), Hosts: make(map[string]savedHost, len(c.Hosts))}
	for i := range c.Instances {
		st.Placement[c.Instances[i].UUID] = c.Instances[i].Host
	}
	for i := range c.Hosts {
		h := &c.Hosts[i]
		st.Hosts[h.Name] = savedHost{State: h.State, Reason: h.DisabledReason, Power: h.PowerState}
	}
	if c.Ceph != nil {
		for i := range c.Ceph.PGs {
			if pg := &c.Ceph.PGs[i]; len(pg.UpmapItems) > 0 {
				if st.Upmaps == nil {
					st.Upmaps = map[string][]model.UpmapItem{}
				}
				st.Upmaps[pg.ID] = slices.Clone(pg.UpmapItems)
			}
		}
		for i := range c.Ceph.OSDs {
			if st.Reweights == nil {
				st.Reweights = map[string]float64{}
			}
			st.Reweights[fmt.Sprintf("osd.%d", c.Ceph.OSDs[i].ID)] = c.Ceph.OSDs[i].Reweight
		}
	}
	return st
}

// saveLocked writes the state file, if one is configured, atomically
// (a temporary file renamed over it); s.mu is held. A failure is logged:
// the change has happened on the simulated cluster either way.
func (s *Sim) saveLocked() {
	if s.cfg.StateFile == "" {
		return
	}
	if err := writeState(s.cfg.StateFile, s.stateLocked()); err != nil {
		s.logger.Error("Saving the simulated cluster's state failed; a restart will lose the latest changes", "file", s.cfg.StateFile, "err", err)
	}
}

func writeState(path string, st *savedState) error {
	b, err := json.MarshalIndent(st, "", " ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	_, err = tmp.Write(append(b, '\n'))
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		_ = os.Remove(tmp.Name())
	}
	return err
}

// loadState applies the state file, if one is configured and exists, to the
// generated cluster. A file for another cluster configuration is ignored
// (logged; the next change overwrites it); an unreadable or invalid file is
// an error naming it, so that a restart never silently drops the state.
func (s *Sim) loadState() error {
	path := s.cfg.StateFile
	if path == "" {
		return nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("sim: state_file: %w", err)
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("sim: state_file %s: %s (remove the file to start from the generated cluster)", path, fmt.Sprintf(format, args...))
	}
	var st savedState
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&st); err != nil {
		return bad("%v", err)
	}
	if st.Version != stateVersion {
		return bad("version %d, want %d", st.Version, stateVersion)
	}
	if want := s.cfg.fingerprint(); st.Cluster != want {
		s.logger.Warn("The simulator's state file is for another cluster configuration; starting from the generated cluster",
			"file", path, "file_cluster", st.Cluster, "cluster", want)
		return nil
	}
	c := s.cluster
	for name, h := range st.Hosts {
		i, ok := s.hostIdx[name]
		if !ok {
			return bad("hosts: unknown host %q", name)
		}
		switch h.State {
		case model.HostEnabled, model.HostDisabled, model.HostMaintenance:
		default:
			return bad("hosts[%q].state: %q is not enabled, disabled or maintenance", name, h.State)
		}
		switch h.Power {
		case "", model.PowerOn, model.PowerOff:
		default:
			return bad("hosts[%q].power: %q is not on or off", name, h.Power)
		}
		c.Hosts[i].State, c.Hosts[i].DisabledReason, c.Hosts[i].PowerState = h.State, h.Reason, h.Power
	}
	for uuid, host := range st.Placement {
		i, ok := s.instIdx[uuid]
		if !ok {
			return bad("placement: unknown instance %q", uuid)
		}
		if _, ok := s.hostIdx[host]; !ok {
			return bad("placement[%q]: unknown host %q", uuid, host)
		}
		c.Instances[i].Host = host
	}
	if c.Ceph != nil {
		for i := range c.Ceph.PGs {
			c.Ceph.PGs[i].UpmapItems = slices.Clone(st.Upmaps[c.Ceph.PGs[i].ID])
		}
		for i := range c.Ceph.OSDs {
			if w, ok := st.Reweights[fmt.Sprintf("osd.%d", c.Ceph.OSDs[i].ID)]; ok {
				if w < 0 || w > 1 {
					return bad("reweights[osd.%d]: %v is outside [0, 1]", c.Ceph.OSDs[i].ID, w)
				}
				c.Ceph.OSDs[i].Reweight = w
			}
		}
	}
	s.changed = true
	s.logger.Info("Restored the simulated cluster's state", "file", path, "instances", len(st.Placement), "hosts", len(st.Hosts))
	return nil
}
