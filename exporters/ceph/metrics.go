package ceph

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

var (
	osdLabels  = []string{"ceph_daemon"}
	poolLabels = []string{"pool_id"}

	upDesc = prometheus.NewDesc("ballast_ceph_up", "Whether the cluster answered every command on this scrape (1) or not (0).", nil, nil)

	// Names and labels of the mgr prometheus module.
	healthStatusDesc = prometheus.NewDesc("ceph_health_status", "Cluster health status (0 HEALTH_OK, 1 HEALTH_WARN, 2 HEALTH_ERR).", nil, nil)
	healthDetailDesc = prometheus.NewDesc("ceph_health_detail", "A raised health check; the value is 1.", []string{"name", "severity"}, nil)
	osdUpDesc        = prometheus.NewDesc("ceph_osd_up", "OSD up (1) or down (0).", osdLabels, nil)
	osdInDesc        = prometheus.NewDesc("ceph_osd_in", "OSD in (1) or out (0).", osdLabels, nil)
	osdWeightDesc    = prometheus.NewDesc("ceph_osd_weight", "OSD reweight override (0..1), as `ceph osd reweight` sets it.", osdLabels, nil)
	osdStatBytes     = prometheus.NewDesc("ceph_osd_stat_bytes", "OSD size in bytes.", osdLabels, nil)
	osdStatBytesUsed = prometheus.NewDesc("ceph_osd_stat_bytes_used", "OSD bytes used.", osdLabels, nil)
	osdNumPGDesc     = prometheus.NewDesc("ceph_osd_numpg", "PGs placed on the OSD.", osdLabels, nil)
	osdMetadataDesc  = prometheus.NewDesc("ceph_osd_metadata", "OSD metadata; the value is 1.",
		[]string{"ceph_daemon", "hostname", "device_class", "objectstore", "ceph_version"}, nil)
	poolMetadataDesc = prometheus.NewDesc("ceph_pool_metadata", "Pool metadata; the value is 1.", []string{"pool_id", "name", "type"}, nil)
	poolStoredDesc   = prometheus.NewDesc("ceph_pool_stored", "Data stored in the pool, before replication, in bytes.", poolLabels, nil)
	poolMaxAvailDesc = prometheus.NewDesc("ceph_pool_max_avail", "Bytes the pool can still store, after replication.", poolLabels, nil)
	poolObjectsDesc  = prometheus.NewDesc("ceph_pool_objects", "Objects in the pool.", poolLabels, nil)
	poolBytesUsed    = prometheus.NewDesc("ceph_pool_bytes_used", "Raw bytes the pool uses, with replication.", poolLabels, nil)
	poolPercentUsed  = prometheus.NewDesc("ceph_pool_percent_used", "Fraction of the pool's capacity used (0..1).", poolLabels, nil)
	pgTotalDesc      = prometheus.NewDesc("ceph_pg_total", "PGs in the pool.", poolLabels, nil)
	clusterTotal     = prometheus.NewDesc("ceph_cluster_total_bytes", "Raw capacity of the cluster in bytes.", nil, nil)
	clusterUsed      = prometheus.NewDesc("ceph_cluster_total_used_bytes", "Bytes used in the cluster.", nil, nil)
	clusterUsedRaw   = prometheus.NewDesc("ceph_cluster_total_used_raw_bytes", "Raw bytes used in the cluster.", nil, nil)
	pgStateDescs     = func() map[string]*prometheus.Desc {
		m := map[string]*prometheus.Desc{}
		for _, st := range pgStates {
			m[st] = prometheus.NewDesc("ceph_pg_"+st, "PGs of the pool in state "+st+".", poolLabels, nil)
		}
		return m
	}()

	// Ballast's additions, with the module's label names.
	crushWeightDesc = prometheus.NewDesc("ballast_ceph_osd_crush_weight", "CRUSH weight of the OSD (its share of data, usually its size in TiB).", osdLabels, nil)
	utilDesc        = prometheus.NewDesc("ballast_ceph_osd_utilization_ratio", "Fraction of the OSD's capacity used (0..1), as `ceph osd df` reports it.", osdLabels, nil)
	poolSizeDesc    = prometheus.NewDesc("ballast_ceph_pool_size", "Replicas (or k+m chunks) the pool keeps of each object.", poolLabels, nil)
	poolMinSizeDesc = prometheus.NewDesc("ballast_ceph_pool_min_size", "Replicas the pool needs to accept IO.", poolLabels, nil)
	poolPGNumDesc   = prometheus.NewDesc("ballast_ceph_pool_pg_num", "PGs the pool is split into.", poolLabels, nil)
	upmapItemsDesc  = prometheus.NewDesc("ballast_ceph_upmap_items", "PGs with a pg-upmap-items exception in the OSD map.", nil, nil)
	upmapPairsDesc  = prometheus.NewDesc("ballast_ceph_upmap_mappings", "from->to OSD pairs across all pg-upmap-items exceptions.", nil, nil)
	balancerActive  = prometheus.NewDesc("ballast_ceph_balancer_active", "Whether the mgr balancer runs automatically (1) or not (0).", nil, nil)
	balancerInfo    = prometheus.NewDesc("ballast_ceph_balancer_info", "Balancer mode; the value is 1.", []string{"mode"}, nil)

	healthCodes = map[string]float64{"HEALTH_OK": 0, "HEALTH_WARN": 1, "HEALTH_ERR": 2}
	poolTypes   = map[int]string{1: "replicated", 3: "erasure"}
)

