package ceph

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// commandError is a command that librados could not run (as opposed to an
// answer that did not parse): the connection is suspect.
type commandError struct {
	prefix string
	info   string
	err    error
}

func (e *commandError) Error() string {
	if e.info != "" {
		return fmt.Sprintf("ceph command %q: %v (%s)", e.prefix, e.err, e.info)
	}
	return fmt.Sprintf("ceph command %q: %v", e.prefix, e.err)
}
func (e *commandError) Unwrap() error { return e.err }

func command(conn Commander, mgr bool, prefix string, extra map[string]any) ([]byte, error) {
	args := map[string]any{"prefix": prefix, "format": "json"}
	for k, v := range extra {
		args[k] = v
	}
	req, err := json.Marshal(args)
	if err != nil {
		return nil, fmt.Errorf("encode ceph command %q: %w", prefix, err)
	}
	var out []byte
	var info string
	if mgr {
		out, info, err = conn.MgrCommand([][]byte{req})
	} else {
		out, info, err = conn.MonCommand(req)
	}
	if err != nil {
		return nil, &commandError{prefix: prefix, info: info, err: err}
	}
	return out, nil
}

// The answers, as far as Ballast reads them. Field names follow the JSON
// of Ceph pacific (16.2); later releases keep them.
type (
	healthReply struct {
		Status string `json:"status"`
		Checks map[string]struct {
			Severity string `json:"severity"`
		} `json:"checks"`
	}
	osdDumpReply struct {
		OSDs []struct {
			OSD    int     `json:"osd"`
			Up     int     `json:"up"`
			In     int     `json:"in"`
			Weight float64 `json:"weight"`
		} `json:"osds"`
		Pools []struct {
			Pool     int    `json:"pool"`
			PoolName string `json:"pool_name"`
			Type     int    `json:"type"`
			Size     int    `json:"size"`
			MinSize  int    `json:"min_size"`
			PGNum    int    `json:"pg_num"`
		} `json:"pools"`
		PGUpmapItems []struct {
			PGID     string `json:"pgid"`
			Mappings []struct {
				From int `json:"from"`
				To   int `json:"to"`
			} `json:"mappings"`
		} `json:"pg_upmap_items"`
	}
	osdDFReply struct {
		Nodes []struct {
			ID          int     `json:"id"`
			Name        string  `json:"name"`
			DeviceClass string  `json:"device_class"`
			CrushWeight float64 `json:"crush_weight"`
			Reweight    float64 `json:"reweight"`
			KB          uint64  `json:"kb"`
			KBUsed      uint64  `json:"kb_used"`
			Utilization float64 `json:"utilization"`
			PGs         int     `json:"pgs"`
		} `json:"nodes"`
	}
	osdMetadataReply []struct {
		ID          int    `json:"id"`
		Hostname    string `json:"hostname"`
		Objectstore string `json:"osd_objectstore"`
		CephVersion string `json:"ceph_version_short"`
	}
	dfReply struct {
		Stats struct {
			TotalBytes        uint64 `json:"total_bytes"`
			TotalUsedBytes    uint64 `json:"total_used_bytes"`
			TotalUsedRawBytes uint64 `json:"total_used_raw_bytes"`
		} `json:"stats"`
		Pools []struct {
			Name  string `json:"name"`
			ID    int    `json:"id"`
			Stats struct {
				Stored      uint64  `json:"stored"`
				Objects     uint64  `json:"objects"`
				BytesUsed   uint64  `json:"bytes_used"`
				PercentUsed float64 `json:"percent_used"`
				MaxAvail    uint64  `json:"max_avail"`
			} `json:"stats"`
		} `json:"pools"`
	}
	pgBrief struct {
		PGID  string `json:"pgid"`
		State string `json:"state"`
	}
	balancerReply struct {
		Active bool   `json:"active"`
		Mode   string `json:"mode"`
	}
)

