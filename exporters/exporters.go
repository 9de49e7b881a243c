// Package exporters assembles Ballast's host collectors (node, diskio,
// instance, inventory, ceph) into one prometheus.Gatherer and HTTP handler.
// `ballast exporter` serves it on /metrics; the Ballast server mounts the same
// thing in-process to watch its own host.
//
// The collectors live in one package each; this package only wires them
// (collectors.go is the one registration list) and must not contain
// collection logic itself.
package exporters

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sort"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ballast-cloud/ballast/exporters/ceph"
	"github.com/ballast-cloud/ballast/exporters/inventory"
	"github.com/ballast-cloud/ballast/exporters/scrape"
	"github.com/ballast-cloud/ballast/exporters/virt"
)

// Config selects and configures the collectors. Zero values get defaults.
type Config struct {
	// Enabled overrides a collector's default: name -> on/off. Collectors
	// not named keep their default (see Collectors).
	Enabled map[string]bool
	// ProcPath and SysPath are where proc and sysfs are mounted
	// (default /proc and /sys; /host/proc in a container).
	ProcPath, SysPath string
	// DiskDeviceExclude filters block devices (default diskio.DefaultDeviceExclude).
	DiskDeviceExclude string
	// Libvirt says where libvirtd is; an empty URI means qemu:///system.
	Libvirt virt.Config
	// NoLibvirt declares a host without libvirt (a Ceph admin node): the
	// libvirt collectors must then be disabled and diskio skips VM limits.
	NoLibvirt bool
	// Host is the capacity policy reported in the inventory.
	Host virt.HostPolicy
	Ceph ceph.Config
}

// Exporter is a set of enabled collectors, gathered as one.
type Exporter struct {
	set     *scrape.Set
	virt    *virt.Client
	closers []io.Closer
	inv     inventory.Source
	logger  *slog.Logger
}

// CollectorInfo describes a registered collector.
type CollectorInfo struct {
	Name           string
	DefaultEnabled bool
	Help           string
}

// Collectors lists the collectors that can be enabled, in name order.
func Collectors() []CollectorInfo {
	out := make([]CollectorInfo, 0, len(registered))
	for _, r := range registered {
		out = append(out, CollectorInfo{Name: r.name, DefaultEnabled: r.defaultEnabled, Help: r.help})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// New builds the enabled collectors. It fails, naming the collector, when
// one cannot be built, and for an unknown name in cfg.Enabled.
func New(cfg Config, logger *slog.Logger) (*Exporter, error) {
	known := map[string]bool{}
	for _, r := range registered {
		known[r.name] = true
	}
	for name := range cfg.Enabled {
		if !known[name] {
			return nil, fmt.Errorf("collector %q: unknown (known: %s)", name, strings.Join(names(), ", "))
		}
	}
	e := &Exporter{logger: logger}
	w := &wiring{cfg: cfg, logger: logger, exp: e}
	cs := map[string]scrape.Collector{}
	for _, r := range registered {
		on := r.defaultEnabled
		if v, ok := cfg.Enabled[r.name]; ok {
			on = v
		}
		if !on {
			continue
		}
		c, err := r.build(w, logger.With("collector", r.name))
		if err != nil {
			_ = e.Close()
			return nil, fmt.Errorf("collector %s: %w", r.name, err)
		}
		if cl, ok := c.(io.Closer); ok {
			e.closers = append(e.closers, cl)
		}
		cs[r.name] = c
	}
	e.set = scrape.NewSet(cs, logger)
	logger.Info("Enabled collectors", "collectors", strings.Join(e.set.Names(), ","))
	return e, nil
}

func names() []string {
	var out []string
	for _, c := range Collectors() {
		out = append(out, c.Name)
	}
	return out
}

// Gatherer gathers every enabled collector (and nothing of the process).
func (e *Exporter) Gatherer() prometheus.Gatherer { return e.set }

// Handler serves the collectors, plus the extra gatherers given (the
// process's own metrics, for instance), in the exposition formats Prometheus
// negotiates. A failing collector never fails the scrape: it reports
// ballast_exporter_scrape_collector_success 0.
func (e *Exporter) Handler(extra ...prometheus.Gatherer) http.Handler {
	return scrape.Handler(scrape.Merge(append([]prometheus.Gatherer{e.set}, extra...)...), promhttp.HandlerOpts{
		ErrorLog:            slog.NewLogLogger(e.logger.Handler(), slog.LevelError),
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: 4,
	})
}

// Inventory returns the inventory source, nil when libvirt is not in use.
func (e *Exporter) Inventory() inventory.Source { return e.inv }

// Collectors returns the names of the enabled collectors.
func (e *Exporter) Collectors() []string { return e.set.Names() }

// Close releases the libvirt and Ceph connections.
func (e *Exporter) Close() error {
	var errs []error
	for _, c := range e.closers {
		errs = append(errs, c.Close())
	}
	if e.virt != nil {
		errs = append(errs, e.virt.Close())
	}
	return errors.Join(errs...)
}

// NewHandler builds an Exporter from cfg and returns its handler and the
// Exporter to close: the one call the Ballast server needs to mount its own
// host's metrics.
func NewHandler(cfg Config, logger *slog.Logger) (http.Handler, io.Closer, error) {
	e, err := New(cfg, logger)
	if err != nil {
		return nil, nil, err
	}
	return e.Handler(), e, nil
}
