// Package action defines the actions a plan is made of, with Watcher's
// action types and input_parameters shapes so that the Watcher-compatible API
// can expose them unchanged and an applier can execute them.
//
// Watcher types: migrate, change_nova_service_state, change_node_power_state,
// nop and sleep. Ballast adds ceph_upmap and ceph_reweight (storage
// balancing), change_host_state (hosts managed without Nova) and sim_migrate
// (a migration inside the simulated cluster, same parameters as migrate).
//
// This package describes actions; it never executes them.
package action

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
)

// Type is an action type name.
type Type string

// Action types.
const (
	Migrate                Type = "migrate"
	ChangeNovaServiceState Type = "change_nova_service_state"
	ChangeNodePowerState   Type = "change_node_power_state"
	ChangeHostState        Type = "change_host_state"
	Nop                    Type = "nop"
	Sleep                  Type = "sleep"
	CephUpmap              Type = "ceph_upmap"
	CephReweight           Type = "ceph_reweight"
	SimMigrate             Type = "sim_migrate"
)

// Types lists every action type, for validation messages and the API.
var Types = []Type{Migrate, ChangeNovaServiceState, ChangeNodePowerState, ChangeHostState, Nop, Sleep, CephUpmap, CephReweight, SimMigrate}

// Description is the action-description text Watcher shows per type.
func (t Type) Description() string {
	switch t {
	case Migrate:
		return "Moving a VM instance from source_node to destination_node"
	case SimMigrate:
		return "Moving a simulated VM instance from source_node to destination_node"
	case ChangeNovaServiceState:
		return "Disables or enables the nova-compute service. A disabled nova-compute service can not be selected by the nova scheduler for future deployment of server."
	case ChangeNodePowerState:
		return "Compute node power on/off"
	case ChangeHostState:
		return "Sets a hypervisor host enabled, disabled or in maintenance"
	case Nop:
		return "Logging a NOP message"
	case Sleep:
		return "Wait for a given interval in seconds."
	case CephUpmap:
		return "Sets the pg-upmap-items exceptions of a placement group"
	case CephReweight:
		return "Sets the override weight of a Ceph OSD"
	}
	return string(t)
}

// Action is one step of a plan.
type Action struct {
	// ID is a UUID, stable for a given plan.
	ID   string `json:"uuid"`
	Type Type   `json:"action_type"`
	// Description is the human summary of this action.
	Description string `json:"description"`
	// InputParameters are the type's parameters, Watcher's shapes.
	InputParameters map[string]any `json:"input_parameters"`
	// Parents are the IDs of the actions that must finish first.
	Parents []string `json:"parents"`
	// EstimatedStartSeconds and EstimatedDurationSeconds place the action
	// on the planner's estimated schedule.
	EstimatedStartSeconds    float64 `json:"estimated_start_s"`
	EstimatedDurationSeconds float64 `json:"estimated_duration_s"`
}

// Param returns a string input parameter, or "".
func (a *Action) Param(name string) string {
	s, _ := a.InputParameters[name].(string)
	return s
}

// Number returns a numeric input parameter, whether it was built in
// process (int, float64) or decoded from JSON (float64, json.Number).
func (a *Action) Number(name string) (float64, bool) {
	return toFloat(a.InputParameters[name])
}

// Hosts returns the hosts an action occupies, for per-host concurrency:
// source and destination of a migration, the host of a state change.
func (a *Action) Hosts() []string {
	var out []string
	switch a.Type {
	case Migrate, SimMigrate:
		out = append(out, a.Param("source_node"))
		if d := a.Param("destination_node"); d != "" {
			out = append(out, d)
		}
	case ChangeNovaServiceState, ChangeNodePowerState, ChangeHostState:
		out = append(out, a.Param("resource_name"))
	}
	return slices.DeleteFunc(out, func(s string) bool { return s == "" })
}

// MigrateParams are a migration's parameters.
type MigrateParams struct {
	// Live selects live migration; cold otherwise.
	Live         bool
	Source       string
	Destination  string
	InstanceID   string
	InstanceName string
}

