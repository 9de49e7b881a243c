package ceph

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/ballast-cloud/ballast/exporters/scrape/scrapetest"
)

// replay answers commands with replies recorded from the project's test
// cluster (scripts/ceph.sh, Ceph 16.2) by `ceph <command> -f json`.
type replay struct{ dir string }

func (r replay) answer(req []byte) ([]byte, string, error) {
	var args struct {
		Prefix string `json:"prefix"`
	}
	if err := json.Unmarshal(req, &args); err != nil {
		return nil, "", err
	}
	b, err := os.ReadFile(filepath.Join(r.dir, strings.ReplaceAll(args.Prefix, " ", "_")+".json"))
	if err != nil {
		return nil, "ENOENT", fmt.Errorf("no recorded reply for %q", args.Prefix)
	}
	return b, "", nil
}

func (r replay) MonCommand(req []byte) ([]byte, string, error)   { return r.answer(req) }
func (r replay) MgrCommand(req [][]byte) ([]byte, string, error) { return r.answer(req[0]) }

func replayCollector(t *testing.T, c Commander) (*Collector, *scrapetest.Logs) {
	t.Helper()
	logger, logs := scrapetest.Logger()
	col, err := New(Config{}, logger)
	require.NoError(t, err)
	col.connect = func(Config) (Commander, func(), error) { return c, func() {}, nil }
	return col, logs
}

func TestRecordedGolden(t *testing.T) {
	col, _ := replayCollector(t, replay{"testdata/replies"})
	logger, _ := scrapetest.Logger()
	reg := scrapetest.Registry(t, "ceph", col, logger)
	scrapetest.CompareGolden(t, reg, "testdata/ceph.golden")
	require.Equal(t, 1.0, scrapetest.Success(t, reg, "ceph"))
	require.Equal(t, 1.0, scrapetest.Value(t, reg, "ballast_ceph_upmap_items", nil))
	require.Equal(t, 16.0, scrapetest.Value(t, reg, "ceph_pg_total", map[string]string{"pool_id": "3"}))
	scrapetest.Promtool(t, reg, mgrModuleNames)
}

// mgrModuleNames accepts the promtool finding on a name the Ceph mgr
// module exports and dashboards query, which we keep verbatim.
var mgrModuleNames = regexp.MustCompile(`^ceph_pg_total non-counter metrics should not have "_total" suffix$`)

// failing answers every command with an error, as librados does when the
// mons stop answering on an open connection.
type failing struct{}

func (failing) MonCommand([]byte) ([]byte, string, error) {
	return nil, "", fmt.Errorf("rados: ret=-110, Connection timed out")
}
func (failing) MgrCommand([][]byte) ([]byte, string, error) { return failing{}.MonCommand(nil) }

func TestCommandFailureDropsConnection(t *testing.T) {
	col, logs := replayCollector(t, failing{})
	dials := 0
	col.connect = func(Config) (Commander, func(), error) { dials++; return failing{}, func() {}, nil }
	logger, _ := scrapetest.Logger()
	reg := scrapetest.Registry(t, "ceph", col, logger)
	require.Equal(t, 0.0, scrapetest.Success(t, reg, "ceph"))
	require.Equal(t, 0.0, scrapetest.Value(t, reg, "ballast_ceph_up", nil))
	require.Equal(t, 2, dials, "each scrape after a failed command reconnects")
	_ = logs
}

func TestGarbageAnswerFails(t *testing.T) {
	dir := t.TempDir()
	entries, err := os.ReadDir("testdata/replies")
	require.NoError(t, err)
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join("testdata/replies", e.Name()))
		require.NoError(t, err)
		if e.Name() == "osd_df.json" {
			b = []byte(`{"nodes": "not a list"}`)
		}
		require.NoError(t, os.WriteFile(filepath.Join(dir, e.Name()), b, 0o644))
	}
	logger, logs := scrapetest.Logger()
	col, _ := replayCollector(t, replay{dir})
	reg := scrapetest.Registry(t, "ceph", col, logger)
	require.Equal(t, 0.0, scrapetest.Success(t, reg, "ceph"))
	require.Contains(t, logs.String(), `parse ceph \"osd df\" answer`)
}

// A cluster whose monitor does not answer fails the scrape within the
// configured timeout, with the reason logged, and the exporter keeps serving.
func TestMonUnreachable(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "ceph.conf")
	require.NoError(t, os.WriteFile(conf, []byte(`[global]
mon host = [v2:127.0.0.1:1,v1:127.0.0.1:2]
auth cluster required = none
auth service required = none
auth client required = none
log file = `+filepath.Join(dir, "client.log")+`
`), 0o644))
	logger, logs := scrapetest.Logger()
	col, err := New(Config{ConfigFile: conf, Timeout: 2 * time.Second}, logger)
	require.NoError(t, err)
	reg := scrapetest.Registry(t, "ceph", col, logger)
	require.Equal(t, 0.0, scrapetest.Success(t, reg, "ceph"))
	require.Equal(t, 0.0, scrapetest.Value(t, reg, "ballast_ceph_up", nil))
	require.Contains(t, logs.String(), "connect to ceph")
	require.NoError(t, col.Close())
}

func TestConfigValidation(t *testing.T) {
	_, err := New(Config{Timeout: time.Millisecond}, nil)
	require.ErrorContains(t, err, "ceph.timeout")
}

// FuzzReplies feeds arbitrary bytes as every command's answer: parsing and
// emitting must never panic.
func FuzzReplies(f *testing.F) {
	entries, err := os.ReadDir("testdata/replies")
	require.NoError(f, err)
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join("testdata/replies", e.Name()))
		require.NoError(f, err)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := read(constant(b))
		if err != nil {
			return
		}
		ch := make(chan prometheus.Metric, 1<<12)
		go func() { s.emit(ch); close(ch) }()
		for range ch {
		}
	})
}

type constant []byte

func (c constant) MonCommand([]byte) ([]byte, string, error)   { return c, "", nil }
func (c constant) MgrCommand([][]byte) ([]byte, string, error) { return c, "", nil }
