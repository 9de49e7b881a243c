package main

import (
	"bufio"
	"fmt"
	"net/http"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/ballast-cloud/ballast/collector/bus"
	"github.com/ballast-cloud/ballast/collector/prw"
)

// benchRules loads the same cluster into Prometheus 2.42 and Ballast over
// remote_write, lets each evaluate the rule file every 5 s, and compares
// the median time one evaluation of each group takes
// (prometheus_rule_group_last_duration_seconds, which both export).
func benchRules(work, ballastBin, promBin, ruleFile string, hosts, vms, osds int) {
	abs, err := filepath.Abs(ruleFile)
	check(err)
	bodies, series := ruleData(hosts, vms, osds)
	fmt.Printf("\n== rule evaluation: %s over %d hosts, %d VMs, %d OSDs (%d series, 20 min @ 15 s), every 5 s\n",
		ruleFile, hosts, vms, osds, series)
	extra := fmt.Sprintf("  evaluation_interval: 5s\nrule_files: [%q]\n", abs)
	measure := func(t *target, name string) map[string]time.Duration {
		client := &http.Client{}
		for _, body := range bodies {
			if code := post(client, t.url+"/api/v1/write", body); code/100 != 2 {
				fatal("%s: ingest for the rules benchmark got HTTP %d", name, code)
			}
		}
		// Distinct evaluations only: an evaluation is known by its timestamp.
		seen := map[string]map[string]bool{}
		durs := map[string][]time.Duration{}
		deadline := time.Now().Add(90 * time.Second)
		for time.Now().Before(deadline) {
			time.Sleep(2 * time.Second)
			last, stamp := ruleMetrics(t.url)
			for g, d := range last {
				if seen[g] == nil {
					seen[g] = map[string]bool{}
				}
				if ts := stamp[g]; ts != "" && ts != "0" && !seen[g][ts] {
					seen[g][ts] = true
					durs[g] = append(durs[g], d)
				}
			}
			enough := len(durs) > 0
			for _, ds := range durs {
				enough = enough && len(ds) >= 9
			}
			if enough {
				break
			}
		}
		med := map[string]time.Duration{}
		var groups []string
		for g, ds := range durs {
			if len(ds) > 1 {
				ds = ds[1:] // the first evaluation warms caches
			}
			sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
			med[g] = ds[len(ds)/2]
			groups = append(groups, g)
		}
		sort.Strings(groups)
		for _, g := range groups {
			fmt.Printf("   %-16s %-10s median %8s over %d evaluations\n", name, shortGroup(g), med[g].Round(100*time.Microsecond), len(durs[g]))
		}
		return med
	}
	prom := startPrometheus(work, promBin, "prom-rules", extra)
	pm := measure(prom, "Prometheus 2.42")
	prom.stop()
	bal := startBallast(work, ballastBin, "ballast-rules", extra+"rules: {builtin: false}\n")
	bm := measure(bal, "Ballast")
	bal.stop()
	fmt.Println()
	var pSum, bSum time.Duration
	for g, p := range pm {
		b, ok := bm[g]
		if !ok {
			fatal("Ballast did not evaluate group %s", g)
		}
		pSum += p
		bSum += b
		fmt.Printf("   %-10s Ballast %8s  Prometheus %8s  ratio %.2f×\n", shortGroup(g), b.Round(100*time.Microsecond), p.Round(100*time.Microsecond), float64(b)/float64(p))
	}
	ratio("Ballast / Prometheus 2.42, all groups", float64(bSum)/float64(pSum), 1, false)
}

func shortGroup(g string) string { return g[strings.LastIndexByte(g, ';')+1:] }

// ruleMetrics reads each rule group's last evaluation duration and
// timestamp from a server's /metrics.
func ruleMetrics(base string) (last map[string]time.Duration, stamp map[string]string) {
	last, stamp = map[string]time.Duration{}, map[string]string{}
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		return
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		for _, m := range []string{"prometheus_rule_group_last_duration_seconds{", "prometheus_rule_group_last_evaluation_timestamp_seconds{"} {
			rest, ok := strings.CutPrefix(line, m)
			if !ok {
				continue
			}
			_, g, ok := strings.Cut(rest, `rule_group="`)
			if !ok {
				continue
			}
			g, val, _ := strings.Cut(g, `"} `)
			if strings.HasPrefix(m, "prometheus_rule_group_last_duration") {
				f, _ := strconv.ParseFloat(val, 64)
				last[g] = time.Duration(f * float64(time.Second))
			} else {
				stamp[g] = val
			}
		}
	}
	return
}

