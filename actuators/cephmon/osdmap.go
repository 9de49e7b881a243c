package cephmon

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/ballast-cloud/ballast/decision/action"
)

// Mon runs mon commands; *Client is one. The actuators depend on this one
// method.
type Mon interface {
	Command(ctx context.Context, prefix string, args map[string]any) ([]byte, error)
}

// OSDMap is what the actuators read of `osd dump` (Ceph pacific field
// names; later releases keep them).
type OSDMap struct {
	Epoch int `json:"epoch"`
	OSDs  []struct {
		ID int `json:"osd"`
		Up int `json:"up"`
		In int `json:"in"`
		// Weight is the override weight (`ceph osd reweight`), in [0,1].
		Weight float64 `json:"weight"`
	} `json:"osds"`
	Pools []struct {
		ID    int    `json:"pool"`
		Name  string `json:"pool_name"`
		Size  int    `json:"size"`
		PGNum int    `json:"pg_num"`
	} `json:"pools"`
	PGUpmapItems []struct {
		PGID     string             `json:"pgid"`
		Mappings []action.UpmapPair `json:"mappings"`
	} `json:"pg_upmap_items"`
}

// ReadOSDMap runs `osd dump`.
func ReadOSDMap(ctx context.Context, mon Mon) (*OSDMap, error) {
	out, err := mon.Command(ctx, "osd dump", nil)
	if err != nil {
		return nil, err
	}
	var m OSDMap
	if err := json.Unmarshal(out, &m); err != nil {
		return nil, fmt.Errorf("parse ceph osd dump: %w", err)
	}
	return &m, nil
}

// OSD describes osd.id: whether it exists, is up and in, and its weight.
func (m *OSDMap) OSD(id int) (exists, up, in bool, weight float64) {
	for _, o := range m.OSDs {
		if o.ID == id {
			return true, o.Up == 1, o.In == 1, o.Weight
		}
	}
	return false, false, false, 0
}

// ParsePGID splits "pool.seed" (the seed is hexadecimal).
func ParsePGID(pgid string) (pool int, seed uint64, err error) {
	p, s, ok := strings.Cut(pgid, ".")
	if ok {
		pool, err = strconv.Atoi(p)
	}
	if ok && err == nil {
		seed, err = strconv.ParseUint(s, 16, 32)
	}
	if !ok || err != nil || pool < 0 {
		return 0, 0, fmt.Errorf("pgid %q is not <pool>.<hex seed>", pgid)
	}
	return pool, seed, nil
}

// PGExists reports whether the PG's pool exists and has that many PGs.
func (m *OSDMap) PGExists(pgid string) bool {
	pool, seed, err := ParsePGID(pgid)
	if err != nil {
		return false
	}
	for _, p := range m.Pools {
		if p.ID == pool {
			return seed < uint64(p.PGNum)
		}
	}
	return false
}

// Upmap returns the PG's pg_upmap_items (nil when it has none).
func (m *OSDMap) Upmap(pgid string) []action.UpmapPair {
	for _, u := range m.PGUpmapItems {
		if u.PGID == pgid {
			return u.Mappings
		}
	}
	return nil
}

// SameUpmap compares two pg_upmap_items lists as sets.
func SameUpmap(a, b []action.UpmapPair) bool {
	key := func(p action.UpmapPair) string { return fmt.Sprintf("%d>%d", p.From, p.To) }
	ka, kb := make([]string, len(a)), make([]string, len(b))
	for i, p := range a {
		ka[i] = key(p)
	}
	for i, p := range b {
		kb[i] = key(p)
	}
	slices.Sort(ka)
	slices.Sort(kb)
	return slices.Equal(ka, kb)
}

// FormatUpmap renders items as Ceph prints them: [1->0,2->3].
func FormatUpmap(items []action.UpmapPair) string {
	parts := make([]string, len(items))
	for i, it := range items {
		parts[i] = fmt.Sprintf("%d->%d", it.From, it.To)
	}
	return "[" + strings.Join(parts, ",") + "]"
}

// PGMapping is a PG's placement from `pg map`.
type PGMapping struct {
	PGID   string `json:"pgid"`
	Up     []int  `json:"up"`
	Acting []int  `json:"acting"`
}

// ReadPGMap runs `pg map <pgid>`.
func ReadPGMap(ctx context.Context, mon Mon, pgid string) (*PGMapping, error) {
	out, err := mon.Command(ctx, "pg map", map[string]any{"pgid": pgid})
	if err != nil {
		return nil, err
	}
	var m PGMapping
	if err := json.Unmarshal(out, &m); err != nil {
		return nil, fmt.Errorf("parse ceph pg map %s: %w", pgid, err)
	}
	return &m, nil
}

// RawSet undoes upmap items on an up set: the OSDs CRUSH chose.
func RawSet(up []int, items []action.UpmapPair) []int {
	raw := slices.Clone(up)
	for i, o := range raw {
		for _, it := range items {
			if it.To == o {
				raw[i] = it.From
			}
		}
	}
	return raw
}
