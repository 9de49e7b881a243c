// Command exporters measures the node agent against its targets: scrape
// latency and allocations of the instance collector at 1000 libvirt domains
// (libvirt's in-process test driver), the agent's resident memory while
// doing so, and push throughput over remote_write to a receiver on loopback.
//
//	go run ./bench/exporters [-domains 1000] [-scrapes 30] [-push-batches 20]
//
// Each figure is printed beside its target with the ratio (figure/target for
// "at most" targets: below 1 is met).
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/ballast-cloud/ballast/exporters"
	"github.com/ballast-cloud/ballast/exporters/push"
	"github.com/ballast-cloud/ballast/exporters/push/pushtest"
	"github.com/ballast-cloud/ballast/exporters/virt"
	"github.com/ballast-cloud/ballast/exporters/virt/virttest"
)

type options struct {
	domains, scrapes, pushBatches int
}

type result struct {
	domains           int
	series            int
	scrapeP50         time.Duration
	scrapeMax         time.Duration
	allocsPerScrape   uint64
	bytesPerScrape    uint64
	rssBytes          uint64 // peak
	rssSteadyBytes    uint64 // after the scrapes
	rssBaseBytes      uint64 // before any collector ran
	pushSamples       int
	pushSeconds       float64
	pushSamplesPerSec float64
}

func main() {
	o := options{}
	flag.IntVar(&o.domains, "domains", 1000, "domains on the simulated host")
	flag.IntVar(&o.scrapes, "scrapes", 30, "scrapes to time")
	flag.IntVar(&o.pushBatches, "push-batches", 20, "scrapes pushed in the throughput run")
	flag.Parse()
	r, err := run(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	report(os.Stdout, r)
}

func run(o options) (*result, error) {
	baseRSS := procStatus("VmRSS:")
	logger := slog.New(slog.DiscardHandler)
	dir, err := os.MkdirTemp("", "ballast-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	uri, err := virttest.Host{CPUs: 64, MemoryKiB: 512 << 20, Domains: o.domains}.Write(dir)
	if err != nil {
		return nil, err
	}
	r := &result{domains: o.domains, rssBaseBytes: baseRSS}

	// The instance collector alone, with no listing cache: every scrape
	// pays for every libvirt call.
	exp, err := exporters.New(exporters.Config{
		Enabled: map[string]bool{"instance": true, "inventory": false, "diskio": false, "node": false},
		Libvirt: virt.Config{URI: uri, DomainCacheTTL: -1},
	}, logger)
	if err != nil {
		return nil, err
	}
	defer exp.Close()
	if _, err := exp.Gatherer().Gather(); err != nil { // connect and warm up
		return nil, err
	}
	var durations []time.Duration
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range o.scrapes {
		start := time.Now()
		mfs, err := exp.Gatherer().Gather()
		durations = append(durations, time.Since(start))
		if err != nil {
			return nil, err
		}
		r.series = 0
		for _, mf := range mfs {
			r.series += len(mf.GetMetric())
		}
	}
	runtime.ReadMemStats(&after)
	sort.Slice(durations, func(i, j int) bool { return durations[i] < durations[j] })
	r.scrapeP50, r.scrapeMax = durations[len(durations)/2], durations[len(durations)-1]
	r.allocsPerScrape = (after.Mallocs - before.Mallocs) / uint64(o.scrapes)
	r.bytesPerScrape = (after.TotalAlloc - before.TotalAlloc) / uint64(o.scrapes)
	r.rssBytes = procStatus("VmHWM:")
	r.rssSteadyBytes = procStatus("VmRSS:")

	// Push: the same gatherer through the remote_write publisher.
	recv, err := pushtest.Start()
	if err != nil {
		return nil, err
	}
	defer recv.Stop()
	rw, err := push.NewRemoteWrite(push.RemoteWriteConfig{URL: recv.URL(), Dir: dir + "/queue", BatchSendDeadline: 100 * time.Millisecond},
		prometheus.NewRegistry(), logger)
	if err != nil {
		return nil, err
	}
	defer rw.Close()
	mfs, err := exp.Gatherer().Gather()
	if err != nil {
		return nil, err
	}
	extra := labels.FromStrings("instance", "bench:9177", "job", "ballast-exporter")
	// Timestamps start a second ahead: the WAL watcher sends only samples
	// newer than its own start.
	base := time.Now().UnixMilli() + 1000
	start := time.Now()
	for i := range o.pushBatches {
		b := push.Batch(mfs, base+int64(i)*15000, extra)
		if err := rw.PublishSamples(context.Background(), b); err != nil {
			return nil, err
		}
		r.pushSamples += b.Len()
	}
	for recv.Distinct() < r.pushSamples {
		if time.Since(start) > 5*time.Minute {
			return nil, fmt.Errorf("push: %d of %d samples arrived in 5m", recv.Distinct(), r.pushSamples)
		}
		time.Sleep(5 * time.Millisecond)
	}
	r.pushSeconds = time.Since(start).Seconds()
	r.pushSamplesPerSec = float64(r.pushSamples) / r.pushSeconds
	return r, nil
}

// procStatus reads a size field of /proc/self/status (VmHWM is the peak
// resident set, VmRSS the current one), in bytes.
func procStatus(field string) uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == field {
			kb, _ := strconv.ParseUint(f[1], 10, 64)
			return kb * 1024
		}
	}
	return 0
}

func report(w *os.File, r *result) {
	fmt.Fprintf(w, "instance collector, %d domains (libvirt test driver, %d series per scrape)\n", r.domains, r.series)
	fmt.Fprintf(w, "%-34s %14s %12s %8s\n", "figure", "measured", "target", "ratio")
	row := func(name, measured, target string, ratio float64) {
		verdict := "met"
		if ratio > 1 {
			verdict = "MISSED"
		}
		if ratio < 0 {
			verdict, ratio = "-", 0
		}
		fmt.Fprintf(w, "%-34s %14s %12s %8.2f %s\n", name, measured, target, ratio, verdict)
	}
	ms := func(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }
	row("scrape latency p50", ms(r.scrapeP50), "<= 100 ms", float64(r.scrapeP50)/float64(100*time.Millisecond))
	row("scrape latency max", ms(r.scrapeMax), "<= 100 ms", float64(r.scrapeMax)/float64(100*time.Millisecond))
	row("allocations per scrape", strconv.FormatUint(r.allocsPerScrape, 10), "-", -1)
	row("bytes allocated per scrape", fmt.Sprintf("%.1f MiB", float64(r.bytesPerScrape)/(1<<20)), "-", -1)
	row("RSS before any collector ran", fmt.Sprintf("%.1f MB", float64(r.rssBaseBytes)/1e6), "-", -1)
	row("agent RSS after scrapes (VmRSS)", fmt.Sprintf("%.1f MB", float64(r.rssSteadyBytes)/1e6), "<= 40 MB", float64(r.rssSteadyBytes)/40e6)
	row("agent peak RSS (VmHWM)", fmt.Sprintf("%.1f MB", float64(r.rssBytes)/1e6), "<= 40 MB", float64(r.rssBytes)/40e6)
	fmt.Fprintf(w, "\npush over remote_write to a loopback receiver: %d samples in %.2f s\n", r.pushSamples, r.pushSeconds)
	row("push throughput", fmt.Sprintf("%.0f samples/s", r.pushSamplesPerSec), "-", -1)
}
