package exporters

import (
	"errors"
	"log/slog"

	"github.com/ballast-cloud/ballast/exporters/ceph"
	"github.com/ballast-cloud/ballast/exporters/diskio"
	"github.com/ballast-cloud/ballast/exporters/domxml"
	"github.com/ballast-cloud/ballast/exporters/instance"
	"github.com/ballast-cloud/ballast/exporters/inventory"
	"github.com/ballast-cloud/ballast/exporters/node"
	"github.com/ballast-cloud/ballast/exporters/scrape"
	"github.com/ballast-cloud/ballast/exporters/virt"
)

// registration is one collector: its name (the --collector.<name> flag),
// whether it runs by default, and how it is built from the configuration.
type registration struct {
	name           string
	defaultEnabled bool
	help           string
	build          func(w *wiring, logger *slog.Logger) (scrape.Collector, error)
}

// registered is the one list of collectors. Ceph is off by default: it
// belongs on one admin or mgr host per cluster, not on every hypervisor.
var registered = []registration{
	{"node", true, "host CPU time and memory (node_cpu_seconds_total, node_memory_*_bytes)",
		func(w *wiring, l *slog.Logger) (scrape.Collector, error) {
			return node.New(node.Config{ProcPath: w.cfg.ProcPath}, l)
		}},
	{"diskio", true, "disk_io_bandwidth: block device IO (node_disk_*), queue depth, VM disk limits",
		func(w *wiring, l *slog.Logger) (scrape.Collector, error) {
			deps := diskio.Deps{}
			if !w.cfg.NoLibvirt {
				client, err := w.virt()
				if err != nil {
					return nil, err
				}
				deps.Domains = func() ([]*domxml.Domain, error) {
					doms, err := client.Domains()
					if errors.Is(err, virt.ErrUnreachable) {
						// No libvirtd, no VM limits: the host's disks are
						// still this collector's, and the instance
						// collector reports libvirt's state.
						return nil, nil
					}
					return doms, err
				}
			}
			return diskio.New(diskio.Config{ProcPath: w.cfg.ProcPath, SysPath: w.cfg.SysPath, DeviceExclude: w.cfg.DiskDeviceExclude}, deps, l)
		}},
	{"instance", true, "libvirt domains: CPU, vCPU, memory, disk, NIC, state, migration jobs (libvirt_*)",
		func(w *wiring, l *slog.Logger) (scrape.Collector, error) {
			client, err := w.virt()
			if err != nil {
				return nil, err
			}
			return instance.New(instance.Deps{Client: client}, l)
		}},
	{"inventory", true, "host capacity and domains for the decision engine (ballast_inventory_*)",
		func(w *wiring, l *slog.Logger) (scrape.Collector, error) {
			client, err := w.virt()
			if err != nil {
				return nil, err
			}
			policy := w.cfg.Host
			src := func() (*inventory.Inventory, error) { return client.Inventory(policy) }
			w.exp.inv = src
			return inventory.New(src, l)
		}},
	{"ceph", false, "Ceph health, OSDs, pools, PGs, upmap and balancer (ceph_*, ballast_ceph_*)",
		func(w *wiring, l *slog.Logger) (scrape.Collector, error) {
			return ceph.New(w.cfg.Ceph, l)
		}},
}

// wiring hands the collectors what they share: one libvirt client.
type wiring struct {
	cfg    Config
	logger *slog.Logger
	exp    *Exporter
}

func (w *wiring) virt() (*virt.Client, error) {
	if w.cfg.NoLibvirt {
		return nil, errors.New("needs libvirt, which is configured off (--libvirt.uri is empty); disable this collector")
	}
	if w.exp.virt == nil {
		c, err := virt.New(w.cfg.Libvirt, w.logger.With("subsystem", "libvirt"))
		if err != nil {
			return nil, err
		}
		w.exp.virt = c
	}
	return w.exp.virt, nil
}