// snapshot is one scrape's view of the cluster.
type snapshot struct {
	health   healthReply
	osdDump  osdDumpReply
	osdDF    osdDFReply
	metadata osdMetadataReply
	df       dfReply
	pgs      []pgBrief
	balancer *balancerReply // nil when the balancer module is off
}

// read runs the commands the collector needs. Each answer is parsed
// strictly enough that a cluster answering garbage fails the scrape.
func read(conn Commander) (*snapshot, error) {
	s := &snapshot{}
	for _, q := range []struct {
		mgr    bool
		prefix string
		extra  map[string]any
		into   any
	}{
		{false, "health", nil, &s.health},
		{false, "osd dump", nil, &s.osdDump},
		{false, "osd df", nil, &s.osdDF},
		{false, "osd metadata", nil, &s.metadata},
		{false, "df", map[string]any{"detail": "detail"}, &s.df},
	} {
		out, err := command(conn, q.mgr, q.prefix, q.extra)
		if err != nil {
			return nil, err
		}
		if err := json.Unmarshal(out, q.into); err != nil {
			return nil, fmt.Errorf("parse ceph %q answer: %w", q.prefix, err)
		}
	}
	out, err := command(conn, true, "pg dump", map[string]any{"dumpcontents": []string{"pgs_brief"}})
	if err != nil {
		return nil, err
	}
	if s.pgs, err = parsePGsBrief(out); err != nil {
		return nil, err
	}
	// The balancer is an always-on mgr module from nautilus on; a cluster
	// where it is disabled answers with an error that is not ours to fail on.
	if out, err := command(conn, true, "balancer status", nil); err == nil {
		var b balancerReply
		if err := json.Unmarshal(out, &b); err != nil {
			return nil, fmt.Errorf("parse ceph \"balancer status\" answer: %w", err)
		}
		s.balancer = &b
	}
	return s, nil
}

// parsePGsBrief reads `pg dump pgs_brief`, which is a bare list on some
// releases and {"pg_stats": [...]} on others.
func parsePGsBrief(out []byte) ([]pgBrief, error) {
	var list []pgBrief
	if err := json.Unmarshal(out, &list); err == nil {
		return list, nil
	}
	var wrapped struct {
		PGStats []pgBrief `json:"pg_stats"`
	}
	if err := json.Unmarshal(out, &wrapped); err != nil {
		return nil, fmt.Errorf("parse ceph \"pg dump pgs_brief\" answer: %w", err)
	}
	return wrapped.PGStats, nil
}

// pgStates are the states the mgr prometheus module exports as ceph_pg_<state>
// (PG_STATES in src/pybind/mgr/prometheus/module.py), zero included.
var pgStates = []string{
	"active", "clean", "down", "recovery_unfound", "backfill_unfound", "scrubbing", "degraded",
	"inconsistent", "peering", "repair", "recovering", "forced_recovery", "backfill_wait",
	"incomplete", "stale", "remapped", "deep", "backfilling", "forced_backfill", "backfill_toofull",
	"recovery_wait", "recovery_toofull", "undersized", "activating", "peered", "snaptrim",
	"snaptrim_wait", "snaptrim_error", "creating", "unknown", "premerge", "failed_repair", "laggy", "wait",
}

// pgCounts counts PGs per pool and state; a PG in "active+clean" counts for
// both, as in the mgr module. Keys are pool ids as strings.
func pgCounts(pgs []pgBrief) (map[string]map[string]int, map[string]int) {
	byPool := map[string]map[string]int{}
	totals := map[string]int{}
	for _, p := range pgs {
		pool, _, ok := strings.Cut(p.PGID, ".")
		if !ok {
			continue
		}
		if byPool[pool] == nil {
			byPool[pool] = map[string]int{}
		}
		totals[pool]++
		for _, st := range strings.Split(p.State, "+") {
			byPool[pool][st]++
		}
	}
	return byPool, totals
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		a, ea := strconv.Atoi(keys[i])
		b, eb := strconv.Atoi(keys[j])
		if ea == nil && eb == nil {
			return a < b
		}
		return keys[i] < keys[j]
	})
	return keys
}
