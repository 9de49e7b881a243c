package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/ballast-cloud/ballast/collector/bus"
	"github.com/ballast-cloud/ballast/collector/prw"
)

// binary is the ballast binary built once for the process-level tests.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ballast-bin")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "ballast")
	build := exec.Command("go", "build", "-o", binary, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build ballast:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func freePort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().String()
}

// proc is a running ballast server.
type proc struct {
	cmd  *exec.Cmd
	url  string
	logs *syncBuffer
	done chan error
}

// syncBuffer is a bytes.Buffer safe for the process's writers and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startServer runs `ballast server` with args and waits until it is ready.
func startServer(t testing.TB, dataDir string, args ...string) *proc {
	t.Helper()
	addr := clientSafePort(t)
	all := append([]string{"server", "--web.listen-address", addr, "--storage.tsdb.path", dataDir, "--log.level", "debug"}, args...)
	cmd := exec.Command(binary, all...)
	logs := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	require.NoError(t, cmd.Start())
	p := &proc{cmd: cmd, url: "http://" + addr, logs: logs, done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("server logs:\n%s", logs.String())
		}
	})
	require.Eventually(t, func() bool {
		resp, err := http.Get(p.url + "/-/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 60*time.Second, 50*time.Millisecond, "server did not become ready")
	return p
}

// startUnready starts a server that is not expected to become ready.
func startUnready(t testing.TB, dataDir, addr string, args ...string) *exec.Cmd {
	t.Helper()
	all := append([]string{"server", "--web.listen-address", addr, "--storage.tsdb.path", dataDir}, args...)
	cmd := exec.Command(binary, all...)
	logs := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("server logs:\n%s", logs.String())
		}
	})
	return cmd
}

// stop sends sig and waits for the process to exit.
func (p *proc) stop(t testing.TB, sig syscall.Signal) error {
	t.Helper()
	require.NoError(t, p.cmd.Process.Signal(sig))
	select {
	case err := <-p.done:
		p.done <- err // for the cleanup
		return err
	case <-time.After(60 * time.Second):
		t.Fatalf("server did not exit on %s", sig)
		return nil
	}
}

func (p *proc) api(t testing.TB) promv1.API {
	c, err := api.NewClient(api.Config{Address: p.url})
	require.NoError(t, err)
	return promv1.NewAPI(c)
}

// write sends one remote-write request and returns the HTTP status.
func (p *proc) write(t testing.TB, b *bus.SampleBatch) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, p.url+"/api/v1/write", bytes.NewReader(prw.EncodeSnappy(b)))
	require.NoError(t, err)
	req.Header.Set("Content-Encoding", "snappy")
	req.Header.Set("Content-Type", "application/x-protobuf")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func series(name string, base time.Time, n int, kv ...string) bus.Series {
	s := bus.Series{Labels: labels.FromStrings(append([]string{"__name__", name}, kv...)...)}
	for i := 0; i < n; i++ {
		s.Samples = append(s.Samples, bus.Sample{T: base.Add(time.Duration(i) * 15 * time.Second).UnixMilli(), V: float64(i)})
	}
	return s
}

