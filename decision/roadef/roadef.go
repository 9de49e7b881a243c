// Package roadef reads, checks and solves instances of the Google
// ROADEF/EURO Challenge 2012 machine-reassignment problem, the public
// benchmark for the decision engine's optimisation core.
//
// Parse reads an instance (model_*.txt), ParseAssignment an original
// assignment or a solution (one machine index per process), Evaluate is an
// exact checker (int64, the official checker's formula: load, balance,
// process-, service- and machine-move costs, feasibility including transient
// usage), and Solve maps the instance onto decision/optimize and runs it.
//
// Inputs are untrusted files: the parsers bound every count before
// allocating and never panic (they are fuzzed).
package roadef

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// Limits from the official checker, a little widened; a file beyond them is
// rejected before anything large is allocated.
const (
	MaxResources    = 20
	MaxMachines     = 5000
	MaxProcesses    = 100000
	MaxServices     = 100000
	MaxBalances     = 20
	maxDependencies = 100000
	maxValue        = 1<<31 - 1
)

// Resource is one resource kind.
type Resource struct {
	Transient  bool
	WeightLoad int64
}

// Machine is one machine.
type Machine struct {
	Neighborhood int
	Location     int
	Capacity     []int64
	Safety       []int64
}

// Service is one service.
type Service struct {
	SpreadMin int
	DependsOn []int
}

// Process is one process.
type Process struct {
	Service     int
	Requirement []int64
	MoveCost    int64
}

// Balance is one balance objective.
type Balance struct {
	R1, R2 int
	Target int64
	Weight int64
}

// Instance is a parsed model file.
type Instance struct {
	Resources []Resource
	Machines  []Machine
	// MachineMoveCost is the |M|×|M| row-major matrix.
	MachineMoveCost   []int32
	Services          []Service
	Processes         []Process
	Balances          []Balance
	WeightProcessMove int64
	WeightServiceMove int64
	WeightMachineMove int64
	// Neighborhoods and Locations count the distinct indices used.
	Neighborhoods, Locations int
}

// tokens reads whitespace-separated non-negative integers.
type tokens struct {
	r   *bufio.Reader
	pos int // tokens read so far, for error messages
}

func (t *tokens) next(what string, lo, hi int64) (int64, error) {
	// Skip whitespace.
	var c byte
	var err error
	for {
		c, err = t.r.ReadByte()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return 0, fmt.Errorf("token %d (%s): unexpected end of file", t.pos+1, what)
			}
			return 0, err
		}
		if c != ' ' && c != '\n' && c != '\t' && c != '\r' {
			break
		}
	}
	t.pos++
	neg := false
	if c == '-' {
		neg = true
		c, err = t.r.ReadByte()
		if err != nil {
			return 0, fmt.Errorf("token %d (%s): lone '-'", t.pos, what)
		}
	}
	var v int64
	digits := 0
	for {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("token %d (%s): %q is not an integer", t.pos, what, c)
		}
		v = v*10 + int64(c-'0')
		digits++
		if digits > 12 {
			return 0, fmt.Errorf("token %d (%s): integer too long", t.pos, what)
		}
		c, err = t.r.ReadByte()
		if err != nil || c == ' ' || c == '\n' || c == '\t' || c == '\r' {
			break
		}
	}
	if neg {
		v = -v
	}
	if v < lo || v > hi {
		return 0, fmt.Errorf("token %d (%s): %d is outside [%d, %d]", t.pos, what, v, lo, hi)
	}
	return v, nil
}

func (t *tokens) int(what string, lo, hi int64) (int, error) {
	v, err := t.next(what, lo, hi)
	return int(v), err
}

// end reports an error if anything but whitespace remains.
func (t *tokens) end() error {
	for {
		c, err := t.r.ReadByte()
		if err != nil {
			return nil
		}
		if c != ' ' && c != '\n' && c != '\t' && c != '\r' {
			return fmt.Errorf("token %d: trailing data after the last expected value", t.pos+1)
		}
	}
}

