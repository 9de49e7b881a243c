package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/stretchr/testify/require"

	"github.com/ballast-cloud/ballast/exporters/push/pushtest"
	"github.com/ballast-cloud/ballast/exporters/scrape/scrapetest"
	"github.com/ballast-cloud/ballast/exporters/virt/virttest"
)

// parseExporter parses args as `ballast exporter ...` would be.
func parseExporter(t *testing.T, args ...string) *exporterOptions {
	t.Helper()
	app := kingpin.New("ballast", "")
	o := exporterFlags(app.Command("exporter", ""))
	_, err := app.Parse(append([]string{"exporter"}, args...))
	require.NoError(t, err)
	return o
}

func TestExporterServesAndPushes(t *testing.T) {
	uri, err := virttest.Host{CPUs: 8, MemoryKiB: 16 << 20, Domains: 4}.Write(t.TempDir())
	require.NoError(t, err)
	recv, err := pushtest.Start()
	require.NoError(t, err)
	defer recv.Stop()

	o := parseExporter(t, "--web.listen-address=127.0.0.1:0", "--libvirt.uri="+uri, "--no-collector.diskio",
		"--push.remote-write-url="+recv.URL(), "--push.interval=100ms", "--push.queue.dir="+t.TempDir(),
		"--push.label=cluster=test", "--inventory.disk-path="+t.TempDir())
	addrs := make(chan []net.Addr, 1)
	o.ready = func(a []net.Addr) { addrs <- a }
	logger, logs := scrapetest.Logger()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runExporter(ctx, o, logger) }()
	var base string
	select {
	case a := <-addrs:
		base = "http://" + a[0].String()
	case err := <-done:
		t.Fatalf("exporter stopped: %v\n%s", err, logs)
	}

	body := get(t, base+"/metrics")
	for _, want := range []string{`libvirt_domains 4`, `ballast_exporter_scrape_collector_success{collector="instance"} 1`,
		`process_resident_memory_bytes`, `ballast_exporter_build_info`, `ballast_inventory_domain_info{`} {
		require.Contains(t, body, want)
	}
	require.Contains(t, get(t, base+"/inventory"), `"schema_version":"1"`)
	require.Contains(t, get(t, base+"/"), "Ballast exporter")

	require.Eventually(t, func() bool { return recv.Distinct() > 100 }, time.Minute, 20*time.Millisecond, "pushed samples arrive")
	cancel()
	require.NoError(t, <-done)
	require.Contains(t, logs.String(), "Exporter stopped")
	require.True(t, recv.Total() > 0)
}

// get returns the body of a GET of url, which must answer 200.
func get(t testing.TB, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s: %s", url, b)
	return string(b)
}

func TestExporterUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--inventory.cpu-allocation-ratio=0"}, "--inventory.cpu-allocation-ratio"},
		{[]string{"--push.label=novalue"}, "--push.label"},
		{[]string{"--web.telemetry-path=metrics"}, "--web.telemetry-path"},
		{[]string{"--libvirt.uri="}, "collector instance: needs libvirt"},
		{[]string{"--web.listen-address=127.0.0.1:0", "--libvirt.uri=", "--no-collector.instance", "--no-collector.inventory",
			"--push.remote-write-url=ftp://x"}, "push.remote-write-url"},
		{[]string{"--web.config.file=/nonexistent/web.yml"}, "--web.config.file"},
	} {
		o := parseExporter(t, tc.args...)
		logger, _ := scrapetest.Logger()
		err := runExporter(context.Background(), o, logger)
		var ue usageError
		require.ErrorAs(t, err, &ue, strings.Join(tc.args, " "))
		require.ErrorContains(t, err, tc.want)
	}
}
