// Command exporters measures the node agent against its targets at 1000
// libvirt domains (libvirt's in-process test driver): scrape latency and
// allocations of the instance collector, a whole /metrics scrape of the
// default collectors over HTTP, resident memory, and push throughput over
// remote_write to a receiver on loopback.
//
//	go run ./bench/exporters [-domains 1000] [-scrapes 30] [-push-batches 20] \
//	    [-agent bin/ballast] [-cpuprofile f] [-memprofile f]
//
// With -agent, the agent binary itself is started (`ballast exporter`, the
// default collectors, on the same simulated host) and scraped over HTTP; its
// resident memory is the process's VmRSS from /proc after the scrapes, which
// is what the RSS target is about. Without it, the memory figures are those
// of this benchmark process, which holds the instance collector only.
//
// Each figure is printed beside its target with the ratio (figure/target for
// "at most" targets: below 1 is met).
package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/ballast-cloud/ballast/exporters"
	"github.com/ballast-cloud/ballast/exporters/push"
	"github.com/ballast-cloud/ballast/exporters/push/pushtest"
	"github.com/ballast-cloud/ballast/exporters/virt"
	"github.com/ballast-cloud/ballast/exporters/virt/virttest"
)

type options struct {
	domains, scrapes, pushBatches int
	// agent is the ballast binary to measure as a process; empty: skip.
	agent string
	// agentArgs are added to the agent's command line.
	agentArgs stringList
	// interval is the pause between the agent's timed scrapes (Prometheus
	// scrapes every 15 s or so; 0 scrapes back to back).
	interval time.Duration
	// cpuProfile and memProfile, when set, receive pprof profiles of the
	// timed in-process scrapes (CPU) and of the allocations up to their end.
	cpuProfile, memProfile string
}

// latencies summarises timed scrapes.
type latencies struct {
	p50, max time.Duration
}

func summarise(ds []time.Duration) latencies {
	slices.Sort(ds)
	return latencies{p50: ds[len(ds)/2], max: ds[len(ds)-1]}
}

// memory is a process's resident memory, from /proc/<pid>/status and
// /proc/<pid>/smaps after the scrapes.
type memory struct {
	rss, hwm, anon, file uint64
	// binary is what RssFile holds of the executable itself.
	binary uint64
}

type result struct {
	domains int

	// The instance collector alone, gathered in process.
	series          int
	gather          latencies
	cpuPerScrape    time.Duration // user+system CPU of the whole process
	allocsPerScrape uint64
	bytesPerScrape  uint64
	rssBase         uint64 // this process before any collector ran
	testDriver      uint64 // what connecting to the test driver adds to RssAnon
	mem             memory // this process after the scrapes
	goHeapBytes     uint64 // Go heap in use (HeapInuse)
	goSysBytes      uint64 // memory the Go runtime holds from the OS

	// A whole scrape of the default collectors over HTTP, in process.
	httpSeries int
	httpBytes  int // gzip-compressed body
	http       latencies
	httpCPU    time.Duration // per scrape, client and server alike

	// The agent binary, when -agent is given, started as it is (its file
	// pages already cached, as after a build) and from a copy whose pages
	// are not cached (as after a reboot).
	agentSeries int
	agent       latencies
	agentCPU    time.Duration // per scrape, the agent process alone
	agentMem    memory
	agentCold   memory
	// agentFloor is the uncached copy with every collector switched off:
	// what the binary costs before it collects anything.
	agentFloor memory

	pushSamples       int
	pushSeconds       float64
	pushSamplesPerSec float64
}

