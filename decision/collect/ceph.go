package collect

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	dmodel "github.com/ballast-cloud/ballast/decision/model"
)

// CephMon runs a Ceph mon command (format json added) and returns its
// output; actuators/cephmon.Client is one.
type CephMon interface {
	Command(ctx context.Context, prefix string, args map[string]any) ([]byte, error)
}

// CephInventory reads a live Ceph cluster into the model's Ceph part: OSDs
// with their CRUSH location, weights and usage (`osd df`, `osd tree`),
// replicated pools with the failure domain and root of their CRUSH rule
// (`osd dump`, `osd crush rule dump`), and every PG's raw OSD set, upmap
// exceptions and size (`pg dump pgs`). It has no hosts or instances.
type CephInventory struct {
	Mon CephMon
}

var _ Inventory = (*CephInventory)(nil)

// The answers, as far as the model reads them (Ceph pacific field names;
// later releases keep them).
type (
	cephOSDDump struct {
		OSDs []struct {
			OSD    int     `json:"osd"`
			Up     int     `json:"up"`
			In     int     `json:"in"`
			Weight float64 `json:"weight"`
		} `json:"osds"`
		Pools []struct {
			Pool      int    `json:"pool"`
			PoolName  string `json:"pool_name"`
			Type      int    `json:"type"` // 1 replicated, 3 erasure
			Size      int    `json:"size"`
			PGNum     int    `json:"pg_num"`
			CrushRule int    `json:"crush_rule"`
		} `json:"pools"`
		PGUpmapItems []struct {
			PGID     string             `json:"pgid"`
			Mappings []dmodel.UpmapItem `json:"mappings"`
		} `json:"pg_upmap_items"`
	}
	cephOSDDF struct {
		Nodes []struct {
			ID          int     `json:"id"`
			DeviceClass string  `json:"device_class"`
			CrushWeight float64 `json:"crush_weight"`
			Reweight    float64 `json:"reweight"`
			KB          int64   `json:"kb"`
			KBUsed      int64   `json:"kb_used"`
		} `json:"nodes"`
	}
	cephOSDTree struct {
		Nodes []struct {
			ID       int    `json:"id"`
			Name     string `json:"name"`
			Type     string `json:"type"`
			Children []int  `json:"children"`
		} `json:"nodes"`
	}
	cephCrushRule struct {
		RuleID int `json:"rule_id"`
		Steps  []struct {
			Op       string `json:"op"`
			ItemName string `json:"item_name"`
			Type     string `json:"type"`
		} `json:"steps"`
	}
	cephPGStat struct {
		PGID    string `json:"pgid"`
		Up      []int  `json:"up"`
		StatSum struct {
			NumBytes   int64 `json:"num_bytes"`
			NumObjects int64 `json:"num_objects"`
		} `json:"stat_sum"`
	}
)

// Inventory reads the cluster.
func (c *CephInventory) Inventory(ctx context.Context) (*dmodel.Cluster, error) {
	var (
		dump  cephOSDDump
		df    cephOSDDF
		tree  cephOSDTree
		rules []cephCrushRule
	)
	for _, q := range []struct {
		prefix string
		args   map[string]any
		into   any
	}{
		{"osd dump", nil, &dump},
		{"osd df", nil, &df},
		{"osd tree", nil, &tree},
		{"osd crush rule dump", nil, &rules},
	} {
		if err := c.read(ctx, q.prefix, q.args, q.into); err != nil {
			return nil, err
		}
	}
	out, err := c.Mon.Command(ctx, "pg dump", map[string]any{"dumpcontents": []string{"pgs"}})
	if err != nil {
		return nil, fmt.Errorf("ceph inventory: %w", err)
	}
	pgs, err := parsePGStats(out)
	if err != nil {
		return nil, fmt.Errorf("ceph inventory: %w", err)
	}
	ceph, err := buildCeph(dump, df, tree, rules, pgs)
	if err != nil {
		return nil, fmt.Errorf("ceph inventory: %w", err)
	}
	return &dmodel.Cluster{Version: dmodel.Version, Source: "ceph", Timestamp: time.Now(), Ceph: ceph}, nil
}

func (c *CephInventory) read(ctx context.Context, prefix string, args map[string]any, into any) error {
	out, err := c.Mon.Command(ctx, prefix, args)
	if err != nil {
		return fmt.Errorf("ceph inventory: %w", err)
	}
	if err := json.Unmarshal(out, into); err != nil {
		return fmt.Errorf("ceph inventory: parse %q answer: %w", prefix, err)
	}
	return nil
}

// parsePGStats reads `pg dump pgs`: a bare list, {"pg_stats": […]} or
// {"pg_map": {"pg_stats": […]}} depending on the release.
func parsePGStats(out []byte) ([]cephPGStat, error) {
	var list []cephPGStat
	if err := json.Unmarshal(out, &list); err == nil {
		return list, nil
	}
	var wrapped struct {
		PGStats []cephPGStat `json:"pg_stats"`
		PGMap   *struct {
			PGStats []cephPGStat `json:"pg_stats"`
		} `json:"pg_map"`
	}
	if err := json.Unmarshal(out, &wrapped); err != nil {
		return nil, fmt.Errorf("parse \"pg dump pgs\" answer: %w", err)
	}
	if wrapped.PGMap != nil && len(wrapped.PGStats) == 0 {
		return wrapped.PGMap.PGStats, nil
	}
	return wrapped.PGStats, nil
}

