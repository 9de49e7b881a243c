package sim

import (
	"math"
	"strconv"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"

	"github.com/ballast-cloud/ballast/collector/bus"
	"github.com/ballast-cloud/ballast/decision/model"
)

// batch renders every series at now. Label names follow node_exporter and
// the libvirt exporters (instance, host, fqdn; domain, uuid) and Ceilometer
// (resource), so dashboards, Ballast's builder and Watcher's Prometheus
// datasource all find them.
func (s *Sim) batch(now time.Time) *bus.SampleBatch {
	ts := now.UnixMilli()
	b := &bus.SampleBatch{}
	add := func(v float64, kv ...string) {
		ls := labels.FromStrings(kv...)
		b.Series = append(b.Series, bus.Series{Labels: ls, Hash: ls.Hash(), Samples: []bus.Sample{{T: ts, V: v}}})
	}
	for h := range s.cluster.Hosts {
		host := &s.cluster.Hosts[h]
		if host.EffectivePower() == model.PowerOff {
			continue // a powered-off host exports nothing
		}
		hc := &s.hosts[h]
		inst := host.Name + ":9100"
		for k := range hc.idle {
			cpu := strconv.Itoa(k)
			for _, m := range []struct {
				mode string
				v    float64
			}{{"idle", hc.idle[k]}, {"user", hc.user[k]}, {"steal", hc.steal[k]}} {
				add(m.v, "__name__", "node_cpu_seconds_total", "cpu", cpu, "fqdn", host.Name, "host", host.Name, "instance", inst, "job", "node", "mode", m.mode)
			}
		}
		total := float64(host.Capacity.MemoryMB) * (1 << 20)
		add(total, "__name__", "node_memory_MemTotal_bytes", "fqdn", host.Name, "host", host.Name, "instance", inst, "job", "node")
		add(max(0, total-hc.memUsedMB*(1<<20)), "__name__", "node_memory_MemAvailable_bytes", "fqdn", host.Name, "host", host.Name, "instance", inst, "job", "node")
		add(hc.readBytes, "__name__", "node_disk_read_bytes_total", "device", "sda", "fqdn", host.Name, "host", host.Name, "instance", inst, "job", "node")
		add(hc.writtenBytes, "__name__", "node_disk_written_bytes_total", "device", "sda", "fqdn", host.Name, "host", host.Name, "instance", inst, "job", "node")
		add(hc.ioSeconds, "__name__", "node_disk_io_time_seconds_total", "device", "sda", "fqdn", host.Name, "host", host.Name, "instance", inst, "job", "node")
	}
	for i := range s.cluster.Instances {
		in := &s.cluster.Instances[i]
		host := &s.cluster.Hosts[s.hostIdx[in.Host]]
		if host.EffectivePower() == model.PowerOff {
			continue
		}
		v := &s.vms[i]
		domain := "instance-" + in.UUID[:8]
		inst := in.Host + ":9177"
		lab := func(name string, extra ...string) []string {
			return append([]string{"__name__", name, "domain", domain, "host", in.Host, "instance", inst, "job", "libvirt", "uuid", in.UUID}, extra...)
		}
		add(v.cpuSeconds, lab("libvirt_domain_info_cpu_time_seconds_total")...)
		add(float64(in.Flavor.VCPUs), lab("libvirt_domain_info_virtual_cpus")...)
		add(float64(in.Flavor.MemoryMB)*(1<<20), lab("libvirt_domain_info_maximum_memory_bytes")...)
		add(v.memFrac*float64(in.Flavor.MemoryMB)*(1<<20), lab("libvirt_domain_info_memory_usage_bytes")...)
		add(v.delaySeconds, lab("libvirt_domain_vcpu_delay_seconds_total", "vcpu", "all")...)
		add(v.readBytes, lab("libvirt_domain_block_stats_read_bytes_total", "target_device", "vda")...)
		add(v.writeBytes, lab("libvirt_domain_block_stats_write_bytes_total", "target_device", "vda")...)
		add(v.rxBytes, lab("libvirt_domain_interface_stats_receive_bytes_total", "target_device", "tap0")...)
		add(v.txBytes, lab("libvirt_domain_interface_stats_transmit_bytes_total", "target_device", "tap0")...)
		add(1, lab("libvirt_domain_openstack_info", "flavor_name", in.Flavor.Name, "instance_id", in.UUID,
			"instance_name", in.Name, "project_id", in.ProjectID)...)
		add(v.cpuSeconds*1e9, "__name__", "ceilometer_cpu", "job", "ceilometer", "project", in.ProjectID,
			"resource", in.UUID, "resource_name", in.Name, "vm_instance", in.Host)
		add(v.memFrac*float64(in.Flavor.MemoryMB), "__name__", "ceilometer_memory_usage", "job", "ceilometer",
			"project", in.ProjectID, "resource", in.UUID, "resource_name", in.Name, "vm_instance", in.Host)
	}
	s.markStale(b, ts)
	return b
}

// markStale ends the series the previous batch had and this one lacks (an
// instance that migrated exports under its new host; a powered-off host
// exports nothing) with a staleness marker, as Prometheus's scrape loop
// does for a target's vanished series, so queries stop returning them at
// once instead of for the lookback window.
func (s *Sim) markStale(b *bus.SampleBatch, ts int64) {
	cur := make(map[uint64]labels.Labels, len(b.Series))
	for i := range b.Series {
		cur[b.Series[i].Hash] = b.Series[i].Labels
	}
	for h, ls := range s.lastSeries {
		if _, ok := cur[h]; !ok {
			b.Series = append(b.Series, bus.Series{Labels: ls, Hash: h, Samples: []bus.Sample{{T: ts, V: math.Float64frombits(value.StaleNaN)}}})
		}
	}
	s.lastSeries = cur
}
