// Package planner turns a strategy's unordered actions into an action plan:
// a DAG whose edges are only the orderings that matter, plus concurrency
// limits and an estimated schedule.
//
// Orderings (per host): a host is powered on before it is enabled, and
// enabled before instances migrate onto it; a host's service is disabled
// before instances migrate off it (so the scheduler places nothing new
// there); a host is put into maintenance or powered off only after every
// migration off or onto it. Upmap changes of one placement group run in
// order; nop and sleep actions keep their listed order. Independent
// migrations get no edge between them: unlike Watcher's weight planner there
// are no barriers, and parallelism is bounded instead by per-host and global
// concurrency limits that the applier enforces and the planner uses to
// estimate the plan's duration (list scheduling, longest path first).
//
// The planner orders; it never executes.
package planner

import (
	"cmp"
	"container/heap"
	"errors"
	"fmt"
	"slices"

	"github.com/google/uuid"

	"github.com/ballast-cloud/ballast/decision/action"
)

// Options tune the planner. Zero values get the defaults noted.
type Options struct {
	// PerHost bounds the migrations running at once on one host, as source
	// or destination (default 2).
	PerHost int
	// Global bounds the actions running at once in the plan (default 16).
	Global int
	// Namespace seeds the action UUIDs (uuid v5 of the namespace and the
	// action's position), so a plan's IDs are stable.
	Namespace uuid.UUID
	// DefaultSeconds estimates an action whose EstimatedDurationSeconds is
	// not set (default: migrate 60, upmap 30, state changes 5, power 120,
	// sleep its duration, others 1).
	DefaultSeconds func(*action.Action) float64
}

// Limits are the concurrency limits the applier must enforce.
type Limits struct {
	PerHost int `json:"per_host"`
	Global  int `json:"global"`
}

// Plan is an ordered action plan.
type Plan struct {
	// Actions are in a topological order, with IDs, parents and estimates.
	Actions []action.Action `json:"actions"`
	Limits  Limits          `json:"concurrency"`
	// EstimatedSeconds is the estimated makespan under the limits.
	EstimatedSeconds float64 `json:"estimated_duration_s"`
	// SerialSeconds is the sum of action durations (one at a time).
	SerialSeconds float64 `json:"serial_duration_s"`
	// Depth is the number of actions on the longest dependency chain.
	Depth int `json:"depth"`
}

func defaultSeconds(a *action.Action) float64 {
	switch a.Type {
	case action.Migrate, action.SimMigrate:
		return 60
	case action.CephUpmap:
		return 30
	case action.CephReweight:
		return 30
	case action.ChangeNovaServiceState, action.ChangeHostState:
		return 5
	case action.ChangeNodePowerState:
		return 120
	case action.Sleep:
		if d, ok := a.Number("duration"); ok && d >= 0 {
			return d
		}
	}
	return 1
}

