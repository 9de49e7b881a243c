// Command watcher measures the Watcher-compatible API on a real TCP port:
//
//   - API latency (p50/p99) of list and show with 10 000 action plans stored:
//     GET /v1/action_plans (Watcher's default page of max_limit=1000), with
//     limit=50, /detail, ?audit_uuid=, a deep marker page, and show by UUID;
//
//   - audit-to-plan time on the simulated cluster: from POST /v1/audits
//     (ONESHOT, server_consolidation) to the audit SUCCEEDED with its plan
//     and actions stored, for each cluster size.
//
//     go run ./bench/watcher [-plans 10000] [-audits 100] [-requests 200] \
//     [-sizes 40x400,200x2000,1000x10000] [-strategy vm_workload_consolidation] [-runs 3]
//
// Every request carries a token (authentication is part of the latency).
// Each figure is printed beside its target and, for audit-to-plan, beside
// Watcher's strategy times from shared/research/watcher.md §6b.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ballast-cloud/ballast/decision"
	"github.com/ballast-cloud/ballast/decision/audit"
	"github.com/ballast-cloud/ballast/decision/sim"
	"github.com/ballast-cloud/ballast/web/store"
	"github.com/ballast-cloud/ballast/web/watcher"
)

type options struct {
	plans, audits, requests, runs int
	sizes                         string
	strategy                      string
}

func main() {
	var o options
	flag.IntVar(&o.plans, "plans", 10000, "action plans stored for the latency runs")
	flag.IntVar(&o.audits, "audits", 100, "audits the plans belong to (plans/audits per audit)")
	flag.IntVar(&o.requests, "requests", 200, "timed requests per endpoint")
	flag.IntVar(&o.runs, "runs", 3, "audits per cluster size (the median is reported)")
	flag.StringVar(&o.sizes, "sizes", "40x400,200x2000,1000x10000", "simulated cluster sizes, hosts x instances")
	flag.StringVar(&o.strategy, "strategy", "vm_workload_consolidation", "server_consolidation strategy for audit-to-plan")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "bench/watcher:", err)
		os.Exit(1)
	}
}

const token = "bench-token-0123456789abcdef"

// instance is one API over a fresh database in dir.
type instance struct {
	store  *store.Store
	api    *watcher.API
	srv    *httptest.Server
	cancel context.CancelFunc
	done   chan struct{}
}

func start(dir string, s *sim.Sim) (*instance, error) {
	tokens := filepath.Join(dir, "tokens.yml")
	if err := os.WriteFile(tokens, []byte("tokens:\n  - {name: bench, role: admin, token: \""+token+"\"}\n"), 0o600); err != nil {
		return nil, err
	}
	st, err := store.Open(store.Config{Path: filepath.Join(dir, "watcher.db")}, nil, nil)
	if err != nil {
		return nil, err
	}
	engine, err := decision.New(decision.Config{DefaultTimeLimit: 60 * time.Second}, nil)
	if err != nil {
		return nil, err
	}
	api, err := watcher.New(watcher.Config{TokensFile: tokens, Audits: audit.Config{PollInterval: time.Second}},
		watcher.Deps{Store: st, Engine: engine, Models: audit.SnapshotModels(s.Snapshot)}, slog.New(slog.DiscardHandler))
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	in := &instance{store: st, api: api, srv: httptest.NewServer(api), cancel: cancel, done: make(chan struct{})}
	go func() { defer close(in.done); _ = api.Run(ctx) }()
	return in, nil
}

func (in *instance) stop() {
	in.srv.Close()
	in.cancel()
	<-in.done
	_ = in.store.Close()
}

var client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}

// call sends a request and returns the status, the body and the time.
func (in *instance) call(method, path string, body any) (int, []byte, time.Duration, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, 0, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, in.srv.URL+path, rd)
	if err != nil {
		return 0, nil, 0, err
	}
	req.Header.Set("X-Auth-Token", token)
	req.Header.Set("OpenStack-API-Version", "infra-optim 1.4")
	req.Header.Set("Content-Type", "application/json")
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, 0, err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, b, time.Since(start), err
}

