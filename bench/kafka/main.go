// Command kafka measures Ballast's sample ingest end to end on this machine:
// producer → Kafka (a kfake broker) → consumer group → TSDB, the same load
// through the in-process bus, and raw TSDB append, all in one run, each
// printed as a ratio to raw append and beside the target of 500k samples/s
// through Kafka.
//
// Every path ends when PromQL counts every sample in a fresh TSDB, so the
// figure is "published → queryable". Run it with -h for the knobs; the
// results and the command behind them are in docs/benchmarks-kafka.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"runtime/pprof"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/ballast-cloud/ballast/collector/bus"
	"github.com/ballast-cloud/ballast/collector/ingest"
	"github.com/ballast-cloud/ballast/collector/kafka"
	"github.com/ballast-cloud/ballast/collector/kafka/kfaketest"
	"github.com/ballast-cloud/ballast/tsdb"
	"github.com/ballast-cloud/ballast/tsdb/datasource"
)

// target is the goal for the Kafka path on 2 cores.
const target = 500_000

type options struct {
	series, steps, batch       int
	partitions, consumers      int
	publishers, reps           int
	compression, broker, paths string
	cpuProfile, memProfile     string
}

func main() {
	var o options
	flag.IntVar(&o.series, "series", 100_000, "distinct series")
	flag.IntVar(&o.steps, "steps", 30, "samples per series (15s apart)")
	flag.IntVar(&o.batch, "batch", 5000, "series per published batch (one scrape or remote-write request)")
	flag.IntVar(&o.partitions, "partitions", 12, "partitions of the samples topic")
	flag.IntVar(&o.consumers, "consumers", 2, "ingesters in the consumer group (each its own bus, sharing one TSDB)")
	flag.IntVar(&o.publishers, "publishers", 2, "publishing goroutines (each owns a share of the series)")
	flag.IntVar(&o.reps, "reps", 3, "repetitions of each path; the median is reported")
	flag.StringVar(&o.compression, "compression", "snappy", "sample record compression: snappy, zstd, none")
	flag.StringVar(&o.broker, "broker", "", "an external broker's host:port (e.g. `go run ./collector/kafka/kfaketest/cmd/kfake`); default: kfake in this process")
	flag.StringVar(&o.paths, "paths", "raw,inproc,kafka", "paths to measure: raw, inproc, kafka, and kafka-consume (the topic is filled first, untimed: the ingesters' side alone)")
	flag.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the Kafka path to this file")
	flag.StringVar(&o.memProfile, "memprofile", "", "write an allocation profile (whole run) to this file")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// result is one measured path.
type result struct {
	name    string
	rate    float64 // samples/s, median of reps
	cpuRate float64 // samples per CPU-second (this process), median
	reps    []float64
}

func run(o options) error {
	d := newDataset(o.series, o.steps)
	fmt.Printf("Ballast sample ingest, published → queryable: %d series × %d samples = %d samples, batches of %d series, %d publishers\n",
		o.series, o.steps, d.total(), o.batch, o.publishers)
	fmt.Printf("GOMAXPROCS=%d, NumCPU=%d, %s; paths interleaved, %d reps each\n\n", runtime.GOMAXPROCS(0), runtime.NumCPU(), runtime.Version(), o.reps)
	type path struct {
		result
		fn       func(dir string) (span, error)
		cpuRates []float64
	}
	var paths []*path
	for _, name := range strings.Split(o.paths, ",") {
		p := &path{}
		switch name {
		case "raw":
			p.name, p.fn = fmt.Sprintf("raw TSDB append (%d goroutines)", runtime.GOMAXPROCS(0)), func(dir string) (span, error) { return benchRaw(d, o, dir) }
		case "inproc":
			p.name, p.fn = "in-process bus", func(dir string) (span, error) { return benchInProc(d, o, dir) }
		case "kafka", "kafka-consume":
			where := "kfake in-process"
			if o.broker != "" {
				where = "broker " + o.broker
			}
			preload := name == "kafka-consume"
			p.name = fmt.Sprintf("Kafka (%s, %d partitions, %d consumers, %s)", where, o.partitions, o.consumers, o.compression)
			if preload {
				p.name = fmt.Sprintf("Kafka consume only (%s, %d partitions, %d consumers)", where, o.partitions, o.consumers)
			}
			p.fn = func(dir string) (span, error) { return benchKafka(d, o, dir, preload) }
		default:
			return fmt.Errorf("-paths: unknown path %q (raw, inproc, kafka, kafka-consume)", name)
		}
		paths = append(paths, p)
	}
	// Interleaving the paths spreads whatever else loads the machine over
	// all of them, so their ratios stay meaningful.
	for rep := range o.reps {
		for _, p := range paths {
			dir, err := os.MkdirTemp("", "ballast-bench-")
			if err != nil {
				return err
			}
			runtime.GC()
			sp, err := p.fn(dir)
			_ = os.RemoveAll(dir)
			if err != nil {
				return fmt.Errorf("%s: %w", p.name, err)
			}
			rate := float64(d.total()) / sp.wall.Seconds()
			p.reps = append(p.reps, rate)
			p.cpuRates = append(p.cpuRates, float64(d.total())/sp.cpu.Seconds())
			fmt.Printf("  rep %d  %-66s %9.0f samples/s  (%.2fs wall, %.2f CPU-s)\n", rep+1, p.name, rate, sp.wall.Seconds(), sp.cpu.Seconds())
		}
	}
	results := make([]result, len(paths))
	for i, p := range paths {
		p.rate, p.cpuRate = median(p.reps), median(p.cpuRates)
		results[i] = p.result
	}
	report(results)
	if o.memProfile != "" {
		f, err := os.Create(o.memProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		return pprof.Lookup("allocs").WriteTo(f, 0)
	}
	return nil
}

func report(results []result) {
	raw := 0.0
	for _, r := range results {
		if strings.HasPrefix(r.name, "raw") {
			raw = r.rate
		}
	}
	fmt.Println()
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "path\tsamples/s (median)\tratio to raw append\tsamples per CPU-s\ttarget\t")
	for _, r := range results {
		ratio, goal := "-", ""
		if raw > 0 {
			ratio = fmt.Sprintf("%.3f", r.rate/raw)
		}
		if strings.HasPrefix(r.name, "Kafka") {
			verdict := "MET"
			if r.rate < target {
				verdict = "MISSED"
			}
			goal = fmt.Sprintf("≥ %dk/s: %s", target/1000, verdict)
		}
		fmt.Fprintf(tw, "%s\t%.0f\t%s\t%.0f\t%s\t\n", r.name, r.rate, ratio, r.cpuRate, goal)
	}
	_ = tw.Flush()
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return s[len(s)/2]
}

// span is the wall and CPU time of a measured section.
type span struct{ wall, cpu time.Duration }

// measure starts a span; call the result to end it.
func measure() func() span {
	w, c := time.Now(), cpuTime()
	return func() span { return span{wall: time.Since(w), cpu: cpuTime() - c} }
}

// cpuTime is this process's user+system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// dataset is the load: every series gets one sample per step, in time order.
type dataset struct {
	labels []labels.Labels
	hashes []uint64
	steps  int
	t0     int64
}

func newDataset(series, steps int) *dataset {
	d := &dataset{labels: make([]labels.Labels, series), hashes: make([]uint64, series), steps: steps,
		t0: time.Now().Add(-time.Duration(steps) * 15 * time.Second).Truncate(time.Minute).UnixMilli()}
	for i := range d.labels {
		d.labels[i] = labels.FromStrings("__name__", fmt.Sprintf("bench_metric_%d", i%50),
			"instance", fmt.Sprintf("host-%d:9100", i/1000), "job", "node", "series", fmt.Sprint(i))
		d.hashes[i] = d.labels[i].Hash()
	}
	return d
}

func (d *dataset) total() int { return len(d.labels) * d.steps }

// publish calls fn with every batch of the series range [lo, hi), step by
// step, reusing one batch.
func (d *dataset) publish(lo, hi, batch int, fn func(*bus.SampleBatch) error) error {
	b := &bus.SampleBatch{Series: make([]bus.Series, 0, batch)}
	samples := make([]bus.Sample, batch)
	for s := range d.steps {
		ts := d.t0 + int64(s)*15_000
		for start := lo; start < hi; start += batch {
			end := min(start+batch, hi)
			b.Series = b.Series[:0]
			for i := start; i < end; i++ {
				k := i - start
				samples[k] = bus.Sample{T: ts, V: float64(s) + float64(i)*0.001}
				b.Series = append(b.Series, bus.Series{Labels: d.labels[i], Hash: d.hashes[i], Samples: samples[k : k+1]})
			}
			if err := fn(b); err != nil {
				return err
			}
		}
	}
	return nil
}

// parallel runs fn for n disjoint shares of the series and joins errors.
func (d *dataset) parallel(n int, fn func(lo, hi int) error) error {
	var wg sync.WaitGroup
	errs := make([]error, n)
	per := (len(d.labels) + n - 1) / n
	for w := range n {
		lo, hi := w*per, min((w+1)*per, len(d.labels))
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[w] = fn(lo, hi)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func openStore(dir string) (*tsdb.Storage, *ingest.Ingester, error) {
	st, err := tsdb.Open(tsdb.Config{Path: dir}, nil, nil)
	if err != nil {
		return nil, nil, err
	}
	ing, err := ingest.New(ingest.Options{Source: "bench"}, st, nil, nil)
	if err != nil {
		_ = st.Close()
		return nil, nil, err
	}
	return st, ing, nil
}

// verify requires PromQL to count exactly want samples.
func verify(st *tsdb.Storage, want int) error {
	n, err := countSamples(st)
	if err != nil {
		return err
	}
	if n != want {
		return fmt.Errorf("PromQL counts %d samples, want %d", n, want)
	}
	return nil
}

func countSamples(st *tsdb.Storage) (int, error) {
	q, err := datasource.NewLocal(st.Engine(), st.Queryable())
	if err != nil {
		return 0, err
	}
	v, _, err := q.Query(context.Background(), `sum(count_over_time({__name__=~"bench_metric_.*"}[1d]))`, time.Now().Add(time.Minute))
	if err != nil {
		return 0, err
	}
	vec := v.(model.Vector)
	if len(vec) == 0 {
		return 0, nil
	}
	return int(vec[0].Value), nil
}

func benchRaw(d *dataset, o options, dir string) (span, error) {
	st, ing, err := openStore(dir)
	if err != nil {
		return span{}, err
	}
	defer st.Close()
	end := measure()
	err = d.parallel(runtime.GOMAXPROCS(0), func(lo, hi int) error {
		return d.publish(lo, hi, o.batch, func(b *bus.SampleBatch) error { return ing.Handle(context.Background(), b) })
	})
	sp := end()
	if err != nil {
		return span{}, err
	}
	return sp, verify(st, d.total())
}

func benchInProc(d *dataset, o options, dir string) (span, error) {
	st, ing, err := openStore(dir)
	if err != nil {
		return span{}, err
	}
	defer st.Close()
	b := bus.NewInProc(bus.InProcOptions{})
	defer b.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = b.ConsumeSamples(ctx, "ingest", ing.Handle) }()
	// Wait for the subscription: publishing before it fails with ErrNoConsumer.
	for {
		err := b.PublishSamples(ctx, &bus.SampleBatch{})
		if err == nil {
			break
		}
		if !errors.Is(err, bus.ErrNoConsumer) {
			return span{}, err
		}
		time.Sleep(time.Millisecond)
	}
	end := measure()
	err = d.parallel(o.publishers, func(lo, hi int) error {
		return d.publish(lo, hi, o.batch, func(x *bus.SampleBatch) error { return b.PublishSamples(ctx, x) })
	})
	sp := end()
	if err != nil {
		return span{}, err
	}
	return sp, verify(st, d.total())
}

// benchKafka times publish → Kafka → consumer group → TSDB. With preload,
// everything is published and flushed first and only consuming is timed.
func benchKafka(d *dataset, o options, dir string, preload bool) (span, error) {
	brokers := []string{o.broker}
	topicSuffix := ""
	if o.broker == "" {
		c, err := kfaketest.Start(kfaketest.Options{})
		if err != nil {
			return span{}, err
		}
		defer c.Close()
		brokers = c.ListenAddrs()
	} else {
		topicSuffix = fmt.Sprintf(".%d", time.Now().UnixNano()) // a fresh stream per rep
	}
	st, ing, err := openStore(dir)
	if err != nil {
		return span{}, err
	}
	defer st.Close()
	cfg := kafka.Config{
		Brokers:     brokers,
		Partitions:  o.partitions,
		Compression: o.compression,
		Topics: kafka.TopicsConfig{
			Samples: "ballast.samples" + topicSuffix, Events: "ballast.events" + topicSuffix, DeadLetter: "ballast.deadletter" + topicSuffix,
		},
		Group: "bench" + topicSuffix,
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	pubReg := prometheus.NewRegistry()
	pub, err := kafka.New(cfg, pubReg, logger)
	if err != nil {
		return span{}, err
	}
	defer pub.Close()
	defer func() {
		regs := []*prometheus.Registry{pubReg}
		if n := sumMetric(regs, "ballast_kafka_producer_samples_total"); n > 0 {
			fmt.Printf("         %.2f bytes per sample in sample records (%s)\n", sumMetric(regs, "ballast_kafka_producer_bytes_total")/n, o.compression)
		}
	}()
	for pub.Ready() != nil {
		time.Sleep(time.Millisecond)
	}
	publish := func() error {
		err := d.parallel(o.publishers, func(lo, hi int) error {
			return d.publish(lo, hi, o.batch, func(x *bus.SampleBatch) error { return pub.PublishSamples(ctx, x) })
		})
		if err != nil {
			return err
		}
		return pub.Flush(ctx)
	}
	if preload {
		if err := publish(); err != nil {
			return span{}, err
		}
	}

	var appended atomic.Int64
	handler := func(ctx context.Context, b *bus.SampleBatch) error {
		err := ing.Handle(ctx, b)
		if err == nil {
			appended.Add(int64(b.Len()))
		}
		return err
	}
	var (
		wg   sync.WaitGroup
		regs []*prometheus.Registry
	)
	defer wg.Wait()
	defer cancel()
	for range o.consumers {
		reg := prometheus.NewRegistry()
		cb, err := kafka.New(cfg, reg, logger)
		if err != nil {
			return span{}, err
		}
		defer cb.Close()
		regs = append(regs, reg)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := cb.ConsumeSamples(ctx, "", handler); err != nil {
				logger.Error("Consume failed", "err", err)
			}
		}()
	}
	// Publishing is timed from the moment every partition has a consumer
	// (joining the group is start-up, not throughput); consuming alone from
	// the first assignment.
	assigned := func() float64 { return sumMetric(regs, "ballast_kafka_consumer_assigned_partitions") }
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(time.Millisecond) {
		if preload && (assigned() > 0 || appended.Load() > 0) || assigned() == float64(o.partitions) {
			break
		}
		if time.Now().After(deadline) {
			return span{}, errors.New("consumers never got every partition")
		}
	}
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			return span{}, err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return span{}, err
		}
		defer pprof.StopCPUProfile()
	}
	end := measure()
	if !preload {
		if err := publish(); err != nil {
			return span{}, err
		}
	}
	want := int64(d.total())
	for deadline := time.Now().Add(10 * time.Minute); ; time.Sleep(time.Millisecond) {
		if appended.Load() >= want {
			sp := end()
			// At-least-once may deliver a record twice after a rebalance,
			// so the counter can run ahead: PromQL decides when all are in.
			if n, err := countSamples(st); err == nil && n == d.total() {
				return sp, nil
			}
		}
		if time.Now().After(deadline) {
			return span{}, fmt.Errorf("only %d of %d samples appended", appended.Load(), want)
		}
	}
}

// sumMetric adds up every series of the gauge or counter name.
func sumMetric(regs []*prometheus.Registry, name string) float64 {
	total := 0.0
	for _, reg := range regs {
		mfs, err := reg.Gather()
		if err != nil {
			continue
		}
		for _, mf := range mfs {
			if mf.GetName() != name {
				continue
			}
			for _, m := range mf.GetMetric() {
				total += m.GetGauge().GetValue() + m.GetCounter().GetValue()
			}
		}
	}
	return total
}
