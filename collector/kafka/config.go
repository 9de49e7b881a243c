package kafka

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
)

// Config configures the Kafka bus. Zero values get the defaults noted; Validate
// names a bad field as kafka.<field>.
type Config struct {
	// Brokers are the bootstrap addresses, host:port (required).
	Brokers []string `yaml:"brokers"`
	// ClientID identifies this process to the brokers (default "ballast").
	ClientID string `yaml:"client_id"`
	// Topics names the three topics; each is created if absent.
	Topics TopicsConfig `yaml:"topics"`
	// Partitions of the samples topic when Ballast creates it (default 12).
	// Scale-out is bounded by it: at most this many ingesters share the load.
	Partitions int `yaml:"partitions"`
	// EventPartitions of the events and dead-letter topics when Ballast
	// creates them (default 3).
	EventPartitions int `yaml:"event_partitions"`
	// ReplicationFactor of created topics (default -1: the broker's
	// default.replication.factor).
	ReplicationFactor int `yaml:"replication_factor"`
	// Group is the consumer group of the ingesters; ConsumeSamples and
	// ConsumeEvents use it when given an empty group (default "ballast-ingester").
	Group string `yaml:"group"`
	// Compression of sample record values and of event and dead-letter
	// batches: snappy (default), zstd or none. See docs/wire.md.
	Compression string `yaml:"compression"`
	// DialTimeout bounds connecting to a broker, TLS and SASL included
	// (default 10s).
	DialTimeout time.Duration `yaml:"dial_timeout"`
	// ConnectBackoffMin and ConnectBackoffMax bound the wait between attempts
	// to reach the brokers and create the topics at start (200ms, 10s).
	ConnectBackoffMin time.Duration `yaml:"connect_backoff_min"`
	ConnectBackoffMax time.Duration `yaml:"connect_backoff_max"`
	// HealthInterval is how often readiness is re-checked once connected
	// (default 5s).
	HealthInterval time.Duration `yaml:"health_interval"`

	Producer ProducerConfig `yaml:"producer"`
	Consumer ConsumerConfig `yaml:"consumer"`
	TLS      TLSConfig      `yaml:"tls"`
	SASL     SASLConfig     `yaml:"sasl"`
}

// TopicsConfig names the topics.
type TopicsConfig struct {
	Samples    string `yaml:"samples"`    // default ballast.samples
	Events     string `yaml:"events"`     // default ballast.events
	DeadLetter string `yaml:"deadletter"` // default ballast.deadletter
}

// ProducerConfig tunes publishing.
type ProducerConfig struct {
	// MaxMessageBytes is the largest record batch sent, the broker's
	// message.max.bytes (default 1 MiB). Sample batches are split so every
	// record fits.
	MaxMessageBytes int `yaml:"max_message_bytes"`
	// BatchSize is the most records in one produce batch per partition
	// (default 200; max_message_bytes bounds a batch too).
	BatchSize int `yaml:"batch_size"`
	// BatchTimeout is how long a partly filled produce batch waits for more
	// records (default 5ms).
	BatchTimeout time.Duration `yaml:"batch_timeout"`
	// BufferBytes bounds the encoded sample records waiting to be sent
	// (default 64 MiB).
	BufferBytes int `yaml:"buffer_bytes"`
	// BlockTimeout is how long PublishSamples waits for buffer space before
	// the oldest waiting records are dropped, and counted (default 5s).
	BlockTimeout time.Duration `yaml:"block_timeout"`
	// MaxInflightBytes bounds the records handed to one produce round
	// (default 16 MiB).
	MaxInflightBytes int `yaml:"max_inflight_bytes"`
	// WriteTimeout bounds one produce request (default 10s).
	WriteTimeout time.Duration `yaml:"write_timeout"`
	// RetryBackoffMin and RetryBackoffMax bound the wait between attempts to
	// send a failed round; a round is retried until it succeeds or the bus
	// closes (100ms, 5s).
	RetryBackoffMin time.Duration `yaml:"retry_backoff_min"`
	RetryBackoffMax time.Duration `yaml:"retry_backoff_max"`
	// CloseTimeout is how long Close waits for buffered records to be sent;
	// what is left is dropped and counted (default 10s).
	CloseTimeout time.Duration `yaml:"close_timeout"`
}