func main() {
	o := options{}
	flag.IntVar(&o.domains, "domains", 1000, "domains on the simulated host")
	flag.IntVar(&o.scrapes, "scrapes", 30, "scrapes to time")
	flag.IntVar(&o.pushBatches, "push-batches", 20, "scrapes pushed in the throughput run")
	flag.StringVar(&o.agent, "agent", "", "also start this ballast binary's exporter on the simulated host and measure it")
	flag.Var(&o.agentArgs, "agent-arg", "an argument added to the agent's command line (repeatable), e.g. -agent-arg=--no-runtime.release-memory")
	flag.DurationVar(&o.interval, "interval", 0, "pause between the agent's timed scrapes (0: back to back)")
	flag.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the timed in-process scrapes to this file")
	flag.StringVar(&o.memProfile, "memprofile", "", "write an allocation profile of the timed in-process scrapes to this file")
	flag.Parse()
	r, err := run(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	report(os.Stdout, o, r)
}

func run(o options) (*result, error) {
	r := &result{domains: o.domains, rssBase: procStatus("self", "VmRSS:")}
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
	if r.testDriver, err = testDriverMemory(uri, logger); err != nil {
		return nil, err
	}
	stopProfile, err := startProfiles(o)
	if err != nil {
		return nil, err
	}
	exp, err := benchGather(o, r, uri, logger)
	if err != nil {
		return nil, err
	}
	defer exp.Close()
	if err := benchHTTP(o, r, uri, dir, logger); err != nil {
		return nil, err
	}
	if err := stopProfile(); err != nil {
		return nil, err
	}
	if err := benchPush(o, r, exp, dir, logger); err != nil {
		return nil, err
	}
	if o.agent != "" {
		if r.agent, r.agentSeries, r.agentCPU, r.agentMem, err = benchAgent(o, o.agent, o.scrapes, uri, dir); err != nil {
			return nil, fmt.Errorf("agent %s: %w", o.agent, err)
		}
		cold, err := uncachedCopy(o.agent, dir)
		if err != nil {
			return nil, err
		}
		if _, _, _, r.agentCold, err = benchAgent(o, cold, o.scrapes, uri, dir); err != nil {
			return nil, fmt.Errorf("agent %s: %w", cold, err)
		}
		if cold, err = uncachedCopy(o.agent, dir); err != nil {
			return nil, err
		}
		floor := o
		floor.agentArgs = []string{"--no-collector.instance", "--no-collector.inventory", "--no-collector.node",
			"--no-collector.diskio", "--no-collector.ceph"}
		if _, _, _, r.agentFloor, err = benchAgent(floor, cold, 1, uri, dir); err != nil {
			return nil, fmt.Errorf("agent %s without collectors: %w", cold, err)
		}
	}
	return r, nil
}

// testDriverMemory is what libvirt's test driver holds in the process that
// connects to it: the simulated host, parsed. An agent on a real host talks
// to libvirtd instead and does not hold it. It is the growth of RssAnon
// over connecting and listing the domains, with the C heap trimmed on both
// sides.
func testDriverMemory(uri string, logger *slog.Logger) (uint64, error) {
	c, err := virt.New(virt.Config{URI: uri}, logger)
	if err != nil {
		return 0, err
	}
	runtime.GC()
	virt.ReleaseCMemory()
	before := procStatus("self", "RssAnon:")
	if _, err := c.Conn(); err != nil {
		return 0, err
	}
	runtime.GC()
	virt.ReleaseCMemory()
	after := procStatus("self", "RssAnon:")
	if err := c.Close(); err != nil {
		return 0, err
	}
	return after - before, nil
}

// benchGather times Gather of the instance collector alone, with no
// listing cache: every scrape lists the domains and pays for every libvirt
// call. It returns the exporter for the push run.
func benchGather(o options, r *result, uri string, logger *slog.Logger) (*exporters.Exporter, error) {
	exp, err := exporters.New(exporters.Config{
		Enabled: map[string]bool{"instance": true, "inventory": false, "diskio": false, "node": false},
		Libvirt: virt.Config{URI: uri, DomainCacheTTL: -1},
	}, logger)
	if err != nil {
		return nil, err
	}
	if _, err := exp.Gatherer().Gather(); err != nil { // connect and warm up
		_ = exp.Close()
		return nil, err
	}
	var durations []time.Duration
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	cpuBefore := cpuTime()
	for range o.scrapes {
		start := time.Now()
		mfs, err := exp.Gatherer().Gather()
		durations = append(durations, time.Since(start))
		if err != nil {
			_ = exp.Close()
			return nil, err
		}
		r.series = 0
		for _, mf := range mfs {
			r.series += len(mf.GetMetric())
		}
	}
	r.cpuPerScrape = (cpuTime() - cpuBefore) / time.Duration(o.scrapes)
	runtime.ReadMemStats(&after)
	r.gather = summarise(durations)
	r.allocsPerScrape = (after.Mallocs - before.Mallocs) / uint64(o.scrapes)
	r.bytesPerScrape = (after.TotalAlloc - before.TotalAlloc) / uint64(o.scrapes)
	r.mem = readMemory("self")
	r.goHeapBytes, r.goSysBytes = after.HeapInuse, after.Sys-after.HeapReleased
	return exp, nil
}

// benchHTTP times whole /metrics scrapes of the default collectors (node,
// diskio on this host's /proc and /sys, instance, inventory) with the
// agent's own process metrics, through the handler `ballast exporter`
// serves, as Prometheus asks for them (text format, gzip).
func benchHTTP(o options, r *result, uri, dir string, logger *slog.Logger) error {
	exp, err := exporters.New(exporters.Config{
		Libvirt: virt.Config{URI: uri},
		Host:    virt.HostPolicy{DiskPath: dir},
	}, logger)
	if err != nil {
		return err
	}
	defer exp.Close()
	self := prometheus.NewRegistry()
	self.MustRegister(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), collectors.NewGoCollector())
	srv := httptest.NewServer(exp.Handler(self))
	defer srv.Close()
	if _, _, _, err := scrapeHTTP(srv.URL, 1, 0); err != nil { // connect, read every description
		return err
	}
	cpuBefore := cpuTime()
	durations, series, size, err := scrapeHTTP(srv.URL, o.scrapes, 0)
	if err != nil {
		return err
	}
	r.httpCPU = (cpuTime() - cpuBefore) / time.Duration(o.scrapes+1)
	r.http, r.httpSeries, r.httpBytes = summarise(durations), series, size
	return nil
}

