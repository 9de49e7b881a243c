// Command ingest measures Ballast's storage paths side by side with Debian's
// Prometheus 2.42 on this machine, in one run:
//
//   - remote_write ingest: 100k series × 120 samples, 2000 samples per
//     request, 4 concurrent senders, into Ballast and into Prometheus 2.42
//     (--web.enable-remote-write-receiver), beside raw TSDB append measured
//     in-process in the same run;
//   - PromQL range query: sum by (instance) (rate(x[5m])) over 10k series,
//     1 h at 15 s step, over HTTP against both;
//   - rule evaluation: the built-in rules over 1000 hosts, 10k VMs and 300
//     OSDs (20 min of data), each server evaluating them itself.
//
// Every figure is printed beside its baseline as a ratio, with the target.
// Usage: go run ./bench/ingest [-ballast bin/ballast] [-prometheus prometheus]
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/ballast-cloud/ballast/collector/bus"
	"github.com/ballast-cloud/ballast/collector/prw"
	"github.com/ballast-cloud/ballast/tsdb"
)

func main() {
	var (
		ballastBin = flag.String("ballast", "bin/ballast", "ballast binary")
		promBin    = flag.String("prometheus", "prometheus", "Prometheus 2.42 binary (Debian package prometheus)")
		nSeries    = flag.Int("series", 100_000, "series for the ingest benchmark")
		nSamples   = flag.Int("samples", 120, "samples per series")
		perReq     = flag.Int("per-request", 2000, "samples per remote-write request")
		senders    = flag.Int("senders", 4, "concurrent senders")
		qSeries    = flag.Int("query-series", 10_000, "series for the query benchmark")
		qReps      = flag.Int("query-reps", 21, "query repetitions (median reported)")
		only       = flag.String("only", "", "run only 'ingest', 'query' or 'rules'")
		ruleFile   = flag.String("rules", "deploy/rules/ballast.rules.yml", "rule file for the rules benchmark")
		ruleHosts  = flag.Int("rule-hosts", 1000, "hosts (8 CPUs, 2 disks) for the rules benchmark")
		ruleVMs    = flag.Int("rule-vms", 10_000, "VMs for the rules benchmark")
		ruleOSDs   = flag.Int("rule-osds", 300, "Ceph OSDs for the rules benchmark")
	)
	flag.Parse()
	log.SetFlags(0)
	work, err := os.MkdirTemp("", "ballast-bench")
	check(err)
	defer os.RemoveAll(work)

	fmt.Printf("Ballast storage benchmark — %s, GOMAXPROCS=%d, load average %s\n", time.Now().UTC().Format(time.RFC3339), 2, loadavg())
	if *only == "" || *only == "ingest" {
		benchIngest(work, *ballastBin, *promBin, *nSeries, *nSamples, *perReq, *senders)
	}
	if *only == "" || *only == "query" {
		benchQuery(work, *ballastBin, *promBin, *qSeries, *qReps)
	}
	if *only == "" || *only == "rules" {
		benchRules(work, *ballastBin, *promBin, *ruleFile, *ruleHosts, *ruleVMs, *ruleOSDs)
	}
}

// result of one ingest run.
type result struct {
	name    string
	samples int
	wall    time.Duration
	cpu     time.Duration // CPU of the receiving process
}

func (r result) rate() float64   { return float64(r.samples) / r.wall.Seconds() }
func (r result) perCPU() float64 { return float64(r.samples) / r.cpu.Seconds() }
func (r result) String() string {
	return fmt.Sprintf("%-34s %12.0f samples/s %12.0f samples/CPU-s  (%d samples in %s, CPU %s)",
		r.name, r.rate(), r.perCPU(), r.samples, r.wall.Round(time.Millisecond), r.cpu.Round(time.Millisecond))
}