// Parse reads an instance file.
func Parse(r io.Reader) (*Instance, error) {
	t := &tokens{r: bufio.NewReaderSize(r, 1<<16)}
	in := &Instance{}
	nr, err := t.int("resource count", 1, MaxResources)
	if err != nil {
		return nil, err
	}
	in.Resources = make([]Resource, nr)
	for i := range in.Resources {
		tr, err := t.int(fmt.Sprintf("resources[%d].transient", i), 0, 1)
		if err != nil {
			return nil, err
		}
		w, err := t.next(fmt.Sprintf("resources[%d].weight_load", i), 0, maxValue)
		if err != nil {
			return nil, err
		}
		in.Resources[i] = Resource{Transient: tr == 1, WeightLoad: w}
	}
	nm, err := t.int("machine count", 1, MaxMachines)
	if err != nil {
		return nil, err
	}
	in.Machines = make([]Machine, nm)
	in.MachineMoveCost = make([]int32, 0, min(nm*nm, 1<<20))
	for m := range in.Machines {
		mc := &in.Machines[m]
		if mc.Neighborhood, err = t.int(fmt.Sprintf("machines[%d].neighborhood", m), 0, MaxMachines); err != nil {
			return nil, err
		}
		if mc.Location, err = t.int(fmt.Sprintf("machines[%d].location", m), 0, MaxMachines); err != nil {
			return nil, err
		}
		in.Neighborhoods = max(in.Neighborhoods, mc.Neighborhood+1)
		in.Locations = max(in.Locations, mc.Location+1)
		mc.Capacity = make([]int64, nr)
		mc.Safety = make([]int64, nr)
		for r := range mc.Capacity {
			if mc.Capacity[r], err = t.next(fmt.Sprintf("machines[%d].capacity[%d]", m, r), 0, maxValue); err != nil {
				return nil, err
			}
		}
		for r := range mc.Safety {
			if mc.Safety[r], err = t.next(fmt.Sprintf("machines[%d].safety_capacity[%d]", m, r), 0, maxValue); err != nil {
				return nil, err
			}
		}
		for k := 0; k < nm; k++ {
			v, err := t.next(fmt.Sprintf("machines[%d].move_cost[%d]", m, k), 0, maxValue)
			if err != nil {
				return nil, err
			}
			in.MachineMoveCost = append(in.MachineMoveCost, int32(v))
		}
	}
	ns, err := t.int("service count", 0, MaxServices)
	if err != nil {
		return nil, err
	}
	in.Services = make([]Service, 0, min(ns, 1<<16))
	deps := 0
	for s := 0; s < ns; s++ {
		var sv Service
		if sv.SpreadMin, err = t.int(fmt.Sprintf("services[%d].spread_min", s), 0, MaxMachines); err != nil {
			return nil, err
		}
		k, err := t.int(fmt.Sprintf("services[%d].dependency count", s), 0, MaxServices)
		if err != nil {
			return nil, err
		}
		deps += k
		if deps > maxDependencies {
			return nil, fmt.Errorf("services[%d]: more than %d dependencies in all", s, maxDependencies)
		}
		for j := 0; j < k; j++ {
			d, err := t.int(fmt.Sprintf("services[%d].depends_on[%d]", s, j), 0, int64(ns-1))
			if err != nil {
				return nil, err
			}
			sv.DependsOn = append(sv.DependsOn, d)
		}
		in.Services = append(in.Services, sv)
	}
	np, err := t.int("process count", 0, MaxProcesses)
	if err != nil {
		return nil, err
	}
	in.Processes = make([]Process, 0, min(np, 1<<16))
	for p := 0; p < np; p++ {
		pr := Process{Requirement: make([]int64, nr)}
		if pr.Service, err = t.int(fmt.Sprintf("processes[%d].service", p), 0, int64(max(ns-1, 0))); err != nil {
			return nil, err
		}
		if ns == 0 {
			return nil, fmt.Errorf("processes[%d].service: the instance has no service", p)
		}
		for r := range pr.Requirement {
			if pr.Requirement[r], err = t.next(fmt.Sprintf("processes[%d].requirement[%d]", p, r), 0, maxValue); err != nil {
				return nil, err
			}
		}
		if pr.MoveCost, err = t.next(fmt.Sprintf("processes[%d].move_cost", p), 0, maxValue); err != nil {
			return nil, err
		}
		in.Processes = append(in.Processes, pr)
	}
	nb, err := t.int("balance count", 0, MaxBalances)
	if err != nil {
		return nil, err
	}
	for b := 0; b < nb; b++ {
		var bl Balance
		if bl.R1, err = t.int(fmt.Sprintf("balances[%d].resource1", b), 0, int64(nr-1)); err != nil {
			return nil, err
		}
		if bl.R2, err = t.int(fmt.Sprintf("balances[%d].resource2", b), 0, int64(nr-1)); err != nil {
			return nil, err
		}
		if bl.Target, err = t.next(fmt.Sprintf("balances[%d].target", b), 0, maxValue); err != nil {
			return nil, err
		}
		if bl.Weight, err = t.next(fmt.Sprintf("balances[%d].weight", b), 0, maxValue); err != nil {
			return nil, err
		}
		in.Balances = append(in.Balances, bl)
	}
	if in.WeightProcessMove, err = t.next("weight_process_move_cost", 0, maxValue); err != nil {
		return nil, err
	}
	if in.WeightServiceMove, err = t.next("weight_service_move_cost", 0, maxValue); err != nil {
		return nil, err
	}
	if in.WeightMachineMove, err = t.next("weight_machine_move_cost", 0, maxValue); err != nil {
		return nil, err
	}
	if err := t.end(); err != nil {
		return nil, err
	}
	return in, nil
}

// ParseAssignment reads an assignment or solution file for in: one machine
// index per process.
func ParseAssignment(r io.Reader, in *Instance) ([]int, error) {
	t := &tokens{r: bufio.NewReaderSize(r, 1<<16)}
	out := make([]int, len(in.Processes))
	for p := range out {
		m, err := t.int(fmt.Sprintf("process %d machine", p), 0, int64(len(in.Machines)-1))
		if err != nil {
			return nil, err
		}
		out[p] = m
	}
	if err := t.end(); err != nil {
		return nil, err
	}
	return out, nil
}

// WriteAssignment writes a solution in the challenge's format: the machine
// indices separated by spaces, on one line.
func WriteAssignment(w io.Writer, assign []int) error {
	var b bytes.Buffer
	for i, m := range assign {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(strconv.Itoa(m))
	}
	b.WriteByte('\n')
	_, err := w.Write(b.Bytes())
	return err
}
