package kafka

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/ballast-cloud/ballast/collector/bus"
	"github.com/ballast-cloud/ballast/collector/kafka/kfaketest"
)

func TestConfigDefaults(t *testing.T) {
	c, err := Config{Brokers: []string{"kafka-1:9092"}}.withDefaults()
	require.NoError(t, err)
	require.Equal(t, "ballast.samples", c.Topics.Samples)
	require.Equal(t, "ballast.events", c.Topics.Events)
	require.Equal(t, "ballast.deadletter", c.Topics.DeadLetter)
	require.Equal(t, "ballast-ingester", c.Group)
	require.Equal(t, 12, c.Partitions)
	require.Equal(t, -1, c.ReplicationFactor)
	require.Equal(t, "snappy", c.Compression)
	require.Equal(t, 1<<20, c.Producer.MaxMessageBytes)
	require.Equal(t, 64<<20, c.Producer.BufferBytes)
	require.Equal(t, 5*time.Second, c.Producer.BlockTimeout)
	require.Equal(t, time.Second, c.Consumer.CommitInterval)
	require.Equal(t, "earliest", c.Consumer.StartOffset)
}

func TestConfigFromYAML(t *testing.T) {
	var c Config
	require.NoError(t, yaml.Unmarshal([]byte(`
brokers: [kafka-1:9092, kafka-2:9092]
topics: {samples: s, events: e, deadletter: d}
partitions: 24
replication_factor: 3
group: ingesters
compression: zstd
producer: {buffer_bytes: 134217728, block_timeout: 2s, batch_timeout: 10ms}
consumer: {commit_interval: 500ms, start_offset: latest}
sasl: {mechanism: PLAIN, username: ballast, password_file: /run/secrets/kafka}
tls: {enabled: true, server_name: kafka}
`), &c))
	require.Equal(t, []string{"kafka-1:9092", "kafka-2:9092"}, c.Brokers)
	require.Equal(t, TopicsConfig{Samples: "s", Events: "e", DeadLetter: "d"}, c.Topics)
	require.Equal(t, 24, c.Partitions)
	require.Equal(t, 3, c.ReplicationFactor)
	require.Equal(t, 2*time.Second, c.Producer.BlockTimeout)
	require.Equal(t, 500*time.Millisecond, c.Consumer.CommitInterval)
	require.Equal(t, "/run/secrets/kafka", c.SASL.PasswordFile)
	_, err := c.withDefaults()
	require.NoError(t, err)
}

func TestConfigValidation(t *testing.T) {
	ok := func(c *Config) {}
	for _, tc := range []struct {
		name  string
		edit  func(*Config)
		field string // "" for valid
	}{
		{"minimal", ok, ""},
		{"no brokers", func(c *Config) { c.Brokers = nil }, "kafka.brokers:"},
		{"broker without port", func(c *Config) { c.Brokers = []string{"kafka"} }, "kafka.brokers[0]"},
		{"bad topic", func(c *Config) { c.Topics.Samples = "sam ples" }, "kafka.topics.samples"},
		{"same topic twice", func(c *Config) { c.Topics.Events = "ballast.samples" }, "kafka.topics:"},
		{"negative partitions", func(c *Config) { c.Partitions = -1 }, "kafka.partitions"},
		{"replication", func(c *Config) { c.ReplicationFactor = -2 }, "kafka.replication_factor"},
		{"compression", func(c *Config) { c.Compression = "lz4" }, "kafka.compression"},
		{"tiny messages", func(c *Config) { c.Producer.MaxMessageBytes = 1000 }, "kafka.producer.max_message_bytes"},
		{"buffer under two records", func(c *Config) { c.Producer.BufferBytes = 1 << 20 }, "kafka.producer.buffer_bytes"},
		{"fetch under a record", func(c *Config) { c.Consumer.FetchMaxBytes = 1 << 10 }, "kafka.consumer.fetch_max_bytes"},
		{"negative duration", func(c *Config) { c.Producer.BlockTimeout = -time.Second }, "kafka.producer.block_timeout"},
		{"backoff bounds", func(c *Config) { c.Producer.RetryBackoffMin = time.Minute }, "kafka.producer.retry_backoff_max"},
		{"heartbeat over session", func(c *Config) { c.Consumer.HeartbeatInterval = time.Minute }, "kafka.consumer.heartbeat_interval"},
		{"start offset", func(c *Config) { c.Consumer.StartOffset = "middle" }, "kafka.consumer.start_offset"},
		{"scram", func(c *Config) { c.SASL = SASLConfig{Mechanism: "SCRAM-SHA-512", Username: "u", Password: "p"} }, "kafka.sasl.mechanism"},
		{"plain without user", func(c *Config) { c.SASL = SASLConfig{Mechanism: "plain", Password: "p"} }, "kafka.sasl.username"},
		{"plain password twice", func(c *Config) {
			c.SASL = SASLConfig{Mechanism: "PLAIN", Username: "u", Password: "p", PasswordFile: "/f"}
		}, "kafka.sasl.password"},
		{"credentials without mechanism", func(c *Config) { c.SASL.Username = "u" }, "kafka.sasl.mechanism"},
		{"tls settings while off", func(c *Config) { c.TLS.CAFile = "/ca.pem" }, "kafka.tls.enabled"},
		{"cert without key", func(c *Config) { c.TLS = TLSConfig{Enabled: true, CertFile: "/c.pem"} }, "kafka.tls.cert_file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Config{Brokers: []string{"127.0.0.1:9092"}}
			tc.edit(&c)
			_, err := c.withDefaults()
			if tc.field == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.field)
			_, err = New(c, nil, nil)
			require.ErrorContains(t, err, tc.field, "New must refuse it too")
		})
	}
}

