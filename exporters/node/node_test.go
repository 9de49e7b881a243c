package node

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ballast-cloud/ballast/exporters/scrape/scrapetest"
)

func TestGolden(t *testing.T) {
	logger, _ := scrapetest.Logger()
	c, err := New(Config{ProcPath: "testdata/proc"}, logger)
	require.NoError(t, err)
	reg := scrapetest.Registry(t, "node", c, logger)
	scrapetest.CompareGolden(t, reg, "testdata/node.golden")
	require.Equal(t, 1.0, scrapetest.Success(t, reg, "node"))
}

func TestPromtoolOnThisHost(t *testing.T) {
	logger, _ := scrapetest.Logger()
	c, err := New(Config{}, logger)
	require.NoError(t, err)
	reg := scrapetest.Registry(t, "node", c, logger)
	require.Equal(t, 1.0, scrapetest.Success(t, reg, "node"))
	require.Greater(t, scrapetest.Value(t, reg, "node_memory_MemTotal_bytes", nil), 0.0)
	// node_exporter keeps /proc/meminfo's field names, and so must we.
	scrapetest.Promtool(t, reg, regexp.MustCompile(`^node_memory_\w+_bytes metric names should be written in 'snake_case' not 'camelCase'$`))
}

// An unreadable /proc/stat fails the collector (success 0, reason logged)
// while memory is still reported.
func TestUnreadableStat(t *testing.T) {
	proc := t.TempDir()
	meminfo, err := os.ReadFile("testdata/proc/meminfo")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(proc, "meminfo"), meminfo, 0o644))
	require.NoError(t, os.Mkdir(filepath.Join(proc, "stat"), 0o755)) // reading a directory fails, even as root

	logger, logs := scrapetest.Logger()
	c, err := New(Config{ProcPath: proc}, logger)
	require.NoError(t, err)
	reg := scrapetest.Registry(t, "node", c, logger)
	require.Equal(t, 0.0, scrapetest.Success(t, reg, "node"))
	require.Equal(t, 15666184.0*1024, scrapetest.Value(t, reg, "node_memory_MemTotal_bytes", nil))
	require.Contains(t, logs.String(), "read stat")
	require.Contains(t, logs.String(), "Collector failed")
}