// buildCeph joins the answers into the model's form.
func buildCeph(dump cephOSDDump, df cephOSDDF, tree cephOSDTree, rules []cephCrushRule, pgs []cephPGStat) (*dmodel.Ceph, error) {
	// CRUSH location: walk up from each OSD through the buckets' children.
	type bucket struct{ name, typ string }
	parent := map[int]int{}
	buckets := map[int]bucket{}
	for _, n := range tree.Nodes {
		if n.ID < 0 {
			buckets[n.ID] = bucket{n.Name, n.Type}
		}
		for _, ch := range n.Children {
			parent[ch] = n.ID
		}
	}
	usage := map[int]int{}
	for i, n := range df.Nodes {
		usage[n.ID] = i
	}
	ceph := &dmodel.Ceph{}
	for _, o := range dump.OSDs {
		osd := dmodel.OSD{ID: o.OSD, Up: o.Up == 1, In: o.In == 1, Reweight: o.Weight, CrushLocation: map[string]string{}}
		seen := map[int]bool{}
		for p, ok := parent[o.OSD]; ok && !seen[p]; p, ok = parent[p] {
			seen[p] = true
			if b, ok := buckets[p]; ok {
				osd.CrushLocation[b.typ] = b.name
			}
		}
		osd.Host = osd.CrushLocation["host"]
		if i, ok := usage[o.OSD]; ok {
			n := df.Nodes[i]
			osd.DeviceClass, osd.CrushWeight = n.DeviceClass, n.CrushWeight
			osd.BytesTotal, osd.BytesUsed = n.KB*1024, n.KBUsed*1024
		}
		if osd.Host == "" {
			// An OSD outside the CRUSH tree takes no PGs; give it a
			// stable bucket so the model still validates.
			osd.Host = fmt.Sprintf("osd.%d", o.OSD)
		}
		ceph.OSDs = append(ceph.OSDs, osd)
	}
	byRule := map[int]cephCrushRule{}
	for _, r := range rules {
		byRule[r.RuleID] = r
	}
	replicated := map[int]bool{}
	for _, p := range dump.Pools {
		if p.Type != 1 {
			continue // erasure-coded pools: their upmap rules differ; left alone
		}
		pool := dmodel.Pool{ID: p.Pool, Name: p.PoolName, Size: p.Size, PGNum: p.PGNum}
		if r, ok := byRule[p.CrushRule]; ok {
			for _, s := range r.Steps {
				switch {
				case s.Op == "take":
					root, class, _ := strings.Cut(s.ItemName, "~")
					pool.Root, pool.DeviceClass = root, class
				case strings.HasPrefix(s.Op, "choose") && s.Type != "":
					pool.FailureDomain = s.Type
				}
			}
		}
		replicated[p.Pool] = true
		ceph.Pools = append(ceph.Pools, pool)
	}
	upmaps := map[string][]dmodel.UpmapItem{}
	for _, u := range dump.PGUpmapItems {
		upmaps[u.PGID] = u.Mappings
	}
	size := map[int]int{}
	for _, p := range ceph.Pools {
		size[p.ID] = p.Size
	}
	known := map[int]bool{}
	for _, o := range ceph.OSDs {
		known[o.ID] = true
	}
	for _, s := range pgs {
		poolID, _, ok := strings.Cut(s.PGID, ".")
		if !ok {
			return nil, fmt.Errorf("pg dump: pgid %q is not <pool>.<seed>", s.PGID)
		}
		var id int
		if _, err := fmt.Sscanf(poolID, "%d", &id); err != nil {
			return nil, fmt.Errorf("pg dump: pgid %q is not <pool>.<seed>", s.PGID)
		}
		if !replicated[id] || !complete(s.Up, size[id], known) {
			// A degraded PG (an OSD missing from its up set) is left
			// alone: recovery, not balancing, comes first.
			continue
		}
		items := upmaps[s.PGID]
		pg := dmodel.PG{ID: s.PGID, Pool: id, Raw: rawSet(s.Up, items), UpmapItems: items,
			Bytes: s.StatSum.NumBytes, Objects: s.StatSum.NumObjects}
		ceph.PGs = append(ceph.PGs, pg)
	}
	sort.Slice(ceph.OSDs, func(i, j int) bool { return ceph.OSDs[i].ID < ceph.OSDs[j].ID })
	sort.Slice(ceph.PGs, func(i, j int) bool { return ceph.PGs[i].ID < ceph.PGs[j].ID })
	if len(ceph.OSDs) == 0 {
		return nil, errors.New("osd dump lists no OSDs")
	}
	return ceph, nil
}

// rawSet undoes upmap items on an up set: the OSDs CRUSH chose.
func rawSet(up []int, items []dmodel.UpmapItem) []int {
	raw := make([]int, len(up))
	copy(raw, up)
	for i, o := range raw {
		for _, it := range items {
			if it.To == o {
				raw[i] = it.From
			}
		}
	}
	return raw
}

// complete reports whether up has size distinct, known OSDs (no
// CRUSH_ITEM_NONE hole).
func complete(up []int, size int, known map[int]bool) bool {
	if len(up) != size {
		return false
	}
	seen := map[int]bool{}
	for _, o := range up {
		if !known[o] || seen[o] {
			return false
		}
		seen[o] = true
	}
	return true
}