func run(o options) error {
	fmt.Printf("bench/watcher: %d action plans over %d audits, %d requests per endpoint\n\n", o.plans, o.audits, o.requests)
	if err := latency(o); err != nil {
		return err
	}
	return auditToPlan(o)
}

// populate stores plans through the same path the audit runner uses
// (SavePlan: the plan, its three actions and efficacy in one transaction).
func populate(ctx context.Context, in *instance, o options) (audits, plans []string, err error) {
	g, err := in.store.GetGoal(ctx, "dummy")
	if err != nil {
		return nil, nil, err
	}
	st, err := in.store.GetStrategy(ctx, "dummy")
	if err != nil {
		return nil, nil, err
	}
	engine, err := decision.New(decision.Config{}, nil)
	if err != nil {
		return nil, nil, err
	}
	s, err := sim.New(sim.Config{Hosts: 2, Instances: 4}, nil, nil)
	if err != nil {
		return nil, nil, err
	}
	p, err := engine.Plan(ctx, decision.Request{Goal: "dummy", Strategy: "dummy", Model: s.Snapshot()})
	if err != nil {
		return nil, nil, err
	}
	per := o.plans / o.audits
	for i := range o.audits {
		// EVENT audits: the runner never schedules them on its own.
		a, err := in.store.CreateAudit(ctx, audit.Audit{Name: fmt.Sprintf("bench-%04d", i), Type: audit.Event,
			GoalUUID: g.UUID, StrategyUUID: st.UUID, Parameters: p.Parameters})
		if err != nil {
			return nil, nil, err
		}
		if err := in.store.TransitionAudit(ctx, a.UUID, []string{audit.StatePending}, audit.StateOngoing, "", "bench"); err != nil {
			return nil, nil, err
		}
		audits = append(audits, a.UUID)
		for range per {
			saved, err := in.store.SavePlan(ctx, audit.SaveRequest{AuditUUID: a.UUID, Plan: p, State: audit.StateRecommended})
			if err != nil {
				return nil, nil, err
			}
			plans = append(plans, saved.UUID)
		}
		if err := in.store.TransitionAudit(ctx, a.UUID, []string{audit.StateOngoing}, audit.StateSucceeded, "", ""); err != nil {
			return nil, nil, err
		}
	}
	return audits, plans, nil
}

type endpoint struct {
	name string
	// target is the p99 we hold ourselves to.
	target time.Duration
	path   func(r *rand.Rand) string
	items  int
}

func percentile(d []time.Duration, p float64) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(p * float64(len(s)-1))
	return s[i]
}