// TestAPIConformance drives the server through the official Go client.
func TestAPIConformance(t *testing.T) {
	p := startServer(t, t.TempDir())
	ctx := context.Background()
	base := time.Now().Add(-30 * time.Minute).Truncate(time.Minute)
	b := &bus.SampleBatch{}
	for i := 0; i < 10; i++ {
		b.Series = append(b.Series, series("conf_requests_total", base, 100, "instance", fmt.Sprintf("host-%d", i), "job", "conf"))
	}
	require.Equal(t, http.StatusNoContent, p.write(t, b))
	c := p.api(t)

	v, _, _, err := c.Query(ctx, `sum(conf_requests_total)`, base.Add(99*15*time.Second))
	require.NoError(t, err)
	require.Equal(t, model.SampleValue(990), v.(model.Vector)[0].Value)

	v, _, _, err = c.QueryRange(ctx, `sum by (job) (rate(conf_requests_total[5m]))`, promv1.Range{Start: base.Add(10 * time.Minute), End: base.Add(20 * time.Minute), Step: 30 * time.Second})
	require.NoError(t, err)
	m := v.(model.Matrix)
	require.Len(t, m, 1)
	require.Len(t, m[0].Values, 21)
	require.InDelta(t, 10.0/15, float64(m[0].Values[0].Value), 1e-9)

	ss, _, _, err := c.Series(ctx, []string{`conf_requests_total{instance="host-3"}`}, base, time.Now())
	require.NoError(t, err)
	require.Equal(t, []model.LabelSet{{"__name__": "conf_requests_total", "instance": "host-3", "job": "conf"}}, ss)

	names, _, _, err := c.LabelNames(ctx, []string{`{job="conf"}`}, base, time.Now())
	require.NoError(t, err)
	require.Equal(t, model.LabelNames{"__name__", "instance", "job"}, names)

	vals, _, _, err := c.LabelValues(ctx, "instance", []string{`conf_requests_total`}, base, time.Now())
	require.NoError(t, err)
	require.Len(t, vals, 10)

	bi, err := c.Buildinfo(ctx)
	require.NoError(t, err)
	require.Equal(t, buildVersion, bi.Version)
	ri, err := c.Runtimeinfo(ctx)
	require.NoError(t, err)
	require.NotZero(t, ri.GoroutineCount)

	require.Eventually(t, func() bool {
		tr, err := c.Targets(ctx)
		if err != nil || len(tr.Active) != 2 {
			return false
		}
		for _, a := range tr.Active {
			if a.Health != promv1.HealthGood {
				return false
			}
		}
		return true
	}, 30*time.Second, 100*time.Millisecond, "scrape targets of the embedded default: ballast and this host")
	require.Eventually(t, func() bool {
		q := fmt.Sprintf(`node_memory_MemTotal_bytes{job="node",instance=%q} > 0`, strings.TrimPrefix(p.url, "http://"))
		v, _, _, err := c.Query(ctx, q, time.Now())
		return err == nil && len(v.(model.Vector)) == 1
	}, 30*time.Second, 100*time.Millisecond, "this host's metrics through the in-process exporter")

	_, err = c.Metadata(ctx, "", "")
	require.NoError(t, err)
	f, err := c.FormatQuery(ctx, `sum(rate(x[5m]))by(a)`)
	require.NoError(t, err)
	// client_golang returns the JSON string as sent; unquote it.
	require.Equal(t, `"sum by (a) (rate(x[5m]))"`, f)

	// Ballast scrapes itself: its own ingest counter is queryable.
	require.Eventually(t, func() bool {
		v, _, _, err := c.Query(ctx, `ballast_ingest_samples_received_total{source="remote_write"}`, time.Now())
		return err == nil && len(v.(model.Vector)) == 1 && v.(model.Vector)[0].Value >= 1000
	}, 40*time.Second, 200*time.Millisecond)

	// Errors come back as Prometheus errors through the client.
	_, _, _, err = c.Query(ctx, `sum(`, time.Now())
	var apiErr *promv1.Error
	require.ErrorAs(t, err, &apiErr)
	require.Equal(t, promv1.ErrBadData, apiErr.Type)

	for _, path := range []string{"/-/healthy", "/-/ready", "/metrics", "/ui/", "/exporter/metrics"} {
		resp, err := http.Get(p.url + path)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, 200, resp.StatusCode, path)
	}
}

// TestRestartKeepsAcknowledgedSamples kills the server without warning and
// checks every sample it acknowledged survives, then does the same with a
// graceful SIGTERM.
func TestRestartKeepsAcknowledgedSamples(t *testing.T) {
	dir := t.TempDir()
	base := time.Now().Add(-20 * time.Minute).Truncate(time.Second)
	countAt := func(p *proc) float64 {
		v, _, _, err := p.api(t).Query(context.Background(), `sum(count_over_time(restart_total[1h]))`, time.Now())
		require.NoError(t, err)
		vec := v.(model.Vector)
		if len(vec) == 0 {
			return 0
		}
		return float64(vec[0].Value)
	}

	p := startServer(t, dir)
	acked := 0
	for r := 0; r < 20; r++ {
		b := &bus.SampleBatch{}
		for i := 0; i < 50; i++ {
			b.Series = append(b.Series, series("restart_total", base.Add(time.Duration(r)*time.Second), 4, "i", fmt.Sprint(i), "round", fmt.Sprint(r)))
		}
		require.Equal(t, http.StatusNoContent, p.write(t, b))
		acked += b.Len()
	}
	require.Equal(t, float64(acked), countAt(p))
	_ = p.stop(t, syscall.SIGKILL)

	p = startServer(t, dir)
	require.Equal(t, float64(acked), countAt(p), "every acknowledged sample survives SIGKILL")

	b := &bus.SampleBatch{Series: []bus.Series{series("restart_total", base.Add(5*time.Minute), 10, "after", "kill")}}
	require.Equal(t, http.StatusNoContent, p.write(t, b))
	acked += b.Len()
	require.NoError(t, p.stop(t, syscall.SIGTERM), "graceful shutdown exits 0")
	require.Contains(t, p.logs.String(), "Closing storage")

	p = startServer(t, dir)
	require.Equal(t, float64(acked), countAt(p), "every acknowledged sample survives SIGTERM")
}

