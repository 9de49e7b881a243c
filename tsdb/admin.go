package tsdb

import (
	"context"

	"github.com/prometheus/prometheus/model/labels"
	ptsdb "github.com/prometheus/prometheus/tsdb"
)

// The methods below give the Prometheus HTTP API (status/tsdb, walreplay,
// admin endpoints) what it reads from a Prometheus server's storage.

// CleanTombstones removes deleted data from disk.
func (s *Storage) CleanTombstones() error { return s.db.CleanTombstones() }

// Delete marks the matching series' samples in [mint, maxt] as deleted.
func (s *Storage) Delete(ctx context.Context, mint, maxt int64, ms ...*labels.Matcher) error {
	return s.db.Delete(ctx, mint, maxt, ms...)
}

// Snapshot writes a consistent copy of the data to dir.
func (s *Storage) Snapshot(dir string, withHead bool) error { return s.db.Snapshot(dir, withHead) }

// Stats returns head cardinality statistics.
func (s *Storage) Stats(statsByLabelName string, limit int) (*ptsdb.Stats, error) {
	return s.db.Head().Stats(statsByLabelName, limit), nil
}

// WALReplayStatus reports WAL replay progress (complete once Open returned).
func (s *Storage) WALReplayStatus() (ptsdb.WALReplayStatus, error) {
	return s.stats.Head.WALReplayStatus.GetWALReplayStatus(), nil
}

// BlockMetas lists the persisted blocks.
func (s *Storage) BlockMetas() ([]ptsdb.BlockMeta, error) { return s.db.BlockMetas(), nil }

// StartTime is the timestamp of the oldest sample stored, in milliseconds.
func (s *Storage) StartTime() (int64, error) {
	if blocks := s.db.Blocks(); len(blocks) > 0 {
		return blocks[0].Meta().MinTime, nil
	}
	return s.db.Head().MinTime(), nil
}

// WriteNotifier is told after every WAL write (remote-write forwarding uses it
// to tail the WAL without polling).
type WriteNotifier interface{ Notify() }

// NotifyWrites registers n to be told about WAL writes.
func (s *Storage) NotifyWrites(n WriteNotifier) { s.db.SetWriteNotified(n) }

// Path returns the data directory; its wal/ subdirectory is the write-ahead log.
func (s *Storage) Path() string { return s.cfg.Path }