// scrapeHTTP scrapes url once to warm up, then n times, and returns the
// times to the last byte, the series of the last scrape and its size.
func scrapeHTTP(url string, n int, interval time.Duration) (durations []time.Duration, series, size int, err error) {
	client := &http.Client{Timeout: time.Minute}
	for i := range n + 1 {
		if i > 0 {
			time.Sleep(interval)
		}
		req, err := http.NewRequest(http.MethodGet, url, nil)
		if err != nil {
			return nil, 0, 0, err
		}
		req.Header.Set("Accept", "text/plain;version=0.0.4")
		req.Header.Set("Accept-Encoding", "gzip")
		start := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			return nil, 0, 0, err
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return nil, 0, 0, err
		}
		if resp.StatusCode != http.StatusOK {
			return nil, 0, 0, fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		if i > 0 {
			durations = append(durations, time.Since(start))
		}
		size = len(body)
		if i == n {
			if series, err = countSeries(body, resp.Header.Get("Content-Encoding") == "gzip"); err != nil {
				return nil, 0, 0, err
			}
		}
	}
	return durations, series, size, nil
}

func countSeries(body []byte, gzipped bool) (int, error) {
	var rd io.Reader = bytes.NewReader(body)
	if gzipped {
		zr, err := gzip.NewReader(rd)
		if err != nil {
			return 0, err
		}
		rd = zr
	}
	n := 0
	sc := bufio.NewScanner(rd)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if line := sc.Bytes(); len(line) > 0 && line[0] != '#' {
			n++
		}
	}
	return n, sc.Err()
}

// benchPush pushes the instance collector's scrape through the
// remote_write publisher.
func benchPush(o options, r *result, exp *exporters.Exporter, dir string, logger *slog.Logger) error {
	recv, err := pushtest.Start()
	if err != nil {
		return err
	}
	defer recv.Stop()
	rw, err := push.NewRemoteWrite(push.RemoteWriteConfig{URL: recv.URL(), Dir: dir + "/queue", BatchSendDeadline: 100 * time.Millisecond},
		prometheus.NewRegistry(), logger)
	if err != nil {
		return err
	}
	defer rw.Close()
	mfs, err := exp.Gatherer().Gather()
	if err != nil {
		return err
	}
	extra := labels.FromStrings("instance", "bench:9177", "job", "ballast-exporter")
	// Timestamps start a second ahead: the WAL watcher sends only samples
	// newer than its own start.
	base := time.Now().UnixMilli() + 1000
	start := time.Now()
	for i := range o.pushBatches {
		b := push.Batch(mfs, base+int64(i)*15000, extra)
		if err := rw.PublishSamples(context.Background(), b); err != nil {
			return err
		}
		r.pushSamples += b.Len()
	}
	for recv.Distinct() < r.pushSamples {
		if time.Since(start) > 5*time.Minute {
			return fmt.Errorf("push: %d of %d samples arrived in 5m", recv.Distinct(), r.pushSamples)
		}
		time.Sleep(5 * time.Millisecond)
	}
	r.pushSeconds = time.Since(start).Seconds()
	r.pushSamplesPerSec = float64(r.pushSamples) / r.pushSeconds
	return nil
}