func benchIngest(work, ballastBin, promBin string, nSeries, nSamples, perReq, senders int) {
	fmt.Printf("\n== remote_write ingest: %d series × %d samples, %d samples/request, %d senders\n", nSeries, nSamples, perReq, senders)
	base := time.Now().Add(-time.Duration(nSamples) * 15 * time.Second).Truncate(time.Second)
	lsets := make([]labels.Labels, nSeries)
	for i := range lsets {
		lsets[i] = labels.FromStrings("__name__", fmt.Sprintf("bench_metric_%d", i%50), "instance", fmt.Sprintf("host-%d:9100", i/1000), "job", "node", "series", strconv.Itoa(i))
	}
	// Pre-encode every request so the load generator spends its CPU on
	// sending only. Sender k owns series [k*n/senders, (k+1)*n/senders).
	reqs := make([][][]byte, senders)
	for k := 0; k < senders; k++ {
		lo, hi := k*nSeries/senders, (k+1)*nSeries/senders
		for s := 0; s < nSamples; s++ {
			ts := base.Add(time.Duration(s) * 15 * time.Second).UnixMilli()
			for from := lo; from < hi; from += perReq {
				to := min(from+perReq, hi)
				b := &bus.SampleBatch{}
				for i := from; i < to; i++ {
					b.Series = append(b.Series, bus.Series{Labels: lsets[i], Samples: []bus.Sample{{T: ts, V: float64(s) + float64(i)*0.001}}})
				}
				reqs[k] = append(reqs[k], prw.EncodeSnappy(b))
			}
		}
	}
	total := nSeries * nSamples
	var bytesTotal int
	for _, rs := range reqs {
		for _, r := range rs {
			bytesTotal += len(r)
		}
	}
	fmt.Printf("   %d requests, %.1f bytes/sample on the wire\n", total/perReq, float64(bytesTotal)/float64(total))

	raw := rawAppend(filepath.Join(work, "raw"), lsets, base, nSamples)
	fmt.Println("  ", raw)

	prom := startPrometheus(work, promBin, "prom-ingest", "")
	pr := send(prom, reqs, total, "Prometheus 2.42 remote-write")
	prom.stop()
	fmt.Println("  ", pr)

	bal := startBallast(work, ballastBin, "ballast-ingest", "")
	br := send(bal, reqs, total, "Ballast remote-write")
	bal.stop()
	fmt.Println("  ", br)

	fmt.Println()
	ratio("Ballast vs Prometheus 2.42 (wall)", br.rate()/pr.rate(), 3, true)
	ratio("Ballast vs Prometheus 2.42 (per CPU-s)", br.perCPU()/pr.perCPU(), 3, true)
	ratio("Ballast vs raw TSDB append (wall)", br.rate()/raw.rate(), 0.5, true)
}

func ratio(what string, r, target float64, higherBetter bool) {
	ok := r >= target
	cmp := "≥"
	if !higherBetter {
		ok = r <= target
		cmp = "≤"
	}
	verdict := "MET"
	if !ok {
		verdict = "MISSED"
	}
	fmt.Printf("   %-42s %6.2f×   target %s %.2g×   %s\n", what, r, cmp, target, verdict)
}

// rawAppend appends the same samples straight into an embedded TSDB, one
// goroutine, cached series references, commit every 10k samples.
func rawAppend(dir string, lsets []labels.Labels, base time.Time, nSamples int) result {
	st, err := tsdb.Open(tsdb.Config{Path: dir}, nil, nil)
	check(err)
	defer st.Close()
	refs := make([]tsdb.Ref, len(lsets))
	cpu0 := selfCPU()
	start := time.Now()
	app := st.Appender(context.Background())
	n := 0
	for s := 0; s < nSamples; s++ {
		ts := base.Add(time.Duration(s) * 15 * time.Second).UnixMilli()
		for i, ls := range lsets {
			refs[i], err = app.Append(refs[i], ls, ts, float64(s)+float64(i)*0.001)
			check(err)
			if n++; n%10_000 == 0 {
				check(app.Commit())
				app = st.Appender(context.Background())
			}
		}
	}
	check(app.Commit())
	return result{name: "raw TSDB append (in-process)", samples: n, wall: time.Since(start), cpu: selfCPU() - cpu0}
}

// send posts every request, sender k its own list in order.
func send(t *target, reqs [][][]byte, total int, name string) result {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: len(reqs)}}
	var failed atomic.Int64
	cpu0 := procCPU(t.cmd.Process.Pid)
	start := time.Now()
	var wg sync.WaitGroup
	for _, rs := range reqs {
		wg.Add(1)
		go func(rs [][]byte) {
			defer wg.Done()
			for _, body := range rs {
				for attempt := 0; ; attempt++ {
					code := post(client, t.url+"/api/v1/write", body)
					if code/100 == 2 {
						break
					}
					if code/100 == 4 || attempt > 20 {
						failed.Add(1)
						break
					}
					time.Sleep(50 * time.Millisecond)
				}
			}
		}(rs)
	}
	wg.Wait()
	wall := time.Since(start)
	cpu := procCPU(t.cmd.Process.Pid) - cpu0
	if f := failed.Load(); f > 0 {
		log.Printf("   WARNING: %s refused %d requests", name, f)
	}
	return result{name: name, samples: total, wall: wall, cpu: cpu}
}