// Build orders actions into a plan. The input slice is not modified.
func Build(actions []action.Action, o Options) (*Plan, error) {
	if o.PerHost <= 0 {
		o.PerHost = 2
	}
	if o.Global <= 0 {
		o.Global = 16
	}
	if o.DefaultSeconds == nil {
		o.DefaultSeconds = defaultSeconds
	}
	if o.Namespace == uuid.Nil {
		o.Namespace = uuid.NameSpaceOID
	}
	n := len(actions)
	acts := make([]action.Action, n)
	for i, a := range actions {
		a.InputParameters = cloneParams(a.InputParameters)
		a.Parents = nil
		if a.EstimatedDurationSeconds <= 0 {
			a.EstimatedDurationSeconds = o.DefaultSeconds(&a)
		}
		if a.Description == "" {
			a.Description = a.Type.Description()
		}
		a.ID = uuid.NewSHA1(o.Namespace, fmt.Appendf(nil, "action-%d", i)).String()
		acts[i] = a
	}
	parents := make([][]int, n)
	edge := func(from, to int) {
		if from != to && !slices.Contains(parents[to], from) {
			parents[to] = append(parents[to], from)
		}
	}
	// Index the host-level actions and migrations per host.
	type hostActs struct {
		disable, enable, powerOn, after []int
		out, in                         []int
	}
	hosts := map[string]*hostActs{}
	get := func(h string) *hostActs {
		x := hosts[h]
		if x == nil {
			x = &hostActs{}
			hosts[h] = x
		}
		return x
	}
	var sequence []int // nop and sleep
	pgLast := map[string]int{}
	for i := range acts {
		a := &acts[i]
		switch a.Type {
		case action.Migrate, action.SimMigrate:
			get(a.Param("source_node")).out = append(get(a.Param("source_node")).out, i)
			if d := a.Param("destination_node"); d != "" {
				get(d).in = append(get(d).in, i)
			}
		case action.ChangeNovaServiceState, action.ChangeHostState:
			h := get(a.Param("resource_name"))
			switch a.Param("state") {
			case "enabled":
				h.enable = append(h.enable, i)
			case "disabled":
				h.disable = append(h.disable, i)
			case "maintenance":
				h.after = append(h.after, i)
			}
		case action.ChangeNodePowerState:
			h := get(a.Param("resource_name"))
			if a.Param("state") == "on" {
				h.powerOn = append(h.powerOn, i)
			} else {
				h.after = append(h.after, i)
			}
		case action.CephUpmap:
			pg := a.Param("pgid")
			if last, ok := pgLast[pg]; ok {
				edge(last, i)
			}
			pgLast[pg] = i
		case action.Nop, action.Sleep:
			if len(sequence) > 0 {
				edge(sequence[len(sequence)-1], i)
			}
			sequence = append(sequence, i)
		}
	}
	for _, h := range hosts {
		for _, p := range h.powerOn {
			for _, e := range h.enable {
				edge(p, e)
			}
			for _, m := range h.in {
				edge(p, m)
			}
			for _, d := range h.disable {
				edge(p, d)
			}
		}
		for _, e := range h.enable {
			for _, m := range h.in {
				edge(e, m)
			}
		}
		for _, d := range h.disable {
			for _, m := range h.out {
				edge(d, m)
			}
		}
		for _, a := range h.after {
			for _, m := range h.out {
				edge(m, a)
			}
			for _, m := range h.in {
				edge(m, a)
			}
			for _, d := range h.disable {
				edge(d, a)
			}
		}
	}
	order, err := topoSort(parents)
	if err != nil {
		return nil, err
	}
	plan := &Plan{Limits: Limits{PerHost: o.PerHost, Global: o.Global}}
	start, makespan := schedule(acts, parents, order, o)
	depth := make([]int, n)
	for _, i := range order {
		depth[i] = 1
		for _, p := range parents[i] {
			depth[i] = max(depth[i], depth[p]+1)
		}
		plan.Depth = max(plan.Depth, depth[i])
	}
	for _, i := range order {
		a := acts[i]
		a.Parents = make([]string, 0, len(parents[i]))
		slices.Sort(parents[i])
		for _, p := range parents[i] {
			a.Parents = append(a.Parents, acts[p].ID)
		}
		a.EstimatedStartSeconds = start[i]
		plan.SerialSeconds += a.EstimatedDurationSeconds
		plan.Actions = append(plan.Actions, a)
	}
	plan.EstimatedSeconds = makespan
	return plan, nil
}

func cloneParams(p map[string]any) map[string]any {
	out := make(map[string]any, len(p))
	for k, v := range p {
		out[k] = v
	}
	return out
}