// ConsumerConfig tunes consuming.
type ConsumerConfig struct {
	// FetchMaxBytes bounds one fetch from one partition (default 4 MiB).
	FetchMaxBytes int `yaml:"fetch_max_bytes"`
	// FetchMaxWait is how long the broker may hold a fetch waiting for data
	// (default 250ms).
	FetchMaxWait time.Duration `yaml:"fetch_max_wait"`
	// CommitInterval is how often handled offsets are committed (default
	// 1s). Longer means fewer commits and more redelivery after a crash;
	// redelivery is harmless (docs/kafka.md).
	CommitInterval time.Duration `yaml:"commit_interval"`
	// SessionTimeout, HeartbeatInterval and RebalanceTimeout are the group
	// membership timings (10s, 3s, 30s).
	SessionTimeout    time.Duration `yaml:"session_timeout"`
	HeartbeatInterval time.Duration `yaml:"heartbeat_interval"`
	RebalanceTimeout  time.Duration `yaml:"rebalance_timeout"`
	// JoinBackoff is the wait before rejoining the group after an error
	// (default 1s).
	JoinBackoff time.Duration `yaml:"join_backoff"`
	// StartOffset is where a group with no committed offset starts:
	// earliest (default) or latest.
	StartOffset string `yaml:"start_offset"`
	// MaxDecodedBytes bounds a decompressed sample record (default 64 MiB);
	// larger records are dead-lettered as too_large.
	MaxDecodedBytes int `yaml:"max_decoded_bytes"`
	// RetryBackoffMin and RetryBackoffMax bound the wait between attempts
	// of a handler that failed transiently (100ms, 10s). The partition waits;
	// nothing is skipped.
	RetryBackoffMin time.Duration `yaml:"retry_backoff_min"`
	RetryBackoffMax time.Duration `yaml:"retry_backoff_max"`
}

// TLSConfig enables TLS to the brokers.
type TLSConfig struct {
	Enabled            bool   `yaml:"enabled"`
	CAFile             string `yaml:"ca_file"`
	CertFile           string `yaml:"cert_file"`
	KeyFile            string `yaml:"key_file"`
	ServerName         string `yaml:"server_name"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
}

// SASLConfig enables SASL authentication. Only PLAIN is built in: SCRAM needs
// github.com/xdg-go/scram, which this module does not require yet.
type SASLConfig struct {
	// Mechanism is PLAIN, or empty to disable SASL.
	Mechanism string `yaml:"mechanism"`
	Username  string `yaml:"username"`
	Password  Secret `yaml:"password"`
	// PasswordFile holds the password instead of Password.
	PasswordFile string `yaml:"password_file"`
}

// Secret is a string that never shows itself: printing, YAML and JSON give
// "<secret>" so a configuration dump or a log line cannot leak it.
type Secret string

const redacted = "<secret>"

func (s Secret) String() string   { return redacted }
func (s Secret) GoString() string { return redacted }

// MarshalYAML redacts the secret.
func (s Secret) MarshalYAML() (any, error) {
	if s == "" {
		return "", nil
	}
	return redacted, nil
}

// MarshalJSON redacts the secret.
func (s Secret) MarshalJSON() ([]byte, error) {
	if s == "" {
		return []byte(`""`), nil
	}
	return json.Marshal(redacted)
}

const (
	defaultSamplesTopic    = "ballast.samples"
	defaultEventsTopic     = "ballast.events"
	defaultDeadLetterTopic = "ballast.deadletter"
	defaultGroup           = "ballast-ingester"
)

// withDefaults returns c with zero values replaced by defaults, validated.
func (c Config) withDefaults() (Config, error) {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("kafka.%s: %s", field, fmt.Sprintf(format, args...)))
	}
	if len(c.Brokers) == 0 {
		bad("brokers", "must list at least one broker address (host:port)")
	}
	for i, b := range c.Brokers {
		if _, port, err := net.SplitHostPort(b); err != nil || port == "" {
			bad(fmt.Sprintf("brokers[%d]", i), "%q is not host:port", b)
		}
	}
	def := func(v *string, d string) {
		if *v == "" {
			*v = d
		}
	}
	def(&c.ClientID, "ballast")
	def(&c.Topics.Samples, defaultSamplesTopic)
	def(&c.Topics.Events, defaultEventsTopic)
	def(&c.Topics.DeadLetter, defaultDeadLetterTopic)
	def(&c.Group, defaultGroup)
	def(&c.Compression, "snappy")
	def(&c.Consumer.StartOffset, "earliest")
	for field, name := range map[string]string{"topics.samples": c.Topics.Samples, "topics.events": c.Topics.Events, "topics.deadletter": c.Topics.DeadLetter} {
		if err := validTopic(name); err != nil {
			bad(field, "%v", err)
		}
	}
	if c.Topics.Samples == c.Topics.Events || c.Topics.Samples == c.Topics.DeadLetter || c.Topics.Events == c.Topics.DeadLetter {
		bad("topics", "samples, events and deadletter must be three different topics")
	}
	switch c.Compression {
	case "snappy", "zstd", "none":
	default:
		bad("compression", "%q is not one of snappy, zstd, none", c.Compression)
	}
	switch c.Consumer.StartOffset {
	case "earliest", "latest":
	default:
		bad("consumer.start_offset", "%q is not one of earliest, latest", c.Consumer.StartOffset)
	}

	posInt := func(field string, v *int, d int) {
		if *v == 0 {
			*v = d
		}
		if *v < 0 {
			bad(field, "%d must be positive", *v)
		}
	}
	posInt("partitions", &c.Partitions, 12)
	posInt("event_partitions", &c.EventPartitions, 3)
	if c.ReplicationFactor == 0 {
		c.ReplicationFactor = -1
	}
	if c.ReplicationFactor < -1 || c.ReplicationFactor > 32767 {
		bad("replication_factor", "%d must be -1 (broker default) or 1 to 32767", c.ReplicationFactor)
	}
	posInt("producer.max_message_bytes", &c.Producer.MaxMessageBytes, 1<<20)
	posInt("producer.batch_size", &c.Producer.BatchSize, 200)
	posInt("producer.buffer_bytes", &c.Producer.BufferBytes, 64<<20)
	posInt("producer.max_inflight_bytes", &c.Producer.MaxInflightBytes, 16<<20)
	posInt("consumer.fetch_max_bytes", &c.Consumer.FetchMaxBytes, 4<<20)
	posInt("consumer.max_decoded_bytes", &c.Consumer.MaxDecodedBytes, 64<<20)
	if c.Producer.MaxMessageBytes > 0 && c.Producer.MaxMessageBytes < minMessageBytes {
		bad("producer.max_message_bytes", "%d is below the minimum of %d", c.Producer.MaxMessageBytes, minMessageBytes)
	}
	if c.Producer.BufferBytes > 0 && c.Producer.BufferBytes < 2*c.Producer.MaxMessageBytes {
		bad("producer.buffer_bytes", "%d must hold at least two records of producer.max_message_bytes (%d)", c.Producer.BufferBytes, 2*c.Producer.MaxMessageBytes)
	}
	if c.Consumer.FetchMaxBytes > 0 && c.Consumer.FetchMaxBytes < c.Producer.MaxMessageBytes {
		bad("consumer.fetch_max_bytes", "%d is below producer.max_message_bytes (%d)", c.Consumer.FetchMaxBytes, c.Producer.MaxMessageBytes)
	}

	posDur := func(field string, v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
		if *v < 0 {
			bad(field, "%s must be positive", *v)
		}
	}
	posDur("dial_timeout", &c.DialTimeout, 10*time.Second)
	posDur("connect_backoff_min", &c.ConnectBackoffMin, 200*time.Millisecond)
	posDur("connect_backoff_max", &c.ConnectBackoffMax, 10*time.Second)
	posDur("health_interval", &c.HealthInterval, 5*time.Second)
	posDur("producer.batch_timeout", &c.Producer.BatchTimeout, 5*time.Millisecond)
	posDur("producer.block_timeout", &c.Producer.BlockTimeout, 5*time.Second)
	posDur("producer.write_timeout", &c.Producer.WriteTimeout, 10*time.Second)
	posDur("producer.retry_backoff_min", &c.Producer.RetryBackoffMin, 100*time.Millisecond)
	posDur("producer.retry_backoff_max", &c.Producer.RetryBackoffMax, 5*time.Second)
	posDur("producer.close_timeout", &c.Producer.CloseTimeout, 10*time.Second)
	posDur("consumer.fetch_max_wait", &c.Consumer.FetchMaxWait, 250*time.Millisecond)
	posDur("consumer.commit_interval", &c.Consumer.CommitInterval, time.Second)
	posDur("consumer.session_timeout", &c.Consumer.SessionTimeout, 10*time.Second)
	posDur("consumer.heartbeat_interval", &c.Consumer.HeartbeatInterval, 3*time.Second)
	posDur("consumer.rebalance_timeout", &c.Consumer.RebalanceTimeout, 30*time.Second)
	posDur("consumer.join_backoff", &c.Consumer.JoinBackoff, time.Second)
	posDur("consumer.retry_backoff_min", &c.Consumer.RetryBackoffMin, 100*time.Millisecond)
	posDur("consumer.retry_backoff_max", &c.Consumer.RetryBackoffMax, 10*time.Second)
	if c.ConnectBackoffMax < c.ConnectBackoffMin {
		bad("connect_backoff_max", "%s is below connect_backoff_min %s", c.ConnectBackoffMax, c.ConnectBackoffMin)
	}
	if c.Producer.RetryBackoffMax < c.Producer.RetryBackoffMin {
		bad("producer.retry_backoff_max", "%s is below producer.retry_backoff_min %s", c.Producer.RetryBackoffMax, c.Producer.RetryBackoffMin)
	}
	if c.Consumer.RetryBackoffMax < c.Consumer.RetryBackoffMin {
		bad("consumer.retry_backoff_max", "%s is below consumer.retry_backoff_min %s", c.Consumer.RetryBackoffMax, c.Consumer.RetryBackoffMin)
	}
	if c.Consumer.HeartbeatInterval >= c.Consumer.SessionTimeout {
		bad("consumer.heartbeat_interval", "%s must be below consumer.session_timeout %s", c.Consumer.HeartbeatInterval, c.Consumer.SessionTimeout)
	}

	switch strings.ToUpper(c.SASL.Mechanism) {
	case "":
		if c.SASL.Username != "" || c.SASL.Password != "" || c.SASL.PasswordFile != "" {
			bad("sasl.mechanism", "must be set (PLAIN) when a username or password is given")
		}
	case "PLAIN":
		c.SASL.Mechanism = "PLAIN"
		if c.SASL.Username == "" {
			bad("sasl.username", "must not be empty with mechanism PLAIN")
		}
		if c.SASL.Password != "" && c.SASL.PasswordFile != "" {
			bad("sasl.password", "set password or password_file, not both")
		}
		if c.SASL.Password == "" && c.SASL.PasswordFile == "" {
			bad("sasl.password", "must be set (or password_file) with mechanism PLAIN")
		}
	default:
		bad("sasl.mechanism", "%q is not supported: use PLAIN (SCRAM is not built in)", c.SASL.Mechanism)
	}
	if !c.TLS.Enabled && (c.TLS.CAFile != "" || c.TLS.CertFile != "" || c.TLS.KeyFile != "" || c.TLS.ServerName != "" || c.TLS.InsecureSkipVerify) {
		bad("tls.enabled", "must be true when other tls settings are given")
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		bad("tls.cert_file", "cert_file and key_file go together")
	}
	return c, errors.Join(errs...)
}

// minMessageBytes keeps room for a record's headers and at least one
// ordinary series.
const minMessageBytes = 64 << 10

// validTopic applies Kafka's topic name rules.
func validTopic(name string) error {
	if name == "." || name == ".." {
		return fmt.Errorf("%q is not a valid topic name", name)
	}
	if len(name) > 249 {
		return fmt.Errorf("%q is longer than 249 characters", name)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return fmt.Errorf("%q may contain only ASCII letters, digits, '.', '_' and '-'", name)
		}
	}
	return nil
}

// tlsConfig builds the client TLS configuration, or nil when TLS is off.
func (c TLSConfig) build() (*tls.Config, error) {
	if !c.Enabled {
		return nil, nil
	}
	tc := &tls.Config{ServerName: c.ServerName, InsecureSkipVerify: c.InsecureSkipVerify, MinVersion: tls.VersionTLS12} //nolint:gosec // skipping verification is an explicit operator choice
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("kafka.tls.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("kafka.tls.ca_file: %s holds no PEM certificate", c.CAFile)
		}
		tc.RootCAs = pool
	}
	if c.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("kafka.tls.cert_file: load key pair: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// mechanism builds the SASL mechanism, or nil when SASL is off. The password
// file is read here, once; its content never reaches an error.
func (c SASLConfig) build() (sasl.Mechanism, error) {
	if c.Mechanism == "" {
		return nil, nil
	}
	pass := string(c.Password)
	if c.PasswordFile != "" {
		raw, err := os.ReadFile(c.PasswordFile)
		if err != nil {
			// The path is not secret; os errors name only the path.
			return nil, fmt.Errorf("kafka.sasl.password_file: %w", err)
		}
		pass = strings.TrimRight(string(raw), "\r\n")
	}
	return plain.Mechanism{Username: c.Username, Password: pass}, nil
}