func post(c *http.Client, u string, body []byte) int {
	req, _ := http.NewRequest(http.MethodPost, u, bytes.NewReader(body))
	req.Header.Set("Content-Encoding", "snappy")
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	resp, err := c.Do(req)
	if err != nil {
		return 599
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func benchQuery(work, ballastBin, promBin string, nSeries, reps int) {
	fmt.Printf("\n== PromQL range query over HTTP: sum by (instance) (rate(node_cpu_seconds_total[5m])), %d series, 1h @ 15s\n", nSeries)
	end := time.Now().Truncate(time.Minute)
	start := end.Add(-65 * time.Minute)
	var bodies [][]byte
	modes := []string{"user", "system", "idle", "iowait", "irq"}
	perInstance := 100
	for s := 0; s <= 65*4; s++ {
		ts := start.Add(time.Duration(s) * 15 * time.Second).UnixMilli()
		b := &bus.SampleBatch{}
		for i := 0; i < nSeries; i++ {
			inst := i / perInstance
			ls := labels.FromStrings("__name__", "node_cpu_seconds_total", "cpu", strconv.Itoa((i%perInstance)/len(modes)),
				"instance", fmt.Sprintf("host-%03d", inst), "job", "node", "mode", modes[i%len(modes)])
			b.Series = append(b.Series, bus.Series{Labels: ls, Samples: []bus.Sample{{T: ts, V: float64(s)*15*0.1 + float64(i%7)}}})
			if len(b.Series) == 2000 {
				bodies = append(bodies, prw.EncodeSnappy(b))
				b = &bus.SampleBatch{}
			}
		}
		if len(b.Series) > 0 {
			bodies = append(bodies, prw.EncodeSnappy(b))
		}
	}
	q := url.Values{
		"query": {`sum by (instance) (rate(node_cpu_seconds_total[5m]))`},
		"start": {strconv.FormatInt(end.Add(-time.Hour).Unix(), 10)},
		"end":   {strconv.FormatInt(end.Unix(), 10)},
		"step":  {"15"},
	}
	measure := func(t *target, name string) time.Duration {
		client := &http.Client{}
		for _, body := range bodies {
			if code := post(client, t.url+"/api/v1/write", body); code/100 != 2 {
				fatal("%s: ingest for query benchmark got HTTP %d", name, code)
			}
		}
		var times []time.Duration
		for i := 0; i < reps+1; i++ {
			t0 := time.Now()
			resp, err := client.PostForm(t.url+"/api/v1/query_range", q)
			check(err)
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || !bytes.Contains(body, []byte(`"host-099"`)) && nSeries >= 10_000 {
				fatal("%s: query failed: HTTP %d %.200s", name, resp.StatusCode, body)
			}
			if i > 0 { // the first run warms caches
				times = append(times, time.Since(t0))
			}
		}
		sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
		med := times[len(times)/2]
		fmt.Printf("   %-34s median %8s  p90 %8s  (%d reps)\n", name, med.Round(time.Millisecond), times[len(times)*9/10].Round(time.Millisecond), reps)
		return med
	}
	prom := startPrometheus(work, promBin, "prom-query", "")
	pm := measure(prom, "Prometheus 2.42")
	prom.stop()
	bal := startBallast(work, ballastBin, "ballast-query", "")
	bm := measure(bal, "Ballast")
	bal.stop()
	fmt.Println()
	ratio("Ballast / Prometheus 2.42 query time", float64(bm)/float64(pm), 0.6, false)
}

// target is a receiving server process.
type target struct {
	cmd *exec.Cmd
	url string
}

func (t *target) stop() {
	_ = t.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { _ = t.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		_ = t.cmd.Process.Kill()
		<-done
	}
}

func startPrometheus(work, bin, name, extra string) *target {
	dir := filepath.Join(work, name)
	check(os.MkdirAll(dir, 0o755))
	cfg := filepath.Join(dir, "prometheus.yml")
	check(os.WriteFile(cfg, []byte("global:\n  scrape_interval: 15s\n"+extra), 0o644))
	addr := freeAddr()
	cmd := exec.Command(bin, "--config.file", cfg, "--storage.tsdb.path", filepath.Join(dir, "data"),
		"--web.listen-address", addr, "--web.enable-remote-write-receiver", "--log.level", "warn")
	return start(cmd, addr, name)
}

// startBallast runs the server with the same minimal configuration
// Prometheus gets: no scrape jobs, no in-process exporter and no simulator
// (the embedded default's simulator would append current samples, making the
// query benchmark's hour-old data too old to accept, and spend CPU).
func startBallast(work, bin, name, extra string) *target {
	dir := filepath.Join(work, name)
	check(os.MkdirAll(dir, 0o755))
	cfg := filepath.Join(dir, "ballast.yml")
	check(os.WriteFile(cfg, []byte("global:\n  scrape_interval: 15s\n"+extra), 0o644))
	addr := freeAddr()
	cmd := exec.Command(bin, "server", "--config.file", cfg, "--storage.tsdb.path", filepath.Join(dir, "data"),
		"--web.listen-address", addr, "--log.level", "warn")
	return start(cmd, addr, name)
}

// running lists the started servers, so fatal stops them before exiting.
var running []*target

// fatal stops every started server, then exits with the message.
func fatal(format string, args ...any) {
	for _, t := range running {
		_ = t.cmd.Process.Kill()
	}
	log.Fatalf(format, args...)
}

func start(cmd *exec.Cmd, addr, name string) *target {
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	check(cmd.Start())
	t := &target{cmd: cmd, url: "http://" + addr}
	running = append(running, t)
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(t.url + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return t
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	_ = cmd.Process.Kill()
	fatal("%s did not become ready:\n%s", name, logs.String())
	return nil
}

func freeAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	check(err)
	defer l.Close()
	return l.Addr().String()
}

// procCPU returns utime+stime of pid from /proc (clock ticks of 10 ms).
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	check(err)
	// Fields after the ")" of comm: state is field 3; utime 14, stime 15.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

func selfCPU() time.Duration { return procCPU(os.Getpid()) }

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Join(strings.Fields(string(b))[:3], " ")
}

func check(err error) {
	if err != nil && !errors.Is(err, context.Canceled) {
		fatal("%v", err)
	}
}