func latency(o options) error {
	dir, err := os.MkdirTemp("", "bench-watcher-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	s, err := sim.New(sim.Config{Hosts: 8, Instances: 60}, nil, nil)
	if err != nil {
		return err
	}
	in, err := start(dir, s)
	if err != nil {
		return err
	}
	defer in.stop()
	ctx := context.Background()
	t0 := time.Now()
	audits, plans, err := populate(ctx, in, o)
	if err != nil {
		return err
	}
	took := time.Since(t0)
	fi, _ := os.Stat(filepath.Join(dir, "watcher.db"))
	size := int64(0)
	if fi != nil {
		size = fi.Size()
	}
	fmt.Printf("Stored %d plans (%d actions) in %.1fs: %.0f plans/s through SavePlan; database %.1f MiB\n\n",
		len(plans), 3*len(plans), took.Seconds(), float64(len(plans))/took.Seconds(), float64(size)/(1<<20))

	deepAt := len(plans) * 9 / 10
	deep := plans[deepAt]
	page, small := min(1000, len(plans)), min(50, len(plans))
	eps := []endpoint{
		{"GET /v1/action_plans (default page, 1000)", 250 * time.Millisecond, func(*rand.Rand) string { return "/v1/action_plans" }, page},
		{"GET /v1/action_plans/detail (1000)", 300 * time.Millisecond, func(*rand.Rand) string { return "/v1/action_plans/detail" }, page},
		{"GET /v1/action_plans?limit=50", 25 * time.Millisecond, func(*rand.Rand) string { return "/v1/action_plans?limit=50" }, small},
		{"GET /v1/action_plans/detail?limit=50", 25 * time.Millisecond, func(*rand.Rand) string { return "/v1/action_plans/detail?limit=50" }, small},
		{"GET /v1/action_plans?audit_uuid= (" + strconv.Itoa(len(plans)/len(audits)) + ")", 50 * time.Millisecond, func(r *rand.Rand) string {
			return "/v1/action_plans?audit_uuid=" + audits[r.IntN(len(audits))]
		}, len(plans) / len(audits)},
		{"GET /v1/action_plans?marker=<90%>&limit=50", 25 * time.Millisecond, func(*rand.Rand) string {
			return "/v1/action_plans?limit=50&marker=" + deep
		}, min(50, len(plans)-deepAt-1)},
		{"GET /v1/action_plans?sort_key=audit_uuid&limit=50", 50 * time.Millisecond, func(*rand.Rand) string {
			return "/v1/action_plans?sort_key=audit_uuid&limit=50"
		}, small},
		{"GET /v1/action_plans/<uuid>", 10 * time.Millisecond, func(r *rand.Rand) string {
			return "/v1/action_plans/" + plans[r.IntN(len(plans))]
		}, -1},
		{"GET /v1/actions?action_plan_uuid=", 10 * time.Millisecond, func(r *rand.Rand) string {
			return "/v1/actions?action_plan_uuid=" + plans[r.IntN(len(plans))]
		}, 3},
	}
	fmt.Printf("%-50s %9s %9s %9s %9s %8s  %s\n", "request", "p50", "p99", "max", "target", "KiB", "p99 vs target")
	r := rand.New(rand.NewPCG(1, 2))
	var missed []string
	for _, ep := range eps {
		var ds []time.Duration
		var bytesOut int
		for i := range o.requests + 10 {
			code, body, d, err := in.call("GET", ep.path(r), nil)
			if err != nil {
				return err
			}
			if code != http.StatusOK {
				return fmt.Errorf("%s: %d %s", ep.name, code, body)
			}
			if i == 0 && ep.items >= 0 {
				var m map[string]json.RawMessage
				var items []json.RawMessage
				if err := json.Unmarshal(body, &m); err != nil || json.Unmarshal(m["action_plans"], &items) != nil && json.Unmarshal(m["actions"], &items) != nil {
					return fmt.Errorf("%s: unexpected body", ep.name)
				}
				if len(items) != ep.items {
					return fmt.Errorf("%s: %d items, want %d", ep.name, len(items), ep.items)
				}
			}
			if i >= 10 { // warm-up
				ds = append(ds, d)
				bytesOut = len(body)
			}
		}
		p99 := percentile(ds, 0.99)
		verdict := "met"
		if p99 > ep.target {
			verdict = "MISSED"
			missed = append(missed, ep.name)
		}
		fmt.Printf("%-50s %9s %9s %9s %9s %8.1f  %.2f %s\n", ep.name, round(percentile(ds, 0.5)), round(p99), round(slices.Max(ds)),
			ep.target, float64(bytesOut)/1024, float64(p99)/float64(ep.target), verdict)
	}
	fmt.Println("\n(Watcher's research notes give no API latency baseline; the targets are Ballast's.)")
	if len(missed) > 0 {
		fmt.Printf("Missed latency targets: %s\n", strings.Join(missed, "; "))
	}
	fmt.Println()
	return nil
}

func round(d time.Duration) time.Duration {
	switch {
	case d > 100*time.Millisecond:
		return d.Round(time.Millisecond)
	case d > time.Millisecond:
		return d.Round(10 * time.Microsecond)
	}
	return d.Round(time.Microsecond)
}

// baselines are Watcher's vm_workload_consolidation execute() times from
// watcher.md §6b (strategy only: no model build, no datasource, no DB).
var baselines = map[string]string{
	"40x400":     "none at this size (20x100: 0.03-0.07 s master; 100x1000: 0.29-0.61 s master, 2.0 s Debian 9.0.0)",
	"200x2000":   "0.68 s master, 14.2 s Debian 9.0.0",
	"1000x10000": "30.3 s master (Debian 9.0.0 not run)",
}

func auditToPlan(o options) error {
	fmt.Printf("Audit to plan, ONESHOT server_consolidation/%s, median of %d (POST /v1/audits until SUCCEEDED with the plan stored)\n",
		o.strategy, o.runs)
	fmt.Printf("%-12s %10s %10s %8s %8s  %s\n", "cluster", "median", "min", "actions", "released", "Watcher (strategy execute only)")
	for _, size := range strings.Split(o.sizes, ",") {
		var hosts, vms int
		if _, err := fmt.Sscanf(size, "%dx%d", &hosts, &vms); err != nil {
			return fmt.Errorf("-sizes: %q is not HOSTSxINSTANCES", size)
		}
		dir, err := os.MkdirTemp("", "bench-watcher-")
		if err != nil {
			return err
		}
		s, err := sim.New(sim.Config{Hosts: hosts, Instances: vms, Seed: 42}, nil, nil)
		if err != nil {
			return err
		}
		in, err := start(dir, s)
		if err != nil {
			return err
		}
		var ds []time.Duration
		var actions int
		var released float64
		for range o.runs {
			d, n, rel, err := oneAudit(in, o.strategy)
			if err != nil {
				in.stop()
				return fmt.Errorf("%s: %w", size, err)
			}
			ds, actions, released = append(ds, d), n, rel
		}
		in.stop()
		os.RemoveAll(dir)
		fmt.Printf("%-12s %10s %10s %8d %7.1f%%  %s\n", size, round(percentile(ds, 0.5)), round(slices.Min(ds)), actions, released,
			baselines[size])
	}
	return nil
}

// oneAudit posts an audit and polls until it is SUCCEEDED, returning the
// time, the plan's action count and its released_nodes_ratio.
func oneAudit(in *instance, strategy string) (time.Duration, int, float64, error) {
	start := time.Now()
	code, body, _, err := in.call("POST", "/v1/audits", map[string]any{"audit_type": "ONESHOT", "goal": "server_consolidation",
		"strategy": strategy, "force": true})
	if err != nil {
		return 0, 0, 0, err
	}
	if code != http.StatusCreated {
		return 0, 0, 0, fmt.Errorf("create audit: %d %s", code, body)
	}
	var a struct {
		UUID  string `json:"uuid"`
		State string `json:"state"`
	}
	if err := json.Unmarshal(body, &a); err != nil {
		return 0, 0, 0, err
	}
	deadline := time.Now().Add(10 * time.Minute)
	for a.State != audit.StateSucceeded {
		if a.State == audit.StateFailed || a.State == audit.StateCancelled || time.Now().After(deadline) {
			return 0, 0, 0, fmt.Errorf("audit %s ended %s", a.UUID, a.State)
		}
		time.Sleep(2 * time.Millisecond)
		_, body, _, err = in.call("GET", "/v1/audits/"+a.UUID, nil)
		if err != nil {
			return 0, 0, 0, err
		}
		if err := json.Unmarshal(body, &a); err != nil {
			return 0, 0, 0, err
		}
	}
	took := time.Since(start)
	_, body, _, err = in.call("GET", "/v1/action_plans?audit_uuid="+a.UUID, nil)
	if err != nil {
		return 0, 0, 0, err
	}
	var plans struct {
		Plans []struct {
			UUID   string `json:"uuid"`
			Global []struct {
				Value float64 `json:"value"`
			} `json:"global_efficacy"`
		} `json:"action_plans"`
	}
	if err := json.Unmarshal(body, &plans); err != nil || len(plans.Plans) != 1 {
		return 0, 0, 0, errors.Join(err, fmt.Errorf("want one plan: %s", body))
	}
	acts, err := in.store.PlanActions(context.Background(), plans.Plans[0].UUID)
	if err != nil {
		return 0, 0, 0, err
	}
	rel := 0.0
	if len(plans.Plans[0].Global) > 0 {
		rel = plans.Plans[0].Global[0].Value
	}
	return took, len(acts), rel, nil
}