// NewMigrate builds a migrate action (or sim_migrate when sim is true).
func NewMigrate(p MigrateParams, sim bool) Action {
	t := Migrate
	if sim {
		t = SimMigrate
	}
	kind := "cold"
	if p.Live {
		kind = "live"
	}
	params := map[string]any{
		"migration_type": kind,
		"source_node":    p.Source,
		"resource_id":    p.InstanceID,
		"resource_name":  p.InstanceName,
	}
	if p.Destination != "" {
		params["destination_node"] = p.Destination
	}
	return Action{Type: t, InputParameters: params,
		Description: fmt.Sprintf("%s-migrate %s from %s to %s", kind, nameOr(p.InstanceName, p.InstanceID), p.Source, orScheduler(p.Destination))}
}

func nameOr(name, id string) string {
	if name != "" {
		return name
	}
	return id
}

func orScheduler(dst string) string {
	if dst == "" {
		return "a host the scheduler picks"
	}
	return dst
}

// NewServiceState builds change_nova_service_state: enabled or disabled.
func NewServiceState(hostID, host string, enabled bool, reason string) Action {
	state := "disabled"
	if enabled {
		state = "enabled"
	}
	params := map[string]any{"state": state, "resource_id": nameOr(hostID, host), "resource_name": host}
	if !enabled && reason != "" {
		params["disabled_reason"] = reason
	}
	return Action{Type: ChangeNovaServiceState, InputParameters: params,
		Description: fmt.Sprintf("set nova-compute on %s %s", host, state)}
}

// NewPowerState builds change_node_power_state: on or off.
func NewPowerState(hostID, host string, on bool) Action {
	state := "off"
	if on {
		state = "on"
	}
	return Action{Type: ChangeNodePowerState,
		InputParameters: map[string]any{"state": state, "resource_id": nameOr(hostID, host), "resource_name": host},
		Description:     fmt.Sprintf("power %s %s", state, host)}
}

// NewHostState builds change_host_state: enabled, disabled or maintenance.
func NewHostState(hostID, host, state, reason string) Action {
	params := map[string]any{"state": state, "resource_id": nameOr(hostID, host), "resource_name": host}
	if reason != "" {
		params["reason"] = reason
	}
	return Action{Type: ChangeHostState, InputParameters: params, Description: fmt.Sprintf("set %s %s", host, state)}
}

// NewNop builds a nop carrying a message.
func NewNop(message string) Action {
	return Action{Type: Nop, InputParameters: map[string]any{"message": message}, Description: "nop: " + message}
}

// NewSleep builds a sleep of the given seconds.
func NewSleep(seconds float64) Action {
	return Action{Type: Sleep, InputParameters: map[string]any{"duration": seconds},
		Description: fmt.Sprintf("sleep %gs", seconds)}
}

// UpmapPair is one pg-upmap-items replacement.
type UpmapPair struct {
	From int `json:"from"`
	To   int `json:"to"`
}

// NewUpmap builds ceph_upmap: set the PG's pg-upmap-items to mappings
// (an empty list removes them); previous records the items it replaces so an
// applier can revert.
func NewUpmap(pgid string, mappings, previous []UpmapPair) Action {
	if mappings == nil {
		mappings = []UpmapPair{}
	}
	if previous == nil {
		previous = []UpmapPair{}
	}
	return Action{Type: CephUpmap,
		InputParameters: map[string]any{"resource_id": pgid, "pgid": pgid, "mappings": mappings, "previous": previous},
		Description:     fmt.Sprintf("ceph osd pg-upmap-items %s%s", pgid, pairs(mappings))}
}

func pairs(m []UpmapPair) string {
	s := ""
	for _, p := range m {
		s += fmt.Sprintf(" %d %d", p.From, p.To)
	}
	if s == "" {
		return " (remove)"
	}
	return s
}

// NewReweight builds ceph_reweight for osd.<id>.
func NewReweight(osd int, weight, previous float64) Action {
	return Action{Type: CephReweight,
		InputParameters: map[string]any{"resource_id": fmt.Sprintf("osd.%d", osd), "osd_id": osd, "weight": weight, "previous_weight": previous},
		Description:     fmt.Sprintf("ceph osd reweight %d %.4f", osd, weight)}
}

