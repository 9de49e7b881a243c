package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/alecthomas/units"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	versioncollector "github.com/prometheus/client_golang/prometheus/collectors/version"
	"github.com/prometheus/common/version"
	"github.com/prometheus/exporter-toolkit/web"

	"github.com/ballast-cloud/ballast/collector/bus"
	"github.com/ballast-cloud/ballast/collector/kafka"
	"github.com/ballast-cloud/ballast/exporters"
	"github.com/ballast-cloud/ballast/exporters/inventory"
	"github.com/ballast-cloud/ballast/exporters/push"
	"github.com/ballast-cloud/ballast/exporters/scrape"
	"github.com/ballast-cloud/ballast/exporters/virt"
)

// exporterOptions are the flags of `ballast exporter`.
type exporterOptions struct {
	listen        []string
	webConfig     string
	metricsPath   string
	enabled       map[string]*bool
	cfg           exporters.Config
	libvirtURI    string
	reservedMem   units.Base2Bytes
	reservedDisk  units.Base2Bytes
	pushURL       string
	pushKafka     string
	pushInterval  time.Duration
	pushLabels    []string
	pushInstance  string
	rw            push.RemoteWriteConfig
	shutdownGrace time.Duration
	releaseMemory bool
	// ready, when set, is told the listening addresses (tests use it).
	ready func(addrs []net.Addr)
}

func exporterCommand(app *kingpin.Application) command {
	c := app.Command("exporter", "Run the node agent: serve host, libvirt and Ceph metrics on /metrics, "+
		"and optionally push them with remote_write.\n\n"+
		"Collectors are switched with --collector.<name> / --no-collector.<name>. "+
		"Run one agent per hypervisor; enable the ceph collector on one Ceph admin or mgr host per cluster.")
	o := exporterFlags(c)
	return command{clause: c, run: func(ctx context.Context, logger *slog.Logger) error {
		return runExporter(ctx, o, logger)
	}}
}

// exporterFlags declares the flags of `ballast exporter` on c.
func exporterFlags(c *kingpin.CmdClause) *exporterOptions {
	o := &exporterOptions{enabled: map[string]*bool{}}
	c.Flag("web.listen-address", "Address to listen on for the metrics endpoint; repeat for several.").
		Default(":9177").StringsVar(&o.listen)
	c.Flag("web.config.file", "Path to a web configuration file (TLS, basic auth), exporter-toolkit format.").
		Default("").StringVar(&o.webConfig)
	c.Flag("web.telemetry-path", "Path under which to expose metrics.").Default("/metrics").StringVar(&o.metricsPath)
	for _, ci := range exporters.Collectors() {
		def := "disabled"
		if ci.DefaultEnabled {
			def = "enabled"
		}
		o.enabled[ci.Name] = c.Flag("collector."+ci.Name, fmt.Sprintf("Enable the %s collector: %s (default: %s).", ci.Name, ci.Help, def)).
			Default(fmt.Sprint(ci.DefaultEnabled)).Bool()
	}
	c.Flag("path.procfs", "procfs mountpoint.").Default("/proc").StringVar(&o.cfg.ProcPath)
	c.Flag("path.sysfs", "sysfs mountpoint.").Default("/sys").StringVar(&o.cfg.SysPath)
	c.Flag("collector.diskio.device-exclude", "Regexp of block devices to leave out.").
		Default(`^(z?ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\d+n\d+p)\d+$`).StringVar(&o.cfg.DiskDeviceExclude)
	c.Flag("libvirt.uri", "libvirt connection URI; empty for a host without libvirt (then disable instance and inventory).").
		Default(virt.DefaultURI).StringVar(&o.libvirtURI)
	c.Flag("libvirt.domain-cache-ttl", "How long one domain listing is shared between collectors.").
		Default("5s").DurationVar(&o.cfg.Libvirt.DomainCacheTTL)
	c.Flag("libvirt.xml-max-age", "How long a domain's parsed XML (devices, metadata) is reused before it is read again.").
		Default("1m").DurationVar(&o.cfg.Libvirt.XMLMaxAge)
	c.Flag("inventory.disk-path", "Filesystem holding instance disks; its size is the host's disk capacity.").
		Default("/var/lib/libvirt/images").StringVar(&o.cfg.Host.DiskPath)
	c.Flag("inventory.cpu-allocation-ratio", "vCPUs allowed per host CPU (Nova cpu_allocation_ratio).").
		Default("4.0").Float64Var(&o.cfg.Host.Allocation.CPU)
	c.Flag("inventory.ram-allocation-ratio", "Guest memory allowed per byte of host memory.").
		Default("1.0").Float64Var(&o.cfg.Host.Allocation.Memory)
	c.Flag("inventory.disk-allocation-ratio", "Guest disk allowed per byte of host disk.").
		Default("1.0").Float64Var(&o.cfg.Host.Allocation.Disk)
	c.Flag("inventory.reserved-cpus", "Host CPUs kept for the host itself.").Default("0").Uint64Var(&o.cfg.Host.Reserved.CPUs)
	c.Flag("inventory.reserved-memory", "Memory kept for the host itself (e.g. 4GiB).").Default("0").BytesVar(&o.reservedMem)
	c.Flag("inventory.reserved-disk", "Disk kept for the host itself (e.g. 50GiB).").Default("0").BytesVar(&o.reservedDisk)
	c.Flag("ceph.config", "ceph.conf of the cluster (default: $CEPH_CONF, then librados' search path).").
		Default("").StringVar(&o.cfg.Ceph.ConfigFile)
	c.Flag("ceph.keyring", "Keyring of the Ceph user (not needed with cephx off).").Default("").StringVar(&o.cfg.Ceph.Keyring)
	c.Flag("ceph.user", "Ceph client name, without 'client.'.").Default("admin").StringVar(&o.cfg.Ceph.User)
	c.Flag("ceph.timeout", "Timeout of the Ceph connection and of each command.").Default("10s").DurationVar(&o.cfg.Ceph.Timeout)
	c.Flag("push.remote-write-url", "Push every --push.interval to this Prometheus remote_write endpoint "+
		"(a Ballast server or any compatible receiver), in addition to serving /metrics.").Default("").StringVar(&o.pushURL)
	c.Flag("push.kafka-brokers", "Push every --push.interval to Kafka (comma-separated bootstrap brokers): samples to "+
		"the samples topic, inventory changes to the events topic (docs/kafka.md).").Default("").StringVar(&o.pushKafka)
	c.Flag("push.interval", "Interval between pushes.").Default("15s").DurationVar(&o.pushInterval)
	c.Flag("push.instance", "instance label of pushed series (default: <hostname>:<port>).").Default("").StringVar(&o.pushInstance)
	c.Flag("push.label", "Extra label name=value for pushed series; repeatable. job defaults to ballast-exporter.").StringsVar(&o.pushLabels)
	c.Flag("push.queue.dir", "Directory of the on-disk push queue (a Prometheus agent WAL).").
		Default("ballast-push-queue").StringVar(&o.rw.Dir)
	c.Flag("push.queue.max-age", "Bound of the push queue: samples unsent for longer are dropped.").
		Default("2h").DurationVar(&o.rw.MaxAge)
	c.Flag("push.queue.capacity", "Samples buffered in memory per sending shard.").Default("10000").IntVar(&o.rw.Capacity)
	c.Flag("push.queue.max-shards", "Parallel senders.").Default("4").IntVar(&o.rw.MaxShards)
	c.Flag("push.queue.max-samples-per-send", "Samples per remote_write request.").Default("2000").IntVar(&o.rw.MaxSamplesPerSend)
	c.Flag("push.queue.min-backoff", "First retry delay after a failed send.").Default("30ms").DurationVar(&o.rw.MinBackoff)
	c.Flag("push.queue.max-backoff", "Longest retry delay.").Default("5s").DurationVar(&o.rw.MaxBackoff)
	c.Flag("push.flush-deadline", "On shutdown, how long to keep sending what is queued.").Default("1m").DurationVar(&o.rw.FlushDeadline)
	c.Flag("push.remote-write.basic-auth-username", "Basic auth user for the receiver.").Default("").StringVar(&o.rw.BasicAuthUsername)
	c.Flag("push.remote-write.basic-auth-password-file", "File holding the basic auth password.").Default("").StringVar(&o.rw.BasicAuthPasswordFile)
	c.Flag("push.remote-write.bearer-token-file", "File holding a bearer token for the receiver.").Default("").StringVar(&o.rw.BearerTokenFile)
	c.Flag("web.shutdown-grace", "How long in-flight scrapes may finish on shutdown.").Default("5s").DurationVar(&o.shutdownGrace)
	c.Flag("runtime.release-memory", "After each scrape and push, return the memory it used to the OS (a forced garbage collection "+
		"and malloc_trim: about 15 ms of CPU per scrape at 1000 domains), so that between scrapes the agent's RSS is what it keeps, "+
		"not what its last scrape used.").
		Default("true").BoolVar(&o.releaseMemory)
	return o
}

// validate turns flags into configuration, or a usage error naming the flag.
func (o *exporterOptions) validate() (map[string]string, error) {
	o.cfg.Enabled = map[string]bool{}
	for name, on := range o.enabled {
		o.cfg.Enabled[name] = *on
	}
	o.cfg.Libvirt.URI = o.libvirtURI
	o.cfg.NoLibvirt = o.libvirtURI == ""
	o.cfg.Host.Reserved.MemoryBytes = uint64(o.reservedMem)
	o.cfg.Host.Reserved.DiskBytes = uint64(o.reservedDisk)
	for flag, v := range map[string]float64{
		"inventory.cpu-allocation-ratio": o.cfg.Host.Allocation.CPU, "inventory.ram-allocation-ratio": o.cfg.Host.Allocation.Memory,
		"inventory.disk-allocation-ratio": o.cfg.Host.Allocation.Disk,
	} {
		if v <= 0 {
			return nil, usageError{fmt.Errorf("--%s %g: must be positive", flag, v)}
		}
	}
	if len(o.listen) == 0 {
		return nil, usageError{errors.New("--web.listen-address: at least one address is needed")}
	}
	if !strings.HasPrefix(o.metricsPath, "/") {
		return nil, usageError{fmt.Errorf("--web.telemetry-path %q: must start with /", o.metricsPath)}
	}
	if o.webConfig != "" {
		if err := web.Validate(o.webConfig); err != nil {
			return nil, usageError{fmt.Errorf("--web.config.file %s: %w", o.webConfig, err)}
		}
	}
	labels := map[string]string{"job": "ballast-exporter"}
	for _, kv := range o.pushLabels {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, usageError{fmt.Errorf("--push.label %q: want name=value", kv)}
		}
		labels[k] = v
	}
	if o.pushURL != "" && o.pushInterval <= 0 {
		return nil, usageError{fmt.Errorf("--push.interval %s: must be positive", o.pushInterval)}
	}
	return labels, nil
}

func runExporter(ctx context.Context, o *exporterOptions, base *slog.Logger) error {
	logger := base.With("component", "exporter")
	pushLabels, err := o.validate()
	if err != nil {
		return err
	}
	exp, err := exporters.New(o.cfg, logger)
	if err != nil {
		return usageError{err}
	}
	defer func() {
		if err := exp.Close(); err != nil {
			logger.Warn("Closing collectors", "err", err)
		}
	}()

	// The agent's own metrics: process, Go runtime, build and push queue.
	self := prometheus.NewRegistry()
	self.MustRegister(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), collectors.NewGoCollector(),
		versioncollector.NewCollector("ballast_exporter"))

	listeners := make([]net.Listener, 0, len(o.listen))
	defer func() {
		for _, l := range listeners {
			_ = l.Close()
		}
	}()
	for _, addr := range o.listen {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return usageError{fmt.Errorf("--web.listen-address %s: %w", addr, err)}
		}
		listeners = append(listeners, l)
	}

	var wg sync.WaitGroup
	pushCtx, stopPush := context.WithCancel(context.Background())
	defer stopPush()
	release := memoryReleaser(nil)
	if o.releaseMemory {
		release = startMemoryReleaser(pushCtx)
	}
	// Push publishes through one bus.SamplePublisher: remote_write (a
	// durable agent WAL queue) or Kafka (which also carries inventory
	// events).
	var (
		samples   bus.SamplePublisher
		events    bus.EventPublisher
		closePush func() error
	)
	switch {
	case o.pushURL != "" && o.pushKafka != "":
		return usageError{errors.New("--push.remote-write-url and --push.kafka-brokers: choose one")}
	case o.pushURL != "":
		o.rw.URL = o.pushURL
		rw, err := push.NewRemoteWrite(o.rw, self, base.With("component", "exporter/push"))
		if err != nil {
			return usageError{err}
		}
		samples, closePush = rw, rw.Close
	case o.pushKafka != "":
		kcfg := kafka.Config{ClientID: "ballast-exporter"}
		for _, b := range strings.Split(o.pushKafka, ",") {
			if b = strings.TrimSpace(b); b != "" {
				kcfg.Brokers = append(kcfg.Brokers, b)
			}
		}
		kb, err := kafka.New(kcfg, self, logger)
		if err != nil {
			return usageError{fmt.Errorf("--push.kafka-brokers: %w", err)}
		}
		samples, events, closePush = kb, kb, kb.Close
	}
	if samples != nil {
		if _, ok := pushLabels["instance"]; !ok {
			pushLabels["instance"] = o.pushInstance
			if o.pushInstance == "" {
				pushLabels["instance"] = defaultInstance(listeners[0].Addr())
			}
		}
		deps := push.Deps{Gatherer: scrape.Merge(exp.Gatherer(), self), Samples: releasingPublisher{samples, release}, Registry: self}
		if events != nil && exp.Inventory() != nil {
			deps.Events, deps.Inventory = events, exp.Inventory()
		}
		p, err := push.New(push.Config{Interval: o.pushInterval, Labels: pushLabels}, deps, base.With("component", "exporter/push"))
		if err != nil {
			_ = closePush()
			return usageError{err}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = p.Run(pushCtx)
		}()
		logger.Info("Push mode on", "interval", o.pushInterval, "labels", pushLabels)
	}

	mux := http.NewServeMux()
	mux.Handle(o.metricsPath, release.after(exp.Handler(self)))
	mux.HandleFunc("/inventory", func(w http.ResponseWriter, _ *http.Request) { serveInventory(w, exp.Inventory()) })
	mux.HandleFunc("/-/healthy", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "OK") })
	if o.metricsPath != "/" {
		landing, err := web.NewLandingPage(web.LandingConfig{
			Name: "Ballast exporter", Description: "Host, libvirt and Ceph metrics for Ballast", Version: version.Info(),
			Links: []web.LandingLinks{{Address: o.metricsPath, Text: "Metrics"}, {Address: "/inventory", Text: "Inventory (JSON, schema v" + inventory.SchemaVersion + ")"}},
		})
		if err != nil {
			return fmt.Errorf("landing page: %w", err)
		}
		mux.Handle("/", landing)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	systemd := false
	flags := &web.FlagConfig{WebListenAddresses: &o.listen, WebSystemdSocket: &systemd, WebConfigFile: &o.webConfig}
	serveErr := make(chan error, 1)
	go func() { serveErr <- web.ServeMultiple(listeners, srv, flags, logger) }()
	addrs := make([]net.Addr, 0, len(listeners))
	for _, l := range listeners {
		addrs = append(addrs, l.Addr())
	}
	logger.Info("Exporter started", "version", version.Version, "collectors", strings.Join(exp.Collectors(), ","), "addresses", addrs)
	if o.ready != nil {
		o.ready(addrs)
	}

	var runErr error
	select {
	case <-ctx.Done():
		logger.Info("Shutting down")
	case err := <-serveErr:
		if !errors.Is(err, http.ErrServerClosed) {
			runErr = fmt.Errorf("serve metrics: %w", err)
		}
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), o.shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		logger.Warn("HTTP shutdown", "err", err)
	}
	stopPush()
	wg.Wait()
	if closePush != nil {
		logger.Info("Flushing push queue", "deadline", o.rw.FlushDeadline)
		if err := closePush(); err != nil {
			logger.Warn("Closing push queue", "err", err)
		}
	}
	logger.Info("Exporter stopped")
	return runErr
}

// memoryReleaser hands freed memory back to the OS after scrapes and
// pushes. A scrape of 1000 domains builds some 10 MB of Go objects and
// libvirt allocates as much in C; without this the Go runtime keeps its
// heap at twice the peak (GOGC) and glibc keeps what libvirt freed, so the
// agent's RSS sits at its scrape-time peak. Requests coalesce: one release
// runs at a time, after the work that asked for it. A nil memoryReleaser
// does nothing.
type memoryReleaser chan struct{}

func startMemoryReleaser(ctx context.Context) memoryReleaser {
	r := make(memoryReleaser, 1)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-r:
				debug.FreeOSMemory()
				virt.ReleaseCMemory()
			}
		}
	}()
	return r
}

func (r memoryReleaser) request() {
	if r == nil {
		return
	}
	select {
	case r <- struct{}{}:
	default: // one is pending already
	}
}

// after asks for a release once h has answered.
func (r memoryReleaser) after(h http.Handler) http.Handler {
	if r == nil {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		h.ServeHTTP(w, req)
		r.request()
	})
}

// releasingPublisher asks for a release once a batch is handed over.
type releasingPublisher struct {
	bus.SamplePublisher
	release memoryReleaser
}

func (p releasingPublisher) PublishSamples(ctx context.Context, b *bus.SampleBatch) error {
	defer p.release.request()
	return p.SamplePublisher.PublishSamples(ctx, b)
}

// defaultInstance is what a Prometheus scrape would put in the instance
// label: this host's name and the listening port.
func defaultInstance(addr net.Addr) string {
	host, err := os.Hostname()
	if err != nil {
		host = "localhost"
	}
	_, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return host
	}
	return net.JoinHostPort(host, port)
}

func serveInventory(w http.ResponseWriter, src inventory.Source) {
	if src == nil {
		http.Error(w, "inventory collector is disabled", http.StatusNotFound)
		return
	}
	inv, err := src()
	if err != nil {
		http.Error(w, "read inventory: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(inv)
}