func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, yaml, args, want string
	}{
		{name: "unknown key", yaml: "storage:\n  tsdb:\n    pathh: x\n", want: `line 3: unknown key "pathh" in storage.tsdb`},
		{name: "unknown key in flow style", yaml: "storage: {tsdb: {pth: x}}\n", want: `line 1: unknown key "pth" in storage.tsdb`},
		{name: "unknown top-level key", yaml: "# typo\nstorge:\n  tsdb:\n    path: x\n", want: `line 2: unknown top-level key "storge"`},
		{name: "unknown keys", yaml: "web: {foo: 1}\ndecision:\n  bar: 2\n", want: "2 errors:\n  line 1: unknown key \"foo\" in web\n  line 3: unknown key \"bar\" in decision"},
		{name: "bad retention", yaml: "storage:\n  tsdb:\n    retention_time: 10x\n", want: `line 3: storage.tsdb.retention_time: "10x" is not a duration`},
		{name: "bad number", yaml: "query:\n  max_samples: lots\n", want: `line 2: query.max_samples: "lots" is not a whole number`},
		{name: "bad list", yaml: "exporter:\n  collectors: node\n", want: `line 2: exporter.collectors: "node" is not a list`},
		{name: "bad engine duration", yaml: "decision:\n  default_time_limit: 30\n", want: `line 2: decision.default_time_limit: "30" is not a duration`},
		{name: "bad wal compression", yaml: "storage:\n  tsdb:\n    wal_compression: lz4\n", want: "storage.tsdb.wal_compression"},
		{name: "bad scrape config", yaml: "scrape_configs:\n  - job_name: a\n    scrape_intervall: 5s\n", want: `line 3: unknown key "scrape_intervall" in scrape_configs[0]`},
		{name: "bad scrape config in flow style", yaml: "storage: {tsdb: {path: d}}\nscrape_configs: [{job_name: a}, {job_name: b, metrics_pth: /m}]\n",
			want: `line 2: unknown key "metrics_pth" in scrape_configs[1]`},
		{name: "bad scrape config deep", yaml: "scrape_configs:\n  - job_name: a\n    static_configs:\n      - targets: ['x:1']\n        labelz: {}\n",
			want: `line 5: unknown key "labelz" in scrape_configs[0].static_configs[0]`},
		{name: "bad scrape interval", yaml: "scrape_configs:\n  - job_name: a\n    scrape_interval: 5q\n", want: `line 3: scrape_configs[0].scrape_interval: "5q" is not a duration`},
		{name: "bad scrape timeout", yaml: "scrape_configs: [{job_name: a}, {job_name: b, scrape_timeout: abc}]\n", want: `line 1: scrape_configs[1].scrape_timeout: "abc" is not a duration`},
		{name: "bad global interval", yaml: "global:\n  scrape_interval: 10x\n", want: `line 2: global.scrape_interval: "10x" is not a duration`},
		{name: "bad refresh interval", yaml: "scrape_configs:\n  - job_name: a\n    file_sd_configs:\n      - files: [x.yml]\n        refresh_interval: 5k\n",
			want: `line 5: scrape_configs[0].file_sd_configs[0].refresh_interval: "5k" is not a duration`},
		{name: "bad remote write deadline", yaml: "remote_write:\n  - url: http://x/\n    queue_config:\n      batch_send_deadline: 1t\n",
			want: `line 4: remote_write[0].queue_config.batch_send_deadline: "1t" is not a duration`},
		{name: "duplicate job", yaml: "scrape_configs:\n  - job_name: a\n  - job_name: a\n", want: `found multiple scrape configs with job name "a"`},
		{name: "bad remote url", yaml: "query:\n  remote_url: not a url\n", want: "query.remote_url"},
		{name: "missing file", args: "--config.file=/nonexistent.yml", want: "config.file"},
		{name: "bad flag", args: "--storage.tsdb.retention.time=forever", want: "retention.time"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"server", "--web.listen-address", freePort(t), "--storage.tsdb.path", filepath.Join(dir, tc.name)}
			var f string
			if tc.yaml != "" {
				f = filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".yml")
				require.NoError(t, os.WriteFile(f, []byte(tc.yaml), 0o644))
				args = append(args, "--config.file", f)
			}
			if tc.args != "" {
				args = append(args, tc.args)
			}
			out, err := exec.Command(binary, args...).CombinedOutput()
			var ee *exec.ExitError
			require.ErrorAs(t, err, &ee, "%s", out)
			require.Equal(t, 2, ee.ExitCode(), "%s", out)
			require.Contains(t, string(out), tc.want)
			// Errors in decoding the file name it and the line (checks
			// after flags are applied name the key only: its value may
			// come from a flag).
			if strings.Contains(tc.want, "line ") {
				require.Contains(t, string(out), "ballast server: config.file "+f+": ", "the file is named")
			}
			// Go types mean nothing to an operator.
			require.NotRegexp(t, `in type|struct \{|main\.|config\.ScrapeConfig|time\.Duration`, string(out))
		})
	}
}