// Validate checks an action's type and the shape of its input parameters,
// naming the bad field; the actuator strategy uses it on user input.
func Validate(a *Action) error {
	p := a.InputParameters
	str := func(name string, required bool, allowed ...string) error {
		v, ok := p[name]
		if !ok {
			if required {
				return fmt.Errorf("%s: input_parameters.%s is required", a.Type, name)
			}
			return nil
		}
		s, ok := v.(string)
		if !ok || s == "" {
			return fmt.Errorf("%s: input_parameters.%s must be a non-empty string", a.Type, name)
		}
		if len(allowed) > 0 && !slices.Contains(allowed, s) {
			return fmt.Errorf("%s: input_parameters.%s %q is not one of %v", a.Type, name, s, allowed)
		}
		return nil
	}
	num := func(name string) (float64, error) {
		v, ok := p[name]
		if !ok {
			return 0, fmt.Errorf("%s: input_parameters.%s is required", a.Type, name)
		}
		f, ok := toFloat(v)
		if !ok || math.IsNaN(f) || math.IsInf(f, 0) {
			return 0, fmt.Errorf("%s: input_parameters.%s must be a number", a.Type, name)
		}
		return f, nil
	}
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	switch a.Type {
	case Migrate, SimMigrate:
		add(str("migration_type", true, "live", "cold"))
		add(str("source_node", true))
		add(str("destination_node", false))
		add(str("resource_id", true))
	case ChangeNovaServiceState:
		add(str("state", true, "enabled", "disabled"))
		add(str("resource_name", true))
	case ChangeNodePowerState:
		add(str("state", true, "on", "off"))
		add(str("resource_name", true))
	case ChangeHostState:
		add(str("state", true, "enabled", "disabled", "maintenance"))
		add(str("resource_name", true))
	case Nop:
		add(str("message", false))
	case Sleep:
		d, err := num("duration")
		add(err)
		if err == nil && d < 0 {
			add(fmt.Errorf("sleep: input_parameters.duration %v must not be negative", d))
		}
	case CephUpmap:
		add(str("pgid", true))
		if _, ok := p["mappings"]; !ok {
			add(fmt.Errorf("ceph_upmap: input_parameters.mappings is required"))
		} else if _, err := DecodeUpmap(p["mappings"]); err != nil {
			add(fmt.Errorf("ceph_upmap: input_parameters.mappings: %w", err))
		}
	case CephReweight:
		id, err := num("osd_id")
		add(err)
		if err == nil && (id < 0 || id != math.Trunc(id)) {
			add(fmt.Errorf("ceph_reweight: input_parameters.osd_id %v must be a non-negative integer", id))
		}
		w, err := num("weight")
		add(err)
		if err == nil && (w < 0 || w > 1) {
			add(fmt.Errorf("ceph_reweight: input_parameters.weight %v must be within [0, 1]", w))
		}
	default:
		return fmt.Errorf("action_type %q is not one of %v", a.Type, Types)
	}
	if len(errs) > 0 {
		return errs[0]
	}
	return nil
}

// DecodeUpmap reads a mappings parameter ([]UpmapPair or its JSON form).
func DecodeUpmap(v any) ([]UpmapPair, error) {
	if m, ok := v.([]UpmapPair); ok {
		return m, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var out []UpmapPair
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("want a list of {\"from\": osd, \"to\": osd}: %w", err)
	}
	for i, m := range out {
		if m.From < 0 || m.To < 0 || m.From == m.To {
			return nil, fmt.Errorf("item %d: from %d and to %d must be distinct non-negative OSD ids", i, m.From, m.To)
		}
	}
	return out, nil
}

func toFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case float32:
		return float64(x), true
	case int:
		return float64(x), true
	case int64:
		return float64(x), true
	case json.Number:
		f, err := x.Float64()
		return f, err == nil
	}
	return 0, false
}