// topoSort returns the actions in dependency order, stable by index.
func topoSort(parents [][]int) ([]int, error) {
	n := len(parents)
	indeg := make([]int, n)
	children := make([][]int, n)
	for i, ps := range parents {
		indeg[i] = len(ps)
		for _, p := range ps {
			children[p] = append(children[p], i)
		}
	}
	queue := &intHeap{}
	var order []int
	for i := 0; i < n; i++ {
		if indeg[i] == 0 {
			heap.Push(queue, i)
		}
	}
	for queue.Len() > 0 {
		i := heap.Pop(queue).(int)
		order = append(order, i)
		for _, c := range children[i] {
			indeg[c]--
			if indeg[c] == 0 {
				heap.Push(queue, c)
			}
		}
	}
	if len(order) != n {
		return nil, errors.New("planner: the actions' orderings form a cycle")
	}
	return order, nil
}

// schedule simulates the plan under the concurrency limits: whenever slots
// free up, ready actions start by longest remaining path first. It returns
// each action's start and the makespan.
func schedule(acts []action.Action, parents [][]int, order []int, o Options) ([]float64, float64) {
	n := len(acts)
	children := make([][]int, n)
	waiting := make([]int, n)
	for i, ps := range parents {
		waiting[i] = len(ps)
		for _, p := range ps {
			children[p] = append(children[p], i)
		}
	}
	// Bottom level: the longest duration path from an action to the end.
	bottom := make([]float64, n)
	for k := len(order) - 1; k >= 0; k-- {
		i := order[k]
		var m float64
		for _, c := range children[i] {
			m = max(m, bottom[c])
		}
		bottom[i] = m + acts[i].EstimatedDurationSeconds
	}
	// Hosts as small integers: the scan below runs once per event.
	hostID := map[string]int{}
	hostsOf := make([][]int, n)
	for i := range acts {
		if acts[i].Type == action.Migrate || acts[i].Type == action.SimMigrate {
			for _, h := range acts[i].Hosts() {
				id, ok := hostID[h]
				if !ok {
					id = len(hostID)
					hostID[h] = id
				}
				hostsOf[i] = append(hostsOf[i], id)
			}
		}
	}
	start := make([]float64, n)
	end := make([]float64, n)
	var ready []int
	for i := 0; i < n; i++ {
		if waiting[i] == 0 {
			ready = append(ready, i)
		}
	}
	busy := make([]int, len(hostID))
	var running []int
	now := 0.0
	done := 0
	byPriority := func(a, b int) int {
		if c := cmp.Compare(bottom[b], bottom[a]); c != 0 {
			return c
		}
		return cmp.Compare(a, b)
	}
	slices.SortFunc(ready, byPriority)
	insert := func(i int) {
		k, _ := slices.BinarySearchFunc(ready, i, byPriority)
		ready = slices.Insert(ready, k, i)
	}
	for done < n {
		kept := ready[:0]
		for k, i := range ready {
			if len(running) >= o.Global {
				kept = append(kept, ready[k:]...)
				break
			}
			fits := true
			for _, h := range hostsOf[i] {
				if busy[h] >= o.PerHost {
					fits = false
				}
			}
			if !fits {
				kept = append(kept, i)
				continue
			}
			start[i] = now
			end[i] = now + acts[i].EstimatedDurationSeconds
			for _, h := range hostsOf[i] {
				busy[h]++
			}
			running = append(running, i)
		}
		ready = kept
		if len(running) == 0 {
			break // cannot happen with limits ≥ 1; guards a malformed input
		}
		// Advance to the next completion.
		next := running[0]
		for _, i := range running[1:] {
			if end[i] < end[next] || (end[i] == end[next] && i < next) {
				next = i
			}
		}
		now = end[next]
		still := running[:0]
		for _, i := range running {
			if end[i] > now {
				still = append(still, i)
				continue
			}
			done++
			for _, h := range hostsOf[i] {
				busy[h]--
			}
			for _, c := range children[i] {
				waiting[c]--
				if waiting[c] == 0 {
					insert(c)
				}
			}
		}
		running = still
	}
	return start, now
}

type intHeap []int

func (h intHeap) Len() int           { return len(h) }
func (h intHeap) Less(i, j int) bool { return h[i] < h[j] }
func (h intHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *intHeap) Push(x any)        { *h = append(*h, x.(int)) }
func (h *intHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