func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"-h"}, {"server", "--help"}, {"help", "server"}, {"help"}} {
		out, err := exec.Command(binary, args...).CombinedOutput()
		require.NoError(t, err, "%s", out)
		require.Contains(t, string(out), "server")
	}
	// Without a command: the help on stderr, exit 2.
	for _, args := range [][]string{nil, {"--log.level", "debug"}} {
		var stdout, stderr bytes.Buffer
		cmd := exec.Command(binary, args...)
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		var ee *exec.ExitError
		require.ErrorAs(t, err, &ee, "%v: %s", args, stderr.String())
		require.Equal(t, 2, ee.ExitCode(), "%v", args)
		require.Empty(t, stdout.String(), "%v", args)
		require.True(t, strings.HasPrefix(stderr.String(), "ballast: no command given\n"), "%v: %s", args, stderr.String())
		for _, want := range []string{"usage: ballast", "server", "exporter", "plan"} {
			require.Contains(t, stderr.String(), want, "%v", args)
		}
	}
	out, err := exec.Command(binary, "server", "--help").CombinedOutput()
	require.NoError(t, err)
	for _, f := range []string{"--config.file", "--web.listen-address", "--storage.tsdb.path", "--storage.tsdb.retention.time", "--query.remote-url", "--log.level"} {
		require.Contains(t, string(out), f)
	}
	out, err = exec.Command(binary, "version").CombinedOutput()
	require.NoError(t, err)
	require.Contains(t, string(out), "ballast, version")
}

// TestReloadOnSIGHUP changes scrape_configs and sends SIGHUP: the new job is
// scraped; a broken file is refused and the running configuration kept.
func TestReloadOnSIGHUP(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "ballast.yml")
	write := func(s string) { require.NoError(t, os.WriteFile(cfg, []byte(s), 0o644)) }
	write("scrape_configs: []\n")
	p := startServer(t, filepath.Join(dir, "data"), "--config.file", cfg)
	const (
		successful = "ballast_config_last_reload_successful"
		successAt  = "ballast_config_last_reload_success_timestamp_seconds"
	)
	require.Equal(t, 1.0, p.metricValue(t, successful), "the configuration loaded at start counts")
	started := p.metricValue(t, successAt)
	require.InDelta(t, float64(time.Now().Unix()), started, 120)
	target := strings.TrimPrefix(p.url, "http://")
	write(fmt.Sprintf("global: {scrape_interval: 1s}\nscrape_configs:\n  - job_name: self\n    static_configs: [{targets: ['%s']}]\n", target))
	time.Sleep(10 * time.Millisecond) // the timestamp moves on
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGHUP))
	c := p.api(t)
	require.Eventually(t, func() bool {
		v, _, _, err := c.Query(context.Background(), `up{job="self"}`, time.Now())
		return err == nil && len(v.(model.Vector)) == 1
	}, 30*time.Second, 200*time.Millisecond, "the reloaded job is scraped")
	require.Equal(t, 1.0, p.metricValue(t, successful))
	reloaded := p.metricValue(t, successAt)
	require.Greater(t, reloaded, started)

	write("scrape_configs: [{job_name: self}, {job_name: self}]\n")
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGHUP))
	require.Eventually(t, func() bool {
		return strings.Contains(p.logs.String(), "Configuration reload failed")
	}, 30*time.Second, 200*time.Millisecond)
	cf, err := c.Config(context.Background())
	require.NoError(t, err)
	require.Contains(t, cf.YAML, "job_name: self", "the running configuration is kept")
	require.Contains(t, cf.YAML, target)
	require.Equal(t, 0.0, p.metricValue(t, successful), "the failed reload is reported")
	require.Equal(t, reloaded, p.metricValue(t, successAt), "the last success is kept")
	// One gauge per value, as Prometheus's own: no field label.
	body := p.get(t, "/metrics")
	require.NotContains(t, body, "ballast_config_last_reload{")
	require.Contains(t, body, "# TYPE "+successful+" gauge\n")
	require.Contains(t, body, "# TYPE "+successAt+" gauge\n")
}

