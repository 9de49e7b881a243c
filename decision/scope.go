package decision

import (
	"encoding/json"
	"fmt"
	"slices"

	"github.com/ballast-cloud/ballast/decision/model"
)

// Scope narrows a plan to part of the cluster, as a Watcher audit scope
// does. Empty include lists mean everything; excluded instances stay where
// they are (they still use capacity); hosts out of scope and their
// instances are left out of the plan altogether.
type Scope struct {
	// Hosts, AvailabilityZones and Aggregates include hosts matching any.
	Hosts             []string `json:"hosts,omitempty"`
	AvailabilityZones []string `json:"availability_zones,omitempty"`
	Aggregates        []string `json:"aggregates,omitempty"`
	// ExcludeHosts and ExcludeAggregates remove hosts.
	ExcludeHosts      []string `json:"exclude_hosts,omitempty"`
	ExcludeAggregates []string `json:"exclude_aggregates,omitempty"`
	// ExcludeInstances and ExcludeProjects pin instances.
	ExcludeInstances []string `json:"exclude_instances,omitempty"`
	ExcludeProjects  []string `json:"exclude_projects,omitempty"`
}

// Empty reports whether the scope selects the whole cluster.
func (s Scope) Empty() bool {
	return len(s.Hosts)+len(s.AvailabilityZones)+len(s.Aggregates)+len(s.ExcludeHosts)+
		len(s.ExcludeAggregates)+len(s.ExcludeInstances)+len(s.ExcludeProjects) == 0
}

// ParseWatcherScope reads a Watcher audit scope, e.g.
//
//	[{"compute": [{"host_aggregates": [{"name": "agg1"}]},
//	              {"availability_zones": [{"name": "nova"}]},
//	              {"exclude": [{"instances": [{"uuid": "…"}]},
//	                           {"compute_nodes": [{"name": "cn1"}]},
//	                           {"projects": [{"uuid": "…"}]}]}]}]
//
// Aggregates may be named by "name" or "id" (matched against the model's
// aggregate names). Storage and baremetal sections are accepted and ignored.
func ParseWatcherScope(raw []byte) (Scope, error) {
	var s Scope
	if len(raw) == 0 || string(raw) == "null" {
		return s, nil
	}
	var sections []map[string]json.RawMessage
	if err := json.Unmarshal(raw, &sections); err != nil {
		return s, fmt.Errorf("scope: want a list of {\"compute\": [...]} objects: %w", err)
	}
	type ref struct {
		Name string          `json:"name"`
		UUID string          `json:"uuid"`
		ID   json.RawMessage `json:"id"`
	}
	names := func(field string, rs []ref) ([]string, error) {
		var out []string
		for i, r := range rs {
			switch {
			case r.Name != "":
				out = append(out, r.Name)
			case r.UUID != "":
				out = append(out, r.UUID)
			case len(r.ID) > 0:
				var v any
				if err := json.Unmarshal(r.ID, &v); err != nil {
					return nil, fmt.Errorf("scope: %s[%d].id: %w", field, i, err)
				}
				out = append(out, fmt.Sprint(v))
			default:
				return nil, fmt.Errorf("scope: %s[%d]: needs a name, uuid or id", field, i)
			}
		}
		return out, nil
	}
	for _, sec := range sections {
		for kind, body := range sec {
			if kind != "compute" {
				continue
			}
			var items []map[string]json.RawMessage
			if err := json.Unmarshal(body, &items); err != nil {
				return s, fmt.Errorf("scope: compute: want a list of objects: %w", err)
			}
			for _, item := range items {
				for key, val := range item {
					if key == "exclude" {
						var ex []map[string][]ref
						if err := json.Unmarshal(val, &ex); err != nil {
							return s, fmt.Errorf("scope: compute.exclude: %w", err)
						}
						for _, e := range ex {
							for ek, rs := range e {
								v, err := names("exclude."+ek, rs)
								if err != nil {
									return s, err
								}
								switch ek {
								case "instances":
									s.ExcludeInstances = append(s.ExcludeInstances, v...)
								case "compute_nodes":
									s.ExcludeHosts = append(s.ExcludeHosts, v...)
								case "host_aggregates":
									s.ExcludeAggregates = append(s.ExcludeAggregates, v...)
								case "projects":
									s.ExcludeProjects = append(s.ExcludeProjects, v...)
								case "instance_metadata":
								default:
									return s, fmt.Errorf("scope: compute.exclude.%s is not one of instances, compute_nodes, host_aggregates, projects", ek)
								}
							}
						}
						continue
					}
					var rs []ref
					if err := json.Unmarshal(val, &rs); err != nil {
						return s, fmt.Errorf("scope: compute.%s: %w", key, err)
					}
					v, err := names(key, rs)
					if err != nil {
						return s, err
					}
					switch key {
					case "host_aggregates":
						s.Aggregates = append(s.Aggregates, v...)
					case "availability_zones":
						s.AvailabilityZones = append(s.AvailabilityZones, v...)
					case "compute_nodes":
						s.Hosts = append(s.Hosts, v...)
					default:
						return s, fmt.Errorf("scope: compute.%s is not one of host_aggregates, availability_zones, compute_nodes, exclude", key)
					}
				}
			}
		}
	}
	return s, nil
}

// Apply returns the part of c the scope selects (c itself when the scope is
// empty; a copy otherwise).
func (s Scope) Apply(c *model.Cluster) (*model.Cluster, error) {
	if s.Empty() {
		return c, nil
	}
	set := func(l []string) map[string]bool {
		m := make(map[string]bool, len(l))
		for _, v := range l {
			m[v] = true
		}
		return m
	}
	incHosts, incZones, incAggs := set(s.Hosts), set(s.AvailabilityZones), set(s.Aggregates)
	exHosts, exAggs := set(s.ExcludeHosts), set(s.ExcludeAggregates)
	exInst, exProj := set(s.ExcludeInstances), set(s.ExcludeProjects)
	include := len(incHosts)+len(incZones)+len(incAggs) > 0
	out := *c
	out.Hosts = nil
	out.Instances = nil
	keep := map[string]bool{}
	for _, h := range c.Hosts {
		in := !include || incHosts[h.Name] || incZones[h.AvailabilityZone] ||
			slices.ContainsFunc(h.Aggregates, func(a string) bool { return incAggs[a] })
		if !in || exHosts[h.Name] || slices.ContainsFunc(h.Aggregates, func(a string) bool { return exAggs[a] }) {
			continue
		}
		keep[h.Name] = true
		out.Hosts = append(out.Hosts, h)
	}
	if len(out.Hosts) == 0 {
		return nil, fmt.Errorf("scope selects no host")
	}
	for _, in := range c.Instances {
		if !keep[in.Host] {
			continue
		}
		if exInst[in.UUID] || exProj[in.ProjectID] {
			in.Metadata.Excluded = true
		}
		out.Instances = append(out.Instances, in)
	}
	return out.Clone(), nil
}
