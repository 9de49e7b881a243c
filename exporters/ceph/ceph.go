// Package ceph is the Ceph collector: cluster health, per-OSD state, weight
// and utilisation, pool usage, PG state counts, upmap items and balancer
// status, read with mon and mgr commands through librados
// (github.com/ceph/go-ceph/rados only, so no release build tag is needed).
//
// Where the Ceph mgr prometheus module has a metric for the same thing, the
// name and labels are the module's (ceph_osd_up{ceph_daemon}, ceph_pool_stored
// {pool_id}, ceph_health_status) so dashboards 2842/5336/5342 work; what the
// module lacks is under ballast_ceph_ with the same label names. It must not
// change the cluster: only read-only commands are sent.
package ceph

import (
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/ceph/go-ceph/rados"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ballast-cloud/ballast/exporters/scrape"
)

// Config says how to reach the cluster.
type Config struct {
	// ConfigFile is the ceph.conf path (default: librados' search path and
	// $CEPH_CONF).
	ConfigFile string
	// Keyring is the keyring file of User (optional: cephx may be off).
	Keyring string
	// User is the client name without "client." (default admin).
	User string
	// Timeout bounds connecting and each command (default 10s); a dead mon
	// then fails the scrape instead of hanging it.
	Timeout time.Duration
}

// Commander runs mon and mgr commands; *rados.Conn is one.
type Commander interface {
	MonCommand(args []byte) ([]byte, string, error)
	MgrCommand(args [][]byte) ([]byte, string, error)
}

// Collector reports a Ceph cluster.
type Collector struct {
	cfg    Config
	logger *slog.Logger
	// connect opens a cluster connection; tests may replace it.
	connect func(Config) (Commander, func(), error)

	mu       sync.Mutex
	conn     Commander
	shutdown func()
}

var _ scrape.Collector = (*Collector)(nil)

// New validates cfg; it connects on the first scrape.
func New(cfg Config, logger *slog.Logger) (*Collector, error) {
	if cfg.User == "" {
		cfg.User = "admin"
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.Timeout < time.Second {
		return nil, fmt.Errorf("ceph.timeout %s: must be at least 1s", cfg.Timeout)
	}
	return &Collector{cfg: cfg, logger: logger, connect: dial}, nil
}

// dial connects with librados. The timeouts make librados give up instead
// of retrying a dead mon for client_mount_timeout's default of 300s.
func dial(cfg Config) (Commander, func(), error) {
	conn, err := rados.NewConnWithUser(cfg.User)
	if err != nil {
		return nil, nil, fmt.Errorf("create rados handle: %w", err)
	}
	if cfg.ConfigFile != "" {
		err = conn.ReadConfigFile(cfg.ConfigFile)
	} else {
		err = conn.ReadDefaultConfigFile()
	}
	if err != nil {
		conn.Shutdown()
		return nil, nil, fmt.Errorf("read ceph config %q: %w", cfg.ConfigFile, err)
	}
	secs := strconv.Itoa(int(cfg.Timeout.Seconds()))
	opts := [][2]string{{"client_mount_timeout", secs}, {"rados_mon_op_timeout", secs}, {"rados_osd_op_timeout", secs}}
	if cfg.Keyring != "" {
		opts = append(opts, [2]string{"keyring", cfg.Keyring})
	}
	for _, o := range opts {
		if err := conn.SetConfigOption(o[0], o[1]); err != nil {
			conn.Shutdown()
			return nil, nil, fmt.Errorf("set ceph option %s: %w", o[0], err)
		}
	}
	if err := conn.Connect(); err != nil {
		conn.Shutdown()
		return nil, nil, fmt.Errorf("connect to ceph (config %q): %w", cfg.ConfigFile, err)
	}
	return conn, conn.Shutdown, nil
}

// Close drops the cluster connection.
func (c *Collector) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dropLocked()
	return nil
}

func (c *Collector) dropLocked() {
	if c.shutdown != nil {
		c.shutdown()
	}
	c.conn, c.shutdown = nil, nil
}

func (c *Collector) get() (Commander, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn != nil {
		return c.conn, nil
	}
	conn, shutdown, err := c.connect(c.cfg)
	if err != nil {
		return nil, err
	}
	c.logger.Info("Connected to Ceph", "config", c.cfg.ConfigFile, "user", c.cfg.User)
	c.conn, c.shutdown = conn, shutdown
	return conn, nil
}

// Update reads the cluster and sends its metrics, with ballast_ceph_up.
// A failed command drops the connection so the next scrape reconnects
// (the mon may have moved or restarted).
func (c *Collector) Update(ch chan<- prometheus.Metric) error {
	return scrape.ReportUp(ch, upDesc, c.update(ch))
}

func (c *Collector) update(ch chan<- prometheus.Metric) error {
	conn, err := c.get()
	if err != nil {
		return err
	}
	snap, err := read(conn)
	if err != nil {
		var connErr *commandError
		if errors.As(err, &connErr) {
			c.mu.Lock()
			if c.conn == conn {
				c.dropLocked()
			}
			c.mu.Unlock()
		}
		return err
	}
	snap.emit(ch)
	return nil
}
