package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	promconfig "github.com/prometheus/prometheus/config"
	"go.yaml.in/yaml/v3"

	"github.com/ballast-cloud/ballast/collector/kafka"
	"github.com/ballast-cloud/ballast/collector/remotewrite"
	"github.com/ballast-cloud/ballast/exporters"
	"github.com/ballast-cloud/ballast/exporters/virt"
	"github.com/ballast-cloud/ballast/tsdb"
)

// serverConfig is the server's configuration file. Sections named after
// Prometheus's (global, scrape_configs, remote_write) take exactly
// Prometheus's syntax and are validated by Prometheus's own loader.
type serverConfig struct {
	Storage struct {
		TSDB struct {
			Path             string   `yaml:"path"`
			Retention        duration `yaml:"retention_time"`
			RetentionSize    string   `yaml:"retention_size"`
			OutOfOrderWindow duration `yaml:"out_of_order_time_window"`
			WALCompression   string   `yaml:"wal_compression"`
		} `yaml:"tsdb"`
	} `yaml:"storage"`
	Web struct {
		ListenAddress      string             `yaml:"listen_address"`
		ExternalURL        string             `yaml:"external_url"`
		AllowUnknownParams bool               `yaml:"allow_unknown_params"`
		RemoteWrite        remoteWriteReceive `yaml:"remote_write_receiver"`
	} `yaml:"web"`
	Query struct {
		RemoteURL     string   `yaml:"remote_url"`
		Timeout       duration `yaml:"timeout"`
		MaxSamples    int      `yaml:"max_samples"`
		LookbackDelta duration `yaml:"lookback_delta"`
	} `yaml:"query"`

	// Exporter mounts host collectors in-process at /exporter/metrics, so
	// the server watches its own host without a separate agent.
	Exporter struct {
		Enabled    bool     `yaml:"enabled"`
		Collectors []string `yaml:"collectors"`
		LibvirtURI string   `yaml:"libvirt_uri"`
	} `yaml:"exporter"`

	// Role is all (default) or ingester; see --role.
	Role string `yaml:"role"`
	// Kafka replaces the in-process bus when brokers are listed.
	Kafka kafka.Config `yaml:"kafka"`

	// Optimizer holds the simulator, decision, model, watcher and
	// actuators sections.
	Optimizer optimizerConfig `yaml:",inline"`

	// Prometheus-syntax sections, re-validated by promconfig.Load.
	Global        yaml.Node `yaml:"global"`
	ScrapeConfigs yaml.Node `yaml:"scrape_configs"`
	RemoteWrite   yaml.Node `yaml:"remote_write"`

	// prom is the loaded Prometheus-shaped part; dir is the config file's
	// directory, against which relative paths resolve.
	prom *promconfig.Config
	dir  string
}

type remoteWriteReceive struct {
	MaxBodyBytes    int64 `yaml:"max_body_bytes"`
	MaxDecodedBytes int   `yaml:"max_decoded_bytes"`
}

// defaultConfig is the embedded default: Ballast scrapes itself and this
// host, and keeps data under ./data.
const defaultConfig = `
storage:
  tsdb:
    path: data
exporter:
  enabled: true
  collectors: [node, diskio]
simulator:
  enabled: true
global:
  scrape_interval: 15s
  evaluation_interval: 15s
scrape_configs:
  - job_name: ballast
    static_configs:
      - targets: ['{{listen}}']
  - job_name: node
    metrics_path: /exporter/metrics
    static_configs:
      - targets: ['{{listen}}']
        labels:
          fqdn: '{{hostname}}'
`

// loadConfig reads path (or the embedded default when path is empty, with
// self the address Ballast's own endpoints are scraped at), rejecting
// unknown keys and bad values with the field named.
func loadConfig(path, self string, logger *slog.Logger) (*serverConfig, error) {
	var data []byte
	dir := "."
	if path == "" {
		host, _ := os.Hostname()
		data = []byte(strings.NewReplacer("{{listen}}", self, "{{hostname}}", host).Replace(defaultConfig))
	} else {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("config.file: %w", err)
		}
		data, dir = b, filepath.Dir(path)
	}
	return parseConfig(data, dir, logger)
}

func parseConfig(data []byte, dir string, logger *slog.Logger) (*serverConfig, error) {
	cfg := &serverConfig{dir: dir}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) { // empty file: all defaults
		return nil, fmt.Errorf("config: %s", nameFields(err.Error(), data))
	}
	// validate runs once flags have been applied (serverFlags.config).
	// Re-assemble the Prometheus-shaped sections and hand them to
	// Prometheus's loader, which knows every scrape and remote_write option.
	prom := map[string]*yaml.Node{}
	for name, n := range map[string]*yaml.Node{"global": &cfg.Global, "scrape_configs": &cfg.ScrapeConfigs, "remote_write": &cfg.RemoteWrite} {
		if n.Kind != 0 {
			prom[name] = n
		}
	}
	raw, err := yaml.Marshal(prom)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	pc, err := promconfig.Load(string(raw), logger)
	if err != nil {
		return nil, fmt.Errorf("config (global, scrape_configs, remote_write): %w", err)
	}
	pc.SetDirectory(dir)
	cfg.prom = pc
	return cfg, nil
}

