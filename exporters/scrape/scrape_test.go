package scrape_test

import (
	"errors"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/ballast-cloud/ballast/exporters/scrape"
	"github.com/ballast-cloud/ballast/exporters/scrape/scrapetest"
)

type fixed struct {
	name string
	err  error
}

var valueDesc = prometheus.NewDesc("fixed_value", "A value.", []string{"from"}, nil)

func (f fixed) Update(ch chan<- prometheus.Metric) error {
	ch <- prometheus.MustNewConstMetric(valueDesc, prometheus.GaugeValue, 1, f.name)
	return f.err
}

func TestSetReportsEachCollector(t *testing.T) {
	logger, logs := scrapetest.Logger()
	set := scrape.NewSet(map[string]scrape.Collector{
		"ok": fixed{name: "ok"}, "empty": fixed{name: "empty", err: scrape.ErrNoData},
		"broken": fixed{name: "broken", err: errors.New("disk on fire")},
	}, logger)
	require.Equal(t, []string{"broken", "empty", "ok"}, set.Names())
	reg := prometheus.NewRegistry()
	require.NoError(t, reg.Register(set))
	require.Equal(t, 1.0, scrapetest.Success(t, reg, "ok"))
	require.Equal(t, 1.0, scrapetest.Success(t, reg, "empty"), "no data is not a failure")
	require.Equal(t, 0.0, scrapetest.Success(t, reg, "broken"))
	require.Contains(t, logs.String(), `level=ERROR msg="Collector failed" collector=broken`)
	require.Contains(t, logs.String(), "disk on fire")
	require.NotContains(t, logs.String(), `level=ERROR msg="Collector failed" collector=empty`)
	scrapetest.Value(t, reg, "ballast_exporter_scrape_collector_duration_seconds", map[string]string{"collector": "ok"})
	// What a failing collector sent before its error is still exposed.
	require.Equal(t, 1.0, scrapetest.Value(t, reg, "fixed_value", map[string]string{"from": "broken"}))
	scrapetest.Promtool(t, reg)
}