func TestConfigFilesNamedInErrors(t *testing.T) {
	_, err := New(Config{Brokers: []string{"127.0.0.1:9092"}, TLS: TLSConfig{Enabled: true, CAFile: "/nonexistent/ca.pem"}}, nil, nil)
	require.ErrorContains(t, err, "kafka.tls.ca_file")
	_, err = New(Config{Brokers: []string{"127.0.0.1:9092"}, SASL: SASLConfig{Mechanism: "PLAIN", Username: "u", PasswordFile: "/nonexistent/pw"}}, nil, nil)
	require.ErrorContains(t, err, "kafka.sasl.password_file")
}

// TestSASLPasswordNeverLeaks: the password reaches the broker and nowhere
// else: not a printed or marshalled config, not an error, not a log line
// (debug level, so kafka-go's own chatter is included).
func TestSASLPasswordNeverLeaks(t *testing.T) {
	const (
		user     = "ballast"
		password = "pw-8d1f0c47e2"
		wrong    = "wrong-pw-5b9e33a1c6"
	)
	addrs := kfaketest.New(t, kfaketest.Options{PlainUser: user, PlainPassword: password, MinSessionTimeout: time.Second})

	cfg := fastConfig(addrs)
	cfg.SASL = SASLConfig{Mechanism: "PLAIN", Username: user, Password: wrong}
	//lint:ignore S1025 each verb is a path to check
	for _, s := range []string{fmt.Sprint(cfg), fmt.Sprintf("%+v", cfg), fmt.Sprintf("%#v", cfg), fmt.Sprintf("%s", cfg.SASL.Password)} {
		require.NotContains(t, s, wrong)
	}
	y, err := yaml.Marshal(cfg)
	require.NoError(t, err)
	require.NotContains(t, string(y), wrong)
	require.Contains(t, string(y), "<secret>")
	j, err := json.Marshal(cfg)
	require.NoError(t, err)
	require.NotContains(t, string(j), wrong)

	// Wrong password: never ready, and the reason carries no secret.
	logs := &lineBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	bad, err := New(cfg, prometheus.NewRegistry(), logger)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return strings.Contains(logs.String(), "Kafka brokers not ready") }, 30*time.Second, 10*time.Millisecond)
	readyErr := bad.Ready()
	require.Error(t, readyErr)
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	pubErr := bad.PublishEvents(ctx, mustEvent(t))
	cancel()
	require.Error(t, pubErr)
	require.NoError(t, bad.Close())
	for _, s := range []string{readyErr.Error(), pubErr.Error(), logs.String()} {
		require.NotContains(t, s, wrong)
		require.NotContains(t, s, password)
	}

	// The right password, from a file: events flow.
	pwFile := filepath.Join(t.TempDir(), "kafka-password")
	require.NoError(t, os.WriteFile(pwFile, []byte(password+"\n"), 0o600))
	cfg.SASL = SASLConfig{Mechanism: "PLAIN", Username: user, PasswordFile: pwFile}
	logs = &lineBuffer{}
	good, err := New(cfg, prometheus.NewRegistry(), slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	require.NoError(t, err)
	defer func() { require.NoError(t, good.Close()) }()
	waitReady(t, good)
	got := make(chan bus.Event, 1)
	cctx, ccancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- good.ConsumeEvents(cctx, "sasl", nil, func(_ context.Context, e bus.Event) error { got <- e; return nil })
	}()
	e := mustEvent(t)
	require.NoError(t, good.PublishEvents(t.Context(), e))
	require.Equal(t, e.ID, (<-got).ID)
	ccancel()
	require.NoError(t, <-done)
	require.NotContains(t, logs.String(), password)
}

func mustEvent(t *testing.T) bus.Event {
	e, err := bus.NewEvent("/test", bus.TypeAudit, "audit-1", map[string]string{"state": "ONGOING"})
	require.NoError(t, err)
	return e
}