func (c *serverConfig) validate() error {
	t := &c.Storage.TSDB
	if t.Retention < 0 {
		return fmt.Errorf("storage.tsdb.retention_time: %s must be positive", t.Retention)
	}
	if t.RetentionSize != "" {
		if _, err := parseBytes(t.RetentionSize); err != nil {
			return fmt.Errorf("storage.tsdb.retention_size: %w", err)
		}
	}
	switch t.WALCompression {
	case "", "none", "snappy", "zstd":
	default:
		return fmt.Errorf("storage.tsdb.wal_compression: %q is not one of none, snappy, zstd", t.WALCompression)
	}
	if u := c.Web.ExternalURL; u != "" {
		if _, err := url.Parse(u); err != nil {
			return fmt.Errorf("web.external_url: %w", err)
		}
	}
	if u := c.Query.RemoteURL; u != "" {
		pu, err := url.Parse(u)
		if err != nil || pu.Scheme == "" || pu.Host == "" {
			return fmt.Errorf("query.remote_url: %q is not an absolute http(s) URL", u)
		}
	}
	if c.Query.MaxSamples < 0 {
		return fmt.Errorf("query.max_samples: %d must not be negative", c.Query.MaxSamples)
	}
	known := map[string]bool{}
	for _, ci := range exporters.Collectors() {
		known[ci.Name] = true
	}
	for _, name := range c.Exporter.Collectors {
		if !known[name] {
			return fmt.Errorf("exporter.collectors: unknown collector %q", name)
		}
	}
	if c.Web.RemoteWrite.MaxBodyBytes < 0 || c.Web.RemoteWrite.MaxDecodedBytes < 0 {
		return errors.New("web.remote_write_receiver: max_body_bytes and max_decoded_bytes must not be negative")
	}
	switch c.Role {
	case "", roleAll:
	case roleIngester:
		if len(c.Kafka.Brokers) == 0 {
			return errors.New("role: ingester consumes the Kafka samples topic: set kafka.brokers (or --kafka.brokers)")
		}
	default:
		return fmt.Errorf("role: %q is not one of all, ingester", c.Role)
	}
	return c.Optimizer.validate(c.storageConfig().Path)
}

// storageConfig maps the file section to the storage options.
func (c *serverConfig) storageConfig() tsdb.Config {
	t := c.Storage.TSDB
	size, _ := parseBytes(t.RetentionSize)
	path := t.Path
	if path != "" && !filepath.IsAbs(path) {
		path = filepath.Join(c.dir, path)
	}
	return tsdb.Config{
		Path:             path,
		Retention:        time.Duration(t.Retention),
		RetentionSize:    size,
		OutOfOrderWindow: time.Duration(t.OutOfOrderWindow),
		WALCompression:   t.WALCompression,
		QueryTimeout:     time.Duration(c.Query.Timeout),
		QueryMaxSamples:  c.Query.MaxSamples,
		LookbackDelta:    time.Duration(c.Query.LookbackDelta),
	}
}

// exporterConfig selects exactly the listed collectors (node and diskio when
// none are listed); without a libvirt URI the libvirt collectors stay off.
func (c *serverConfig) exporterConfig() exporters.Config {
	selected := c.Exporter.Collectors
	if len(selected) == 0 {
		selected = []string{"node", "diskio"}
	}
	enabled := map[string]bool{}
	for _, ci := range exporters.Collectors() {
		enabled[ci.Name] = slices.Contains(selected, ci.Name)
	}
	return exporters.Config{
		Enabled:   enabled,
		NoLibvirt: c.Exporter.LibvirtURI == "",
		Libvirt:   virt.Config{URI: c.Exporter.LibvirtURI},
	}
}

func (c *serverConfig) remoteWriteOptions() remotewrite.Options {
	return remotewrite.Options{
		MaxBodyBytes:    c.Web.RemoteWrite.MaxBodyBytes,
		MaxDecodedBytes: c.Web.RemoteWrite.MaxDecodedBytes,
	}
}

// parseBytes reads sizes such as 512MB, 10GB or 1TiB (Prometheus units).
func parseBytes(s string) (int64, error) {
	s = strings.TrimSpace(s)
	units := []struct {
		suffix string
		mult   int64
	}{
		{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40}, {"PiB", 1 << 50},
		{"KB", 1 << 10}, {"MB", 1 << 20}, {"GB", 1 << 30}, {"TB", 1 << 40}, {"PB", 1 << 50},
		{"B", 1},
	}
	for _, u := range units {
		if num, ok := strings.CutSuffix(s, u.suffix); ok {
			var n int64
			if _, err := fmt.Sscanf(num, "%d", &n); err != nil || n < 0 || fmt.Sprint(n) != strings.TrimSpace(num) {
				return 0, fmt.Errorf("%q is not a size such as 512MB or 10GB", s)
			}
			return n * u.mult, nil
		}
	}
	return 0, fmt.Errorf("%q is not a size such as 512MB or 10GB", s)
}

// duration is a configuration duration in Prometheus syntax (15d, 12h, 30s).
type duration model.Duration

func (d *duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := model.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration such as 15d, 12h or 30s", n.Line, n.Value)
	}
	*d = duration(v)
	return nil
}

func (d duration) String() string { return model.Duration(d).String() }

var lineRef = regexp.MustCompile(`line (\d+): `)

// nameFields adds the key written on each line a YAML error points at, so
// "line 3: ..." reads "line 3 (retention_time): ...".
func nameFields(msg string, src []byte) string {
	lines := strings.Split(string(src), "\n")
	return lineRef.ReplaceAllStringFunc(msg, func(m string) string {
		var n int
		if _, err := fmt.Sscanf(m, "line %d:", &n); err != nil || n < 1 || n > len(lines) {
			return m
		}
		key, _, ok := strings.Cut(strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(lines[n-1]), "- ")), ":")
		if !ok || key == "" {
			return m
		}
		return fmt.Sprintf("line %d (%s): ", n, key)
	})
}