// benchAgent starts `<agent> exporter` with its default collectors on the
// simulated host, scrapes it like Prometheus and reads its memory.
func benchAgent(o options, agent string, scrapes int, uri, dir string) (l latencies, series int, cpu time.Duration, m memory, err error) {
	addr, err := freeAddr()
	if err != nil {
		return l, 0, 0, m, err
	}
	var logs bytes.Buffer
	args := append([]string{"exporter", "--web.listen-address=" + addr, "--libvirt.uri=" + uri,
		"--inventory.disk-path=" + dir, "--log.level=warn"}, o.agentArgs...)
	cmd := exec.Command(agent, args...)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		return l, 0, 0, m, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		<-exited
	}()
	url := "http://" + addr
	if err := waitHealthy(url+"/-/healthy", exited); err != nil {
		return l, 0, 0, m, fmt.Errorf("%w; its log:\n%s", err, logs.String())
	}
	pid := strconv.Itoa(cmd.Process.Pid)
	if _, _, _, err := scrapeHTTP(url+"/metrics", 0, 0); err != nil { // connect, read every description
		return l, 0, 0, m, err
	}
	before := procCPU(pid)
	durations, series, _, err := scrapeHTTP(url+"/metrics", scrapes, o.interval)
	if err != nil {
		return l, 0, 0, m, err
	}
	// The agent returns memory to the OS after each scrape, in the
	// background (--runtime.release-memory): read it once that is done.
	time.Sleep(time.Second)
	cpu = (procCPU(pid) - before) / time.Duration(scrapes+1)
	return summarise(durations), series, cpu, readMemory(pid), nil
}

// procCPU is the user and system CPU time process pid used so far, from
// /proc/<pid>/stat (clock ticks of 10 ms).
func procCPU(pid string) time.Duration {
	b, err := os.ReadFile(filepath.Join("/proc", pid, "stat"))
	if err != nil {
		return 0
	}
	// The command name, in parentheses, may hold spaces: count from after it.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// uncachedCopy copies the executable into dir and drops the copy's pages
// from the page cache, so that the process started from it reads only the
// pages it touches. A file just written (or one the kernel keeps in large
// folios) is mapped whole: its RSS is then the size of what was cached,
// not of what the process uses.
func uncachedCopy(path, dir string) (string, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	dst := filepath.Join(dir, "agent-uncached")
	f, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		return "", err
	}
	defer f.Close()
	if _, err := f.Write(src); err != nil {
		return "", err
	}
	if err := f.Sync(); err != nil {
		return "", err
	}
	const fadvDontNeed = 4 // POSIX_FADV_DONTNEED
	if _, _, e := syscall.Syscall6(syscall.SYS_FADVISE64, f.Fd(), 0, 0, fadvDontNeed, 0, 0); e != 0 {
		return "", fmt.Errorf("fadvise %s: %w", dst, e)
	}
	return dst, f.Close()
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func waitHealthy(url string, exited chan error) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			exited <- err // for the caller's wait
			return fmt.Errorf("exited before it was healthy: %v", err)
		default:
		}
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return errors.New("not healthy within 30s")
}

// startProfiles starts the CPU profile; the function it returns stops it
// and writes the allocation profile.
func startProfiles(o options) (func() error, error) {
	var cpu *os.File
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			return nil, err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return nil, fmt.Errorf("cpu profile: %w", err)
		}
		cpu = f
	}
	return func() error {
		if cpu != nil {
			pprof.StopCPUProfile()
			if err := cpu.Close(); err != nil {
				return err
			}
		}
		if o.memProfile == "" {
			return nil
		}
		f, err := os.Create(o.memProfile)
		if err != nil {
			return err
		}
		if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
			f.Close()
			return fmt.Errorf("memory profile: %w", err)
		}
		return f.Close()
	}, nil
}

// cpuTime is the CPU time the process used so far, user and system, all
// threads (GC and libvirt's included).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// readMemory reads the resident memory of process pid ("self" for this
// one).
func readMemory(pid string) memory {
	m := memory{rss: procStatus(pid, "VmRSS:"), hwm: procStatus(pid, "VmHWM:"),
		anon: procStatus(pid, "RssAnon:"), file: procStatus(pid, "RssFile:")}
	exe, err := os.Readlink(filepath.Join("/proc", pid, "exe"))
	if err != nil {
		return m
	}
	b, err := os.ReadFile(filepath.Join("/proc", pid, "smaps"))
	if err != nil {
		return m
	}
	mine := false
	for line := range strings.SplitSeq(string(b), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 5 && strings.Contains(f[0], "-"): // a mapping's header
			mine = len(f) >= 6 && f[5] == exe
		case mine && len(f) >= 2 && f[0] == "Rss:":
			kb, _ := strconv.ParseUint(f[1], 10, 64)
			m.binary += kb * 1024
		}
	}
	return m
}

