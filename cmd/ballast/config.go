package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	promconfig "github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/discovery/file"
	"go.yaml.in/yaml/v3"

	"github.com/ballast-cloud/ballast/collector/kafka"
	"github.com/ballast-cloud/ballast/collector/remotewrite"
	"github.com/ballast-cloud/ballast/exporters"
	"github.com/ballast-cloud/ballast/exporters/virt"
	"github.com/ballast-cloud/ballast/rules"
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

	// Rules is what Ballast adds to Prometheus's rule_files and alerting:
	// built-in rules, runbook links, its own receivers and triggers.
	Rules rules.Config `yaml:"rules"`

	// Prometheus-syntax sections, re-validated by promconfig.Load.
	Global        yaml.Node `yaml:"global"`
	ScrapeConfigs yaml.Node `yaml:"scrape_configs"`
	RemoteWrite   yaml.Node `yaml:"remote_write"`
	RuleFiles     yaml.Node `yaml:"rule_files"`
	Alerting      yaml.Node `yaml:"alerting"`

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
// unknown keys and bad values with the key path and line named.
func loadConfig(path, self string, logger *slog.Logger) (*serverConfig, error) {
	if path == "" {
		host, _ := os.Hostname()
		data := []byte(strings.NewReplacer("{{listen}}", self, "{{hostname}}", host).Replace(defaultConfig))
		cfg, err := parseConfig(data, ".", logger)
		if err != nil {
			return nil, fmt.Errorf("config (embedded default): %w", err)
		}
		return cfg, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config.file: %w", err)
	}
	cfg, err := parseConfig(data, filepath.Dir(path), logger)
	if err != nil {
		return nil, fmt.Errorf("config.file %s: %w", path, err)
	}
	return cfg, nil
}

// parseConfig decodes a configuration file. Its errors say where: "line 3:
// unknown key "pth" in storage.tsdb", "line 5:
// scrape_configs[0].scrape_interval: "5q" is not a duration …".
func parseConfig(data []byte, dir string, logger *slog.Logger) (*serverConfig, error) {
	// The document as written, to name the key each error is about.
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, errors.New(strings.TrimPrefix(err.Error(), "yaml: "))
	}
	// Prometheus durations in Ballast's own sections: the decoder's error
	// would not say where.
	var durationErrs []string
	if root := docRoot(&doc); root != nil && root.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(root.Content); i += 2 {
			if root.Content[i].Value == "rules" {
				checkPromDurations(root.Content[i+1], reflect.TypeFor[rules.Config](), yamlPath{"rules"}, &durationErrs)
			}
		}
	}
	if len(durationErrs) > 0 {
		return nil, joinConfigErrors(durationErrs)
	}
	cfg := &serverConfig{dir: dir}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) { // empty file: all defaults
		var te *yaml.TypeError
		if errors.As(err, &te) {
			return nil, describeYAMLErrors(te.Errors, &doc, &doc)
		}
		return nil, errors.New(strings.TrimPrefix(err.Error(), "yaml: "))
	}
	// validate runs once flags have been applied (serverFlags.config).
	pc, err := loadPromSections(&doc, logger)
	if err != nil {
		return nil, err
	}
	pc.SetDirectory(dir)
	cfg.prom = pc
	return cfg, nil
}

// promSections are the sections in Prometheus's syntax, with the types
// Prometheus's loader decodes them into.
var promSections = map[string]reflect.Type{
	"global":         reflect.TypeFor[promconfig.GlobalConfig](),
	"scrape_configs": reflect.TypeFor[[]*promconfig.ScrapeConfig](),
	"remote_write":   reflect.TypeFor[[]*promconfig.RemoteWriteConfig](),
	"rule_files":     reflect.TypeFor[[]string](),
	"alerting":       reflect.TypeFor[promconfig.AlertingConfig](),
}

// loadPromSections hands the Prometheus-shaped sections of doc to
// Prometheus's loader, which knows every scrape and remote_write option.
// They are re-encoded for it (block style, so that each key has a line of
// its own); the lines its errors give are mapped back to doc's.
func loadPromSections(doc *yaml.Node, logger *slog.Logger) (*promconfig.Config, error) {
	prom := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	var durationErrs []string
	if root := docRoot(doc); root != nil && root.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(root.Content); i += 2 {
			k, v := root.Content[i], root.Content[i+1]
			t, ok := promSections[k.Value]
			if !ok {
				continue
			}
			prom.Content = append(prom.Content, k, blockStyle(v))
			checkPromDurations(v, t, yamlPath{k.Value}, &durationErrs)
		}
	}
	// Prometheus's loader does not say which field a bad duration is in.
	if len(durationErrs) > 0 {
		return nil, joinConfigErrors(durationErrs)
	}
	raw, err := yaml.Marshal(prom)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", promSectionNames, err)
	}
	pc, err := promconfig.Load(string(raw), logger)
	if err == nil {
		return pc, nil
	}
	// Prometheus's loader (YAML v2) lists unmarshal errors one a line.
	if list, ok := strings.CutPrefix(err.Error(), "yaml: unmarshal errors:\n"); ok {
		var encoded yaml.Node
		if yaml.Unmarshal(raw, &encoded) == nil {
			var msgs []string
			for _, m := range strings.Split(list, "\n") {
				msgs = append(msgs, strings.TrimSpace(m))
			}
			return nil, describeYAMLErrors(msgs, &encoded, doc)
		}
	}
	return nil, fmt.Errorf("%s: %w", promSectionNames, err)
}

// promSectionNames names the Prometheus-syntax sections in errors.
const promSectionNames = "global, scrape_configs, remote_write, rule_files, alerting"

// blockStyle copies n with every mapping and sequence in block style.
func blockStyle(n *yaml.Node) *yaml.Node {
	c := *n
	if c.Kind == yaml.MappingNode || c.Kind == yaml.SequenceNode {
		c.Style &^= yaml.FlowStyle
	}
	c.Content = make([]*yaml.Node, len(n.Content))
	for i, x := range n.Content {
		c.Content[i] = blockStyle(x)
	}
	return &c
}

// sdConfigTypes are the service discovery sections a scrape config takes
// besides its fields (static_configs has no durations).
var sdConfigTypes = map[string]reflect.Type{
	"file_sd_configs": reflect.TypeFor[[]*file.SDConfig](),
}

var promDurationType = reflect.TypeFor[model.Duration]()

// checkPromDurations appends an error naming the key path and line of each
// bad duration under n, which Prometheus decodes into a t.
func checkPromDurations(n *yaml.Node, t reflect.Type, path yamlPath, errs *[]string) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == promDurationType:
		if n.Kind == yaml.ScalarNode && n.ShortTag() != "!!null" {
			if _, err := model.ParseDuration(n.Value); err != nil {
				*errs = append(*errs, fmt.Sprintf("line %d: %s: %q is not a duration such as 15d, 12h or 30s", n.Line, path, n.Value))
			}
		}
	case t.Kind() == reflect.Slice && n.Kind == yaml.SequenceNode:
		for i, item := range n.Content {
			checkPromDurations(item, t.Elem(), path.with(i), errs)
		}
	case t.Kind() == reflect.Struct && n.Kind == yaml.MappingNode:
		fields := yamlFields(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i].Value
			ft, ok := fields[k]
			if !ok {
				ft, ok = sdConfigTypes[k]
			}
			if ok {
				checkPromDurations(n.Content[i+1], ft, path.with(k), errs)
			}
		}
	}
}

// yamlFields maps the YAML keys of struct type t to their field types,
// with inlined structs' keys included.
func yamlFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		if slices.Contains(strings.Split(opts, ","), "inline") {
			if ft := f.Type; ft.Kind() == reflect.Struct {
				maps.Copy(out, yamlFields(ft))
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out[name] = f.Type
	}
	return out
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
		// A TypeError is listed with the decoder's own, which
		// describeYAMLErrors gives the key path.
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %q is not a duration such as 15d, 12h or 30s", n.Line, n.Value)}}
	}
	*d = duration(v)
	return nil
}

func (d duration) String() string { return model.Duration(d).String() }

// yamlPath is the way from a document's root to a node: mapping keys
// (string) and sequence indexes (int), written storage.tsdb.path or
// scrape_configs[0].job_name.
type yamlPath []any

func (p yamlPath) String() string {
	var b strings.Builder
	for _, e := range p {
		if i, ok := e.(int); ok {
			fmt.Fprintf(&b, "[%d]", i)
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		fmt.Fprint(&b, e)
	}
	return b.String()
}

// with returns p extended by e, leaving p as it is.
func (p yamlPath) with(e any) yamlPath {
	return append(slices.Clip(p), e)
}

func docRoot(doc *yaml.Node) *yaml.Node {
	if doc.Kind == yaml.DocumentNode {
		if len(doc.Content) == 0 {
			return nil
		}
		return doc.Content[0]
	}
	return doc
}

// walkYAML calls fn with every mapping value and sequence item under n,
// its path and, for a mapping value, its key.
func walkYAML(n *yaml.Node, path yamlPath, fn func(path yamlPath, key, val *yaml.Node)) {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			walkYAML(c, path, fn)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := path.with(k.Value)
			fn(p, k, v)
			walkYAML(v, p, fn)
		}
	case yaml.SequenceNode:
		for i, v := range n.Content {
			p := path.with(i)
			fn(p, nil, v)
			walkYAML(v, p, fn)
		}
	}
}

// lookupYAML returns the node at path in doc and, for a mapping value, its
// key.
func lookupYAML(doc *yaml.Node, path yamlPath) (key, val *yaml.Node) {
	walkYAML(doc, nil, func(p yamlPath, k, v *yaml.Node) {
		if val == nil && slices.Equal(p, path) {
			key, val = k, v
		}
	})
	return key, val
}

var (
	yamlUnknownField = regexp.MustCompile(`^line (\d+): field (.+) not found in type `)
	yamlFieldTwice   = regexp.MustCompile(`^line (\d+): field (.+) already set in type `)
	yamlKeyTwice     = regexp.MustCompile(`^line (\d+): mapping key "(.*)" already defined at line (\d+)$`)
	yamlWrongType    = regexp.MustCompile("^line (\\d+): cannot unmarshal (!!\\w+)(?: `.*`)? into (.+)$")
	yamlLine         = regexp.MustCompile(`^line (\d+): (.*)$`)
	intType          = regexp.MustCompile(`^u?int(8|16|32|64)?$`)
)

// describeYAMLErrors rewrites YAML decoding errors, which name Go types
// ("line 3: field pth not found in type struct { Path string …}"), to name
// the key path instead: "line 3: unknown key "pth" in storage.tsdb". The
// errors' lines are in found; the lines reported are src's, the document
// as written (found is src re-encoded for Prometheus's loader, or src).
func describeYAMLErrors(msgs []string, found, src *yaml.Node) error {
	out := make([]string, 0, len(msgs))
	for _, msg := range msgs {
		out = append(out, describeYAMLError(msg, found, src))
	}
	return joinConfigErrors(out)
}

func describeYAMLError(msg string, found, src *yaml.Node) string {
	// srcLine is the line of path in src, as written.
	srcLine := func(path yamlPath, line int) int {
		if found == src {
			return line
		}
		if k, v := lookupYAML(src, path); k != nil {
			return k.Line
		} else if v != nil {
			return v.Line
		}
		return line
	}
	if m := yamlUnknownField.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		path := findYAML(found, func(k, _ *yaml.Node) bool { return k != nil && k.Line == line && k.Value == m[2] })
		if path == nil {
			return fmt.Sprintf("line %d: unknown key %q", line, m[2])
		}
		line = srcLine(path, line)
		if parent := path[:len(path)-1]; len(parent) > 0 {
			return fmt.Sprintf("line %d: unknown key %q in %s", line, m[2], parent)
		}
		return fmt.Sprintf("line %d: unknown top-level key %q", line, m[2])
	}
	if m := yamlFieldTwice.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		path := findYAML(found, func(k, _ *yaml.Node) bool { return k != nil && k.Line == line && k.Value == m[2] })
		if path == nil {
			return fmt.Sprintf("line %d: key %q is set twice", line, m[2])
		}
		return fmt.Sprintf("line %d: %s is set twice", srcLine(path, line), path)
	}
	if m := yamlKeyTwice.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		first, _ := strconv.Atoi(m[3])
		path := findYAML(found, func(k, _ *yaml.Node) bool { return k != nil && k.Line == line && k.Value == m[2] })
		if path == nil {
			return fmt.Sprintf("line %d: key %q is already set on line %d", line, m[2], first)
		}
		return fmt.Sprintf("line %d: %s is already set on line %d", srcLine(path, line), path, srcLine(path[:len(path)-1].with(m[2]), first))
	}
	if m := yamlWrongType.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		var node *yaml.Node
		path := findYAML(found, func(_, v *yaml.Node) bool {
			if v.Line == line && v.ShortTag() == m[2] {
				node = v
				return true
			}
			return false
		})
		where := fmt.Sprintf("%s: ", path)
		if node == nil {
			// The document itself is not a mapping.
			if node = docRoot(found); node == nil {
				return msg
			}
			where = "the top level: "
		}
		what := "a mapping"
		switch node.Kind {
		case yaml.ScalarNode:
			what = strconv.Quote(node.Value)
		case yaml.SequenceNode:
			what = "a list"
		}
		return fmt.Sprintf("line %d: %s%s %s", srcLine(path, line), where, what, wantedYAML(m[3]))
	}
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		// An error of a value's own decoding (a duration): the value on
		// the line, the one the message quotes if there are several.
		line, _ := strconv.Atoi(m[1])
		var paths []yamlPath
		walkYAML(found, nil, func(p yamlPath, _, v *yaml.Node) {
			if v.Line == line && v.Kind == yaml.ScalarNode {
				if strings.Contains(m[2], strconv.Quote(v.Value)) {
					paths = slices.Insert(paths, 0, p)
				} else {
					paths = append(paths, p)
				}
			}
		})
		if len(paths) == 0 {
			return msg
		}
		return fmt.Sprintf("line %d: %s: %s", srcLine(paths[0], line), paths[0], m[2])
	}
	return msg
}

// findYAML returns the path of the deepest node for which match is true
// (deepest: flow style puts a mapping and its values on one line).
func findYAML(doc *yaml.Node, match func(key, val *yaml.Node) bool) yamlPath {
	var found yamlPath
	walkYAML(doc, nil, func(p yamlPath, k, v *yaml.Node) {
		if match(k, v) {
			found = p
		}
	})
	return found
}

// wantedYAML says what a value of the Go type named goType must be, in the
// configuration's terms.
func wantedYAML(goType string) string {
	switch {
	case goType == "time.Duration":
		return "is not a duration such as 30s, 5m or 1h30m"
	case intType.MatchString(goType):
		return "is not a whole number"
	case goType == "float32" || goType == "float64":
		return "is not a number"
	case goType == "bool":
		return "is not true or false"
	case goType == "string":
		return "is not a string"
	case strings.HasPrefix(goType, "[]"):
		return "is not a list"
	}
	return "is not a mapping"
}

// joinConfigErrors is one error for msgs: the message itself if there is
// one, else one a line.
func joinConfigErrors(msgs []string) error {
	if len(msgs) == 1 {
		return errors.New(msgs[0])
	}
	return fmt.Errorf("%d errors:\n  %s", len(msgs), strings.Join(msgs, "\n  "))
}