// get returns the body of a GET of path.
func (p *proc) get(t testing.TB, path string) string {
	t.Helper()
	return get(t, p.url+path)
}

// metricValue reads one sample of the server's own /metrics, e.g.
// `ballast_ingest_samples_received_total{source="scrape"}`; 0 when absent.
func (p *proc) metricValue(t testing.TB, series string) float64 {
	t.Helper()
	for _, line := range strings.Split(p.get(t, "/metrics"), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			require.NoError(t, err, line)
			return f
		}
	}
	return 0
}

// TestServerStartup: the simulator's first tick, published as the server
// starts, is stored rather than lost to the ingester not having subscribed
// yet; and every ingest path counts what it receives under its own source.
func TestServerStartup(t *testing.T) {
	p := startServer(t, t.TempDir())
	ready := time.Now()
	c := p.api(t)
	// The simulator ticks every 15s: only its first tick can be seen this soon.
	require.Eventually(t, func() bool {
		v, _, _, err := c.Query(context.Background(), `count(ceilometer_cpu)`, time.Now())
		return err == nil && len(v.(model.Vector)) == 1 && v.(model.Vector)[0].Value > 0
	}, 10*time.Second, 100*time.Millisecond, "the simulator's first batch is stored")
	require.Less(t, time.Since(ready), 15*time.Second)
	require.NotContains(t, p.logs.String(), "Publish samples failed")
	require.Positive(t, p.metricValue(t, `ballast_ingest_samples_received_total{source="simulator"}`))

	before := p.metricValue(t, `ballast_ingest_samples_received_total{source="remote_write"}`)
	b := &bus.SampleBatch{Series: []bus.Series{series("startup_total", time.Now().Add(-time.Minute), 4)}}
	require.Equal(t, http.StatusNoContent, p.write(t, b))
	require.Equal(t, before+4, p.metricValue(t, `ballast_ingest_samples_received_total{source="remote_write"}`))
	require.Eventually(t, func() bool {
		return p.metricValue(t, `ballast_ingest_samples_received_total{source="scrape"}`) > 0
	}, 30*time.Second, 200*time.Millisecond, "the self-scrape is counted")
}

// TestServerShutdownLogs: SIGTERM is logged at once with the time running
// work gets, and "Stopped" is the last line, after storage is closed.
func TestServerShutdownLogs(t *testing.T) {
	p := startServer(t, t.TempDir())
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	require.Eventually(t, func() bool {
		return strings.Contains(p.logs.String(), `msg="Signal received, stopping"`)
	}, 5*time.Second, 20*time.Millisecond, "the signal is logged at once")
	require.NoError(t, p.stop(t, syscall.SIGTERM), "graceful shutdown exits 0")
	logs := p.logs.String()
	lines := strings.Split(strings.TrimSpace(logs), "\n")
	var signal string
	for _, l := range lines {
		if strings.Contains(l, `msg="Signal received, stopping"`) {
			signal = l
		}
	}
	require.Contains(t, signal, "signal=SIGTERM")
	require.Contains(t, signal, "running_actions_timeout=30s")
	require.Contains(t, signal, "in_flight_requests_timeout=30s")
	require.Less(t, strings.Index(logs, "Signal received"), strings.Index(logs, "Shutting down"))
	require.Less(t, strings.Index(logs, "Closing storage"), strings.Index(logs, "msg=Stopped"))
	require.Contains(t, lines[len(lines)-1], "msg=Stopped")
}
