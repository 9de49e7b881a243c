package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/ballast-cloud/ballast/collector/bus"
)

// TestRemoteWriteForwarding checks that everything one Ballast stores is
// forwarded to the remote_write endpoint in its configuration (here a second
// Ballast, standing in for Thanos/Mimir/VictoriaMetrics).
func TestRemoteWriteForwarding(t *testing.T) {
	upstream := startServer(t, t.TempDir())
	dir := t.TempDir()
	cfg := filepath.Join(dir, "ballast.yml")
	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf(`
remote_write:
  - url: %s/api/v1/write
    queue_config:
      batch_send_deadline: 200ms
`, upstream.url)), 0o644))
	edge := startServer(t, filepath.Join(dir, "data"), "--config.file", cfg)

	// Prometheus's queue managers forward samples timestamped after they
	// started (docs/storage.md): write live samples, 10 per series from now.
	base := time.Now()
	b := &bus.SampleBatch{}
	for i := 0; i < 20; i++ {
		s := series("forwarded_total", base, 10, "i", fmt.Sprint(i))
		for j := range s.Samples {
			s.Samples[j].T = base.Add(time.Duration(j) * 100 * time.Millisecond).UnixMilli()
		}
		b.Series = append(b.Series, s)
	}
	require.Equal(t, http.StatusNoContent, edge.write(t, b))
	require.Eventually(t, func() bool {
		v, _, _, err := upstream.api(t).Query(context.Background(), `sum(count_over_time(forwarded_total[10m]))`, time.Now().Add(time.Second))
		return err == nil && len(v.(model.Vector)) == 1 && v.(model.Vector)[0].Value == 200
	}, 60*time.Second, 200*time.Millisecond, "all 200 samples reach the upstream")
}
