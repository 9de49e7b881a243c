package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/ballast-cloud/ballast/collector/bus"
	"github.com/ballast-cloud/ballast/collector/kafka/kfaketest"
)

// TestKafkaRoles runs the scale-out shape end to end over a real Kafka wire
// protocol broker: a server (role all) receives remote_write and publishes to
// Kafka; it and an ingester (--role=ingester) share the samples topic in one
// consumer group; every sample is stored by exactly one of them.
func TestKafkaRoles(t *testing.T) {
	brokers := strings.Join(kfaketest.New(t, kfaketest.Options{MinSessionTimeout: time.Second}), ",")
	front := startServer(t, t.TempDir(), "--kafka.brokers", brokers)
	ingester := startServer(t, t.TempDir(), "--kafka.brokers", brokers, "--role", "ingester")

	// An ingester neither scrapes nor receives remote_write.
	resp, err := http.Post(ingester.url+"/api/v1/write", "application/x-protobuf", nil)
	require.NoError(t, err)
	resp.Body.Close()
	require.NotEqual(t, http.StatusNoContent, resp.StatusCode)

	// Both members own samples partitions before anything is published.
	require.Eventually(t, func() bool { return assigned(front) && assigned(ingester) }, 60*time.Second, 200*time.Millisecond,
		"both group members are assigned samples partitions")

	base := time.Now().Add(-5 * time.Minute).Truncate(time.Second)
	want := 0
	for r := 0; r < 10; r++ {
		b := &bus.SampleBatch{}
		for i := 0; i < 100; i++ {
			b.Series = append(b.Series, series("kafka_roles_total", base.Add(time.Duration(r)*time.Second), 3, "i", fmt.Sprint(i), "r", fmt.Sprint(r)))
		}
		require.Equal(t, http.StatusNoContent, front.write(t, b))
		want += b.Len()
	}
	count := func(p *proc) int {
		v, _, _, err := p.api(t).Query(context.Background(), `sum(count_over_time(kafka_roles_total[1h]))`, time.Now())
		require.NoError(t, err)
		if vec := v.(model.Vector); len(vec) == 1 {
			return int(vec[0].Value)
		}
		return 0
	}
	require.Eventually(t, func() bool { return count(front)+count(ingester) == want }, 90*time.Second, 250*time.Millisecond,
		"every published sample lands in exactly one TSDB")
	require.Positive(t, count(front), "the server stores its share")
	require.Positive(t, count(ingester), "the ingester stores its share")
}

// TestKafkaUnreachable starts with no broker listening: the server stays up
// and healthy, is not ready, and refuses writes with 503 so senders retry.
func TestKafkaUnreachable(t *testing.T) {
	addr := freePort(t) // nothing listens there
	dir := t.TempDir()
	port := freePort(t)
	p := &proc{url: "http://" + port}
	cmd := startUnready(t, dir, port, "--kafka.brokers", addr)
	p.cmd = cmd
	require.Eventually(t, func() bool {
		resp, err := http.Get(p.url + "/-/healthy")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	}, 30*time.Second, 100*time.Millisecond)
	resp, err := http.Get(p.url + "/-/ready")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	code := p.write(t, &bus.SampleBatch{Series: []bus.Series{series("unreachable_total", time.Now(), 1)}})
	require.Equal(t, http.StatusServiceUnavailable, code)
}

// assigned reports whether p's Kafka consumer owns samples partitions.
func assigned(p *proc) bool {
	resp, err := http.Get(p.url + "/metrics")
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, "ballast_kafka_consumer_assigned_partitions{") && strings.Contains(line, `topic="ballast.samples"`) &&
			!strings.HasSuffix(line, " 0") {
			return true
		}
	}
	return false
}