func osdName(id int) string { return "osd." + strconv.Itoa(id) }

func (s *snapshot) emit(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, lv ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, lv...)
	}
	if code, ok := healthCodes[s.health.Status]; ok {
		gauge(healthStatusDesc, code)
	}
	for _, name := range sortedKeys(s.health.Checks) {
		gauge(healthDetailDesc, 1, name, s.health.Checks[name].Severity)
	}
	for _, o := range s.osdDump.OSDs {
		d := osdName(o.OSD)
		gauge(osdUpDesc, float64(o.Up), d)
		gauge(osdInDesc, float64(o.In), d)
		gauge(osdWeightDesc, o.Weight, d)
	}
	classes := map[int]string{}
	for _, n := range s.osdDF.Nodes {
		d := osdName(n.ID)
		classes[n.ID] = n.DeviceClass
		gauge(osdStatBytes, float64(n.KB)*1024, d)
		gauge(osdStatBytesUsed, float64(n.KBUsed)*1024, d)
		gauge(osdNumPGDesc, float64(n.PGs), d)
		gauge(crushWeightDesc, n.CrushWeight, d)
		gauge(utilDesc, n.Utilization/100, d)
	}
	for _, m := range s.metadata {
		gauge(osdMetadataDesc, 1, osdName(m.ID), m.Hostname, classes[m.ID], m.Objectstore, m.CephVersion)
	}
	gauge(clusterTotal, float64(s.df.Stats.TotalBytes))
	gauge(clusterUsed, float64(s.df.Stats.TotalUsedBytes))
	gauge(clusterUsedRaw, float64(s.df.Stats.TotalUsedRawBytes))
	for _, p := range s.osdDump.Pools {
		id := strconv.Itoa(p.Pool)
		typ := poolTypes[p.Type]
		if typ == "" {
			typ = strconv.Itoa(p.Type)
		}
		gauge(poolMetadataDesc, 1, id, p.PoolName, typ)
		gauge(poolSizeDesc, float64(p.Size), id)
		gauge(poolMinSizeDesc, float64(p.MinSize), id)
		gauge(poolPGNumDesc, float64(p.PGNum), id)
	}
	for _, p := range s.df.Pools {
		id := strconv.Itoa(p.ID)
		gauge(poolStoredDesc, float64(p.Stats.Stored), id)
		gauge(poolMaxAvailDesc, float64(p.Stats.MaxAvail), id)
		gauge(poolObjectsDesc, float64(p.Stats.Objects), id)
		gauge(poolBytesUsed, float64(p.Stats.BytesUsed), id)
		gauge(poolPercentUsed, p.Stats.PercentUsed, id)
	}
	byPool, totals := pgCounts(s.pgs)
	for _, pool := range sortedKeys(totals) {
		gauge(pgTotalDesc, float64(totals[pool]), pool)
		for _, st := range pgStates {
			gauge(pgStateDescs[st], float64(byPool[pool][st]), pool)
		}
	}
	pairs := 0
	for _, u := range s.osdDump.PGUpmapItems {
		pairs += len(u.Mappings)
	}
	gauge(upmapItemsDesc, float64(len(s.osdDump.PGUpmapItems)))
	gauge(upmapPairsDesc, float64(pairs))
	if b := s.balancer; b != nil {
		active := 0.0
		if b.Active {
			active = 1
		}
		gauge(balancerActive, active)
		gauge(balancerInfo, 1, b.Mode)
	}
}