// procStatus reads a size field of /proc/<pid>/status, in bytes.
func procStatus(pid, field string) uint64 {
	b, err := os.ReadFile(filepath.Join("/proc", pid, "status"))
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == field {
			kb, _ := strconv.ParseUint(f[1], 10, 64)
			return kb * 1024
		}
	}
	return 0
}

func report(w io.Writer, o options, r *result) {
	row := func(name, measured, target string, ratio float64) {
		verdict := "met"
		if ratio > 1 {
			verdict = "MISSED"
		}
		if ratio < 0 {
			verdict, ratio = "-", 0
		}
		fmt.Fprintf(w, "%-38s %16s %12s %8.2f %s\n", name, measured, target, ratio, verdict)
	}
	ms := func(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }
	mb := func(b uint64) string { return fmt.Sprintf("%.1f MB", float64(b)/1e6) }
	latency := func(name string, l latencies) {
		row(name+" p50", ms(l.p50), "<= 100 ms", float64(l.p50)/float64(100*time.Millisecond))
		row(name+" max", ms(l.max), "<= 100 ms", float64(l.max)/float64(100*time.Millisecond))
	}
	memRows := func(who string, m memory) {
		row(who+" RSS after the scrapes (VmRSS)", mb(m.rss), "<= 40 MB", float64(m.rss)/40e6)
		row("  anonymous (RssAnon)", mb(m.anon), "-", -1)
		row("  file-backed (RssFile)", mb(m.file), "-", -1)
		row("    of which the executable", mb(m.binary), "-", -1)
		row(who+" peak RSS (VmHWM)", mb(m.hwm), "<= 40 MB", float64(m.hwm)/40e6)
	}
	fmt.Fprintf(w, "%d domains on libvirt's test driver; %d scrapes each\n", r.domains, o.scrapes)
	fmt.Fprintf(w, "%-38s %16s %12s %8s\n", "figure", "measured", "target", "ratio")
	fmt.Fprintf(w, "\ninstance collector alone, Gather in process (%d series)\n", r.series)
	latency("scrape latency", r.gather)
	row("CPU time per scrape", ms(r.cpuPerScrape), "-", -1)
	row("allocations per scrape", strconv.FormatUint(r.allocsPerScrape, 10), "-", -1)
	row("bytes allocated per scrape", fmt.Sprintf("%.1f MiB", float64(r.bytesPerScrape)/(1<<20)), "-", -1)
	row("bench RSS before any collector ran", mb(r.rssBase), "-", -1)
	row("test driver's host, held in process", mb(r.testDriver), "-", -1)
	memRows("bench", r.mem)
	row("Go heap in use (HeapInuse)", mb(r.goHeapBytes), "-", -1)
	row("Go runtime memory from the OS", mb(r.goSysBytes), "-", -1)
	fmt.Fprintf(w, "\ndefault collectors over HTTP in process, text format + gzip (%d series, %.1f MB compressed)\n",
		r.httpSeries, float64(r.httpBytes)/1e6)
	latency("/metrics latency", r.http)
	row("CPU time per scrape (server and client)", ms(r.httpCPU), "-", -1)
	if o.agent != "" {
		fmt.Fprintf(w, "\nagent process: %s exporter, default collectors (%d series)\n", o.agent, r.agentSeries)
		latency("/metrics latency", r.agent)
		row("CPU time per scrape (agent)", ms(r.agentCPU), "-", -1)
		memRows("agent", r.agentMem)
		fmt.Fprintf(w, "the same, started from a copy not in the page cache\n")
		memRows("agent", r.agentCold)
		fmt.Fprintf(w, "the same copy with every collector off (what the binary costs before collecting)\n")
		memRows("agent", r.agentFloor)
	}
	fmt.Fprintf(w, "\npush over remote_write to a loopback receiver: %d samples in %.2f s\n", r.pushSamples, r.pushSeconds)
	row("push throughput", fmt.Sprintf("%.0f samples/s", r.pushSamplesPerSec), "-", -1)
}

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, " ") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }
