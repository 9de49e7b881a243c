package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	versioncollector "github.com/prometheus/client_golang/prometheus/collectors/version"
	"github.com/prometheus/common/model"
	promconfig "github.com/prometheus/prometheus/config"
	"golang.org/x/sync/errgroup"

	"github.com/ballast-cloud/ballast/collector/bus"
	"github.com/ballast-cloud/ballast/collector/forward"
	"github.com/ballast-cloud/ballast/collector/ingest"
	"github.com/ballast-cloud/ballast/collector/kafka"
	"github.com/ballast-cloud/ballast/collector/remotewrite"
	"github.com/ballast-cloud/ballast/collector/scrape"
	"github.com/ballast-cloud/ballast/deploy"
	"github.com/ballast-cloud/ballast/exporters"
	"github.com/ballast-cloud/ballast/rules"
	"github.com/ballast-cloud/ballast/tsdb"
	"github.com/ballast-cloud/ballast/tsdb/datasource"
	"github.com/ballast-cloud/ballast/web"
	"github.com/ballast-cloud/ballast/web/promapi"
	"github.com/ballast-cloud/ballast/web/ui"
)

// serverFlags are the server's command-line flags. A flag given explicitly
// overrides the configuration file.
type serverFlags struct {
	configFile    string
	listen        string
	externalURL   string
	tsdbPath      string
	retention     duration
	retentionSize string
	queryRemote   string
	queryTimeout  duration
	maxSamples    int
	lookback      duration
	kafkaBrokers  string
	role          string
	set           map[string]*bool
}

func serverCommand(app *kingpin.Application) command {
	c := app.Command("server", "Run the Ballast server: embedded TSDB and PromQL, the Prometheus HTTP API, "+
		"scrape and remote_write ingest, and (as they are configured) the decision engine and Watcher API.\n\n"+
		"With no --config.file it runs the embedded default: data under ./data, scraping itself and this host.")
	f := &serverFlags{set: map[string]*bool{}}
	flag := func(name, help string) *kingpin.FlagClause {
		b := new(bool)
		f.set[name] = b
		return c.Flag(name, help).IsSetByUser(b)
	}
	flag("config.file", "Ballast configuration file (YAML). Empty: the embedded default.").StringVar(&f.configFile)
	flag("web.listen-address", "Address to serve every API on (Prometheus API, remote_write, Watcher /v1, UI, /metrics).").
		Default(":9322").StringVar(&f.listen)
	flag("web.external-url", "URL under which Ballast is reached (for links).").StringVar(&f.externalURL)
	flag("storage.tsdb.path", "Base path for metrics storage.").Default("data/").StringVar(&f.tsdbPath)
	flag("storage.tsdb.retention.time", "How long to keep samples (e.g. 15d, 12h).").Default("15d").SetValue(durationFlag("storage.tsdb.retention.time", &f.retention))
	flag("storage.tsdb.retention.size", "Maximum bytes of blocks kept, e.g. 50GB (0: no limit).").Default("0").StringVar(&f.retentionSize)
	flag("query.remote-url", "Prometheus-compatible endpoint the decision engine and rules query instead of the "+
		"embedded TSDB (Thanos, Mimir, VictoriaMetrics).").StringVar(&f.queryRemote)
	flag("query.timeout", "Maximum time a query may take.").Default("2m").SetValue(durationFlag("query.timeout", &f.queryTimeout))
	flag("query.max-samples", "Maximum samples a single query can load into memory.").Default("50000000").IntVar(&f.maxSamples)
	flag("query.lookback-delta", "How far back PromQL looks for a sample at each step.").Default("5m").SetValue(durationFlag("query.lookback-delta", &f.lookback))
	flag("kafka.brokers", "Comma-separated Kafka bootstrap brokers (host:port). Set: every producer and consumer uses "+
		"Kafka instead of the in-process bus (docs/kafka.md).").StringVar(&f.kafkaBrokers)
	flag("role", "What this process does: all (ingest, store, query, decide, act) or ingester (consume the Kafka samples "+
		"topic into the local TSDB and serve queries; needs Kafka).").Default(roleAll).EnumVar(&f.role, roleAll, roleIngester)
	return command{clause: c, run: func(ctx context.Context, logger *slog.Logger) error {
		return runServer(ctx, f, logger)
	}}
}

// config loads the configuration file and applies explicitly given flags.
func (f *serverFlags) config(logger *slog.Logger) (*serverConfig, error) {
	self := f.listen
	if strings.HasPrefix(self, ":") {
		self = "localhost" + self
	}
	cfg, err := loadConfig(f.configFile, self, logger)
	if err != nil {
		return nil, err
	}
	given := func(name string) bool { return *f.set[name] }
	t := &cfg.Storage.TSDB
	if given("storage.tsdb.path") || t.Path == "" {
		t.Path = f.tsdbPath
	}
	if given("storage.tsdb.retention.time") || t.Retention == 0 {
		t.Retention = f.retention
	}
	if given("storage.tsdb.retention.size") || t.RetentionSize == "" {
		if f.retentionSize != "0" {
			t.RetentionSize = f.retentionSize
		}
	}
	if given("web.listen-address") || cfg.Web.ListenAddress == "" {
		cfg.Web.ListenAddress = f.listen
	}
	if given("web.external-url") {
		cfg.Web.ExternalURL = f.externalURL
	}
	if given("query.remote-url") {
		cfg.Query.RemoteURL = f.queryRemote
	}
	if given("query.timeout") || cfg.Query.Timeout == 0 {
		cfg.Query.Timeout = f.queryTimeout
	}
	if given("query.max-samples") || cfg.Query.MaxSamples == 0 {
		cfg.Query.MaxSamples = f.maxSamples
	}
	if given("query.lookback-delta") || cfg.Query.LookbackDelta == 0 {
		cfg.Query.LookbackDelta = f.lookback
	}
	if given("kafka.brokers") {
		cfg.Kafka.Brokers = nil
		for _, b := range strings.Split(f.kafkaBrokers, ",") {
			if b = strings.TrimSpace(b); b != "" {
				cfg.Kafka.Brokers = append(cfg.Kafka.Brokers, b)
			}
		}
	}
	if given("role") || cfg.Role == "" {
		cfg.Role = f.role
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// server holds the running components.
type server struct {
	cfg      *serverConfig
	base     *slog.Logger // unscoped, for components to scope themselves
	logger   *slog.Logger
	reg      *prometheus.Registry
	storage  *tsdb.Storage
	bus      bus.Bus
	ingester *ingest.Ingester
	scrape   *scrape.Manager
	forward  *forward.Forwarder
	exporter *exporters.Exporter
	opt      *optimizer
	rules    *rules.Engine
	querier  datasource.Querier
	ready    atomic.Bool
	httpSrv  *http.Server
	handler  atomic.Pointer[http.Handler]
	// promConfig is the Prometheus-shaped part in force (replaced on reload).
	promConfig atomic.Pointer[promconfig.Config]
	// reloadOK and reloadTime are the outcome of the last configuration
	// reload, named as Prometheus names its own.
	reloadOK   prometheus.Gauge
	reloadTime prometheus.Gauge
	listenErr  chan error
}

func runServer(ctx context.Context, f *serverFlags, logger *slog.Logger) error {
	cfg, err := f.config(logger)
	if err != nil {
		return usageError{err}
	}
	s := &server{cfg: cfg, base: logger, logger: logger.With("component", "server"), reg: prometheus.NewRegistry()}
	s.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		versioncollector.NewCollector("ballast"),
	)
	s.logger.Info("Starting Ballast", "version", buildVersion, "listen", cfg.Web.ListenAddress, "storage", cfg.storageConfig().Path)

	// Serve /-/healthy at once; everything else answers 503 until storage
	// has replayed its WAL, which can take minutes on a large head.
	if err := s.listen(); err != nil {
		return err
	}
	defer s.shutdownHTTP()

	if err := s.start(ctx); err != nil {
		s.stop()
		return err
	}
	s.ready.Store(true)
	s.logger.Info("Server is ready to receive requests")
	// Say at once that a signal arrived: stopping can take a while.
	var actionsTimeout time.Duration
	if s.opt != nil {
		actionsTimeout = s.cfg.Optimizer.Actuators.Applier.ShutdownTimeout
	}
	defer context.AfterFunc(ctx, func() { s.logSignal(ctx, actionsTimeout) })()

	g, gctx := errgroup.WithContext(ctx)
	// The ingester subscribes first; producers that publish before it has
	// (the simulator's first tick) wait for it on the bus (consumerWait).
	g.Go(func() error {
		// The empty group is the bus's default: kafka.group with Kafka.
		return s.bus.ConsumeSamples(gctx, "", s.ingester.Handle)
	})
	if s.scrape != nil {
		g.Go(func() error { return s.scrape.Run(gctx) })
	}
	if s.rules != nil {
		g.Go(func() error { return s.rules.Run(gctx, s.bus) })
	}
	g.Go(func() error { s.reloadOnHUP(gctx, f); return nil })
	if s.opt != nil {
		s.opt.run(gctx, s, g.Go)
	}
	g.Go(func() error {
		select {
		case err := <-s.listenErr:
			return err
		case <-gctx.Done():
			return nil
		}
	})
	err = g.Wait()
	s.logger.Info("Shutting down")
	s.ready.Store(false)
	s.shutdownHTTP()
	s.stop()
	s.logger.Info("Stopped")
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// logSignal logs the signal that ended ctx, if one did, and how long the
// work still running gets: actions (0: no applier), then HTTP requests.
func (s *server) logSignal(ctx context.Context, actionsTimeout time.Duration) {
	var sig signalReceived
	if !errors.As(context.Cause(ctx), &sig) {
		return
	}
	args := []any{"signal", sig.name()}
	if actionsTimeout > 0 {
		args = append(args, "running_actions_timeout", actionsTimeout)
	}
	args = append(args, "in_flight_requests_timeout", httpShutdownTimeout)
	s.logger.Info("Signal received, stopping", args...)
}

// consumerWait is how long a sample published before the ingester has
// subscribed to the in-process bus waits for it (the simulator ticks at
// once when it starts).
const consumerWait = 30 * time.Second

// httpShutdownTimeout is how long in-flight requests get at shutdown.
const httpShutdownTimeout = 30 * time.Second

// start builds every component in dependency order.
func (s *server) start(ctx context.Context) error {
	cfg := s.cfg
	s.promConfig.Store(cfg.prom)
	s.reloadOK = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "ballast_config_last_reload_successful",
		Help: "Whether the last configuration reload attempt was successful.",
	})
	s.reloadTime = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "ballast_config_last_reload_success_timestamp_seconds",
		Help: "Timestamp of the last successful configuration reload.",
	})
	s.reloadOK.Set(1)
	s.reloadTime.SetToCurrentTime()
	s.reg.MustRegister(s.reloadOK, s.reloadTime)
	var err error
	if s.storage, err = tsdb.Open(cfg.storageConfig(), s.reg, s.base); err != nil {
		return err
	}
	s.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "ballast_tsdb_head_series", Help: "Series in the in-memory head of the TSDB.",
	}, func() float64 { return float64(s.storage.HeadSeries()) }))

	if len(cfg.Kafka.Brokers) > 0 {
		kb, err := kafka.New(cfg.Kafka, s.reg, s.base)
		if err != nil {
			return usageError{err}
		}
		s.bus = kb
		s.logger.Info("Using the Kafka bus", "brokers", strings.Join(cfg.Kafka.Brokers, ","), "role", cfg.Role)
	} else {
		s.bus = bus.NewInProc(bus.InProcOptions{ConsumerWait: consumerWait})
	}
	ingester := cfg.Role == roleIngester
	metrics := ingest.NewMetrics(s.reg)
	// Scrape and remote_write count what they receive; the simulator, which
	// the optimizer gives s.bus, publishes straight onto the bus, so what
	// goes through s.bus is counted as its own source.
	raw := s.bus
	s.bus = ingest.NewCountingBus(raw, simulatorSource, metrics)
	if s.ingester, err = ingest.New(ingest.Options{}, s.storage, metrics, s.base); err != nil {
		return err
	}
	if s.forward, err = forward.New(forward.Options{}, s.storage, s.reg, s.base); err != nil {
		return err
	}
	if err := s.forward.ApplyConfig(cfg.prom); err != nil {
		return usageError{err}
	}
	// An ingester only turns the samples topic into a queryable TSDB: the
	// processes that publish scrape and receive remote_write.
	var rw http.Handler
	if !ingester {
		if s.scrape, err = scrape.New(raw, metrics, s.reg, s.base); err != nil {
			return err
		}
		if err := s.scrape.ApplyConfig(cfg.prom); err != nil {
			return usageError{err}
		}
		if rw, err = remotewrite.New(cfg.remoteWriteOptions(), raw, metrics, s.reg, s.base); err != nil {
			return usageError{err}
		}
	}
	if cfg.Query.RemoteURL != "" {
		s.querier, err = datasource.NewRemote(datasource.RemoteOptions{URL: cfg.Query.RemoteURL, Timeout: time.Duration(cfg.Query.Timeout)})
	} else {
		s.querier, err = datasource.NewLocal(s.storage.Engine(), s.storage.Queryable())
	}
	if err != nil {
		return err
	}

	if !ingester {
		if s.opt, err = s.startOptimizer(); err != nil {
			return err
		}
	}

	ext, err := s.externalURL()
	if err != nil {
		return usageError{err}
	}
	// Rules are evaluated where the whole TSDB is queryable: not by an
	// ingester, which holds only its partitions.
	if ingester && (len(cfg.prom.RuleFiles) > 0 || len(cfg.prom.AlertingConfig.AlertmanagerConfigs) > 0 ||
		len(cfg.Rules.Triggers) > 0 || len(cfg.Rules.Notifications.Receivers) > 0) {
		s.logger.Warn("An ingester evaluates no rules: rule_files, alerting and rules are ignored; the server with role all evaluates them")
	}
	if !ingester {
		deps := rules.Deps{Storage: s.storage, Engine: s.storage.Engine(), Events: s.bus, Registerer: s.reg,
			BuiltinRules: deploy.Rules, Runbooks: deploy.Runbooks, SDMetrics: s.scrape.SDMetrics()}
		if s.opt != nil {
			deps.Audits = s.opt.api.Runner()
		}
		if s.rules, err = rules.New(cfg.Rules, deps, s.base); err != nil {
			return usageError{err}
		}
		if err := s.rules.ApplyConfig(cfg.prom, cfg.Rules, ext); err != nil {
			return usageError{err}
		}
	}

	var exporterHandler http.Handler
	if cfg.Exporter.Enabled && !ingester {
		if s.exporter, err = exporters.New(cfg.exporterConfig(), s.base.With("component", "exporter")); err != nil {
			return usageError{fmt.Errorf("exporter: %w", err)}
		}
		exporterHandler = s.exporter.Handler()
	}

	api, err := promapi.New(promapi.Options{
		Storage:            s.storage,
		Engine:             s.storage.Engine(),
		Targets:            s.targets,
		Rules:              s.ruleSource,
		Alertmanagers:      s.alertmanagers,
		Config:             func() promconfig.Config { return *s.promConfig.Load() },
		Ready:              s.isReady,
		ExternalURL:        ext,
		Retention:          time.Duration(cfg.Storage.TSDB.Retention).String(),
		LookbackDelta:      time.Duration(cfg.Query.LookbackDelta),
		AllowUnknownParams: cfg.Web.AllowUnknownParams,
		Flags:              map[string]string{"web.listen-address": cfg.Web.ListenAddress, "storage.tsdb.path": cfg.storageConfig().Path},
		Gatherer:           s.reg,
		Registerer:         s.reg,
	}, s.base)
	if err != nil {
		return err
	}
	opts := web.Options{
		PromAPI:     api,
		RemoteWrite: rw,
		Exporter:    exporterHandler,
		UI:          ui.Handler(),
		Runbooks:    rules.RunbookHandler(deploy.Runbooks),
		Gatherer:    s.reg,
		Ready:       s.isReady,
	}
	if s.opt != nil {
		opts.Watcher = s.opt.api
	}
	h, err := web.New(opts, s.base)
	if err != nil {
		return err
	}
	var handler http.Handler = h
	s.handler.Store(&handler)
	return nil
}

// simulatorSource labels the simulator's samples in
// ballast_ingest_samples_received_total.
const simulatorSource = "simulator"

// Roles of a server process.
const (
	roleAll      = "all"
	roleIngester = "ingester"
)

// isReady is true once storage is open and the bus can deliver (Kafka
// brokers reachable).
func (s *server) isReady() bool {
	return s.ready.Load() && s.bus.Ready() == nil
}

// ruleSource and alertmanagers feed /api/v1/rules, /alerts and
// /alertmanagers; an ingester has no rules.
func (s *server) ruleSource() promapi.RuleSource {
	if s.rules == nil {
		return nil
	}
	return s.rules
}

func (s *server) alertmanagers() promapi.AlertmanagerSource {
	if s.rules == nil {
		return nil
	}
	return s.rules
}

// targets lists scrape targets; an ingester has none.
func (s *server) targets() promapi.TargetSource {
	if s.scrape == nil {
		return nil
	}
	return s.scrape.Targets()
}

func (s *server) externalURL() (*url.URL, error) {
	if s.cfg.Web.ExternalURL != "" {
		u, err := url.Parse(s.cfg.Web.ExternalURL)
		if err != nil {
			return nil, fmt.Errorf("web.external-url: %w", err)
		}
		return u, nil
	}
	// As Prometheus: the host name when the listen address names none, so
	// that links in notifications lead back here from elsewhere.
	host := s.cfg.Web.ListenAddress
	if h, port, err := net.SplitHostPort(host); err == nil && (h == "" || h == "0.0.0.0" || h == "::") {
		name, err := os.Hostname()
		if err != nil || name == "" {
			name = "localhost"
		}
		host = net.JoinHostPort(name, port)
	}
	return &url.URL{Scheme: "http", Host: host}, nil
}

// listen binds the listen address and serves the health endpoints until the
// full handler is installed.
func (s *server) listen() error {
	ln, err := net.Listen("tcp", s.cfg.Web.ListenAddress)
	if err != nil {
		return usageError{fmt.Errorf("web.listen-address: %w", err)}
	}
	starting := web.Starting()
	s.handler.Store(&starting)
	s.httpSrv = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			(*s.handler.Load()).ServeHTTP(w, r)
		}),
		ReadHeaderTimeout: 30 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.logger.Handler(), slog.LevelWarn),
	}
	s.listenErr = make(chan error, 1)
	go func() { s.listenErr <- s.httpSrv.Serve(ln) }()
	return nil
}

// shutdownHTTP stops accepting requests and waits for in-flight ones (a
// remote_write being stored) to finish.
func (s *server) shutdownHTTP() {
	if s.httpSrv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), httpShutdownTimeout)
	defer cancel()
	if err := s.httpSrv.Shutdown(ctx); err != nil {
		s.logger.Warn("HTTP shutdown", "err", err)
	}
}

// stop closes components in reverse dependency order; storage last, so
// everything acknowledged is flushed.
func (s *server) stop() {
	if s.opt != nil {
		s.opt.close()
		s.opt = nil
	}
	if s.rules != nil {
		s.rules.Close()
	}
	if s.forward != nil {
		if err := s.forward.Close(); err != nil {
			s.logger.Warn("Closing forwarder", "err", err)
		}
	}
	if s.bus != nil {
		_ = s.bus.Close()
	}
	if s.exporter != nil {
		_ = s.exporter.Close()
	}
	if s.storage != nil {
		if err := s.storage.Close(); err != nil {
			s.logger.Error("Closing storage", "err", err)
		}
		s.storage = nil
	}
}

// durationFlag parses a Prometheus duration flag, naming the flag on error.
func durationFlag(name string, d *duration) kingpin.Value {
	return &flagValue[duration]{name: name, v: d, parse: func(s string) (duration, error) {
		p, err := model.ParseDuration(s)
		if err != nil {
			return 0, fmt.Errorf("%q is not a duration such as 15d, 12h or 30s", s)
		}
		return duration(p), nil
	}}
}

// reloadOnHUP re-reads the configuration on SIGHUP and applies what can
// change live: scrape_configs, global, remote_write, rule_files, alerting and
// rules (but for its evaluation settings). Other sections need a
// restart, which the log says. A bad file keeps the running configuration.
func (s *server) reloadOnHUP(ctx context.Context, f *serverFlags) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
		}
		s.logger.Info("Reloading configuration", "file", f.configFile)
		err := s.reload(f)
		if err != nil {
			s.logger.Error("Configuration reload failed; keeping the running configuration", "err", err)
			s.reloadOK.Set(0)
			continue
		}
		s.reloadOK.Set(1)
		s.reloadTime.SetToCurrentTime()
		s.logger.Info("Configuration reloaded")
	}
}

func (s *server) reload(f *serverFlags) error {
	cfg, err := f.config(s.base)
	if err != nil {
		return err
	}
	// Rules first: a rule file that does not load changes nothing.
	if s.rules != nil {
		if o, n := s.cfg.Rules, cfg.Rules; o.ResendDelay != n.ResendDelay || o.ForGracePeriod != n.ForGracePeriod || o.OutageTolerance != n.OutageTolerance {
			s.logger.Warn("rules.resend_delay, for_grace_period and for_outage_tolerance change only at a restart")
		}
		ext, err := s.externalURL()
		if err != nil {
			return err
		}
		if err := s.rules.ApplyConfig(cfg.prom, cfg.Rules, ext); err != nil {
			return err
		}
	}
	if s.scrape != nil {
		if err := s.scrape.ApplyConfig(cfg.prom); err != nil {
			return err
		}
	}
	if err := s.forward.ApplyConfig(cfg.prom); err != nil {
		return err
	}
	s.promConfig.Store(cfg.prom)
	return nil
}