// ruleData is 20 minutes of a cluster at 15 s, ending now, as
// remote-write bodies: node_exporter names per host (8 CPUs × idle/user,
// memory, 2 disks; one host in ten overloaded), libvirt names per VM, Ceph
// mgr names per OSD (one in ten fuller).
func ruleData(hosts, vms, osds int) ([][]byte, int) {
	type gen struct {
		ls   labels.Labels
		rate float64 // per second, for counters; the value, for gauges
		ctr  bool
	}
	var gens []gen
	add := func(rate float64, ctr bool, kv ...string) {
		gens = append(gens, gen{labels.FromStrings(kv...), rate, ctr})
	}
	for h := range hosts {
		inst := fmt.Sprintf("hv-%04d:9100", h)
		idle := 0.6
		if h%10 == 0 {
			idle = 0.05
		}
		for c := range 8 {
			cpu := strconv.Itoa(c)
			add(idle, true, "__name__", "node_cpu_seconds_total", "cpu", cpu, "instance", inst, "job", "node", "mode", "idle")
			add(1-idle, true, "__name__", "node_cpu_seconds_total", "cpu", cpu, "instance", inst, "job", "node", "mode", "user")
		}
		add(256<<30, false, "__name__", "node_memory_MemTotal_bytes", "instance", inst, "job", "node")
		add(float64((64+h%128)<<30), false, "__name__", "node_memory_MemAvailable_bytes", "instance", inst, "job", "node")
		for _, dev := range []string{"sda", "sdb"} {
			add(0.3, true, "__name__", "node_disk_io_time_seconds_total", "device", dev, "instance", inst, "job", "node")
		}
	}
	for v := range vms {
		inst := fmt.Sprintf("hv-%04d:9177", v%max(hosts, 1))
		dom, uuid := fmt.Sprintf("instance-%06d", v), fmt.Sprintf("00000000-0000-0000-0000-%012d", v)
		add(4*0.3, true, "__name__", "libvirt_domain_info_cpu_time_seconds_total", "domain", dom, "instance", inst, "job", "libvirt", "uuid", uuid)
		add(4, false, "__name__", "libvirt_domain_info_virtual_cpus", "domain", dom, "instance", inst, "job", "libvirt", "uuid", uuid)
		add(0.01*float64(v%20), true, "__name__", "libvirt_domain_vcpu_delay_seconds_total", "domain", dom, "instance", inst, "job", "libvirt", "uuid", uuid, "vcpu", "0")
	}
	for o := range osds {
		d := fmt.Sprintf("osd.%d", o)
		used := 0.5
		if o%10 == 0 {
			used = 0.8
		}
		add(4<<40, false, "__name__", "ceph_osd_stat_bytes", "ceph_daemon", d, "instance", "ceph-mgr:9283", "job", "ceph")
		add(used*float64(4<<40), false, "__name__", "ceph_osd_stat_bytes_used", "ceph_daemon", d, "instance", "ceph-mgr:9283", "job", "ceph")
		add(1, false, "__name__", "ceph_osd_in", "ceph_daemon", d, "instance", "ceph-mgr:9283", "job", "ceph")
		add(1, false, "__name__", "ceph_osd_up", "ceph_daemon", d, "instance", "ceph-mgr:9283", "job", "ceph")
	}
	add(0, false, "__name__", "ceph_health_status", "instance", "ceph-mgr:9283", "job", "ceph")
	const steps = 80
	start := time.Now().Add(-steps * 15 * time.Second)
	var bodies [][]byte
	for s := 0; s <= steps; s++ {
		ts := start.Add(time.Duration(s) * 15 * time.Second).UnixMilli()
		b := &bus.SampleBatch{}
		for _, g := range gens {
			v := g.rate
			if g.ctr {
				v = g.rate * 15 * float64(s)
			}
			b.Series = append(b.Series, bus.Series{Labels: g.ls, Samples: []bus.Sample{{T: ts, V: v}}})
			if len(b.Series) == 2000 {
				bodies = append(bodies, prw.EncodeSnappy(b))
				b = &bus.SampleBatch{}
			}
		}
		if len(b.Series) > 0 {
			bodies = append(bodies, prw.EncodeSnappy(b))
		}
	}
	return bodies, len(gens)
}
