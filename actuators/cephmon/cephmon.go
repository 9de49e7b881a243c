// Package cephmon is the actuators' connection to a Ceph cluster: mon
// commands through librados (github.com/ceph/go-ceph/rados only, so no
// release build tag is needed), the OSD map and PG mappings they read, and
// the JSON quirks the mons insist on (a float argument must carry a decimal
// point; OSD ids are JSON integers).
//
// It carries commands; deciding what to change is the actuators' business
// (actuators/cephupmap, actuators/cephreweight).
package cephmon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ceph/go-ceph/rados"
)

// Config says how to reach the cluster. Zero values get the defaults noted.
type Config struct {
	// ConfigFile is the ceph.conf path (default: librados' search path and
	// $CEPH_CONF).
	ConfigFile string `yaml:"config_file"`
	// User is the client name without "client." (default admin).
	User string `yaml:"user"`
	// Keyring is the keyring file of User (optional: cephx may be off).
	Keyring string `yaml:"keyring"`
	// Timeout bounds connecting and each command (default 30s): a dead mon
	// fails the action instead of hanging the plan.
	Timeout time.Duration `yaml:"timeout"`
}

// Validate applies the defaults and checks the values, naming the field.
func (c *Config) Validate() error {
	if c.User == "" {
		c.User = "admin"
	}
	if c.Timeout == 0 {
		c.Timeout = 30 * time.Second
	}
	if c.Timeout < time.Second {
		return fmt.Errorf("ceph.timeout: %s must be at least 1s", c.Timeout)
	}
	if strings.HasPrefix(c.User, "client.") {
		return fmt.Errorf("ceph.user: %q must not start with \"client.\"", c.User)
	}
	return nil
}

// Commander runs mon commands; *rados.Conn is one.
type Commander interface {
	MonCommand(args []byte) ([]byte, string, error)
}

// Client is a lazily connected, self-healing mon command client.
type Client struct {
	cfg    Config
	logger *slog.Logger
	dial   func(Config) (Commander, func(), error)

	mu       sync.RWMutex
	conn     Commander
	shutdown func()
}

// New validates cfg; it connects at the first command.
func New(cfg Config, logger *slog.Logger) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Client{cfg: cfg, logger: logger.With("component", "actuators/cephmon"), dial: dial}, nil
}

// dial connects with librados; the timeouts make librados give up instead
// of retrying a dead mon for client_mount_timeout's 300s.
func dial(cfg Config) (Commander, func(), error) {
	conn, err := rados.NewConnWithUser(cfg.User)
	if err != nil {
		return nil, nil, fmt.Errorf("create rados handle: %w", err)
	}
	fail := func(what string, err error) (Commander, func(), error) {
		conn.Shutdown()
		return nil, nil, fmt.Errorf("%s: %w", what, err)
	}
	if cfg.ConfigFile != "" {
		err = conn.ReadConfigFile(cfg.ConfigFile)
	} else {
		err = conn.ReadDefaultConfigFile()
	}
	if err != nil {
		return fail(fmt.Sprintf("read ceph config %q", cfg.ConfigFile), err)
	}
	secs := strconv.Itoa(int(cfg.Timeout.Seconds()))
	opts := [][2]string{{"client_mount_timeout", secs}, {"rados_mon_op_timeout", secs}}
	if cfg.Keyring != "" {
		opts = append(opts, [2]string{"keyring", cfg.Keyring})
	}
	for _, o := range opts {
		if err := conn.SetConfigOption(o[0], o[1]); err != nil {
			return fail("set ceph option "+o[0], err)
		}
	}
	if err := conn.Connect(); err != nil {
		return fail(fmt.Sprintf("connect to ceph (config %q)", cfg.ConfigFile), err)
	}
	return conn, conn.Shutdown, nil
}

// Close drops the connection.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dropLocked()
	return nil
}

func (c *Client) dropLocked() {
	if c.shutdown != nil {
		c.shutdown()
	}
	c.conn, c.shutdown = nil, nil
}

// CommandError is a command the mon refused or could not run.
type CommandError struct {
	Prefix string
	// Status is the mon's explanation ("pg 2.0 does not exist").
	Status string
	Err    error
}

func (e *CommandError) Error() string {
	if e.Status != "" {
		return fmt.Sprintf("ceph %s: %v (%s)", e.Prefix, e.Err, e.Status)
	}
	return fmt.Sprintf("ceph %s: %v", e.Prefix, e.Err)
}

func (e *CommandError) Unwrap() error { return e.Err }

// Command sends the mon command prefix with args (format json is added)
// and returns its output.
func (c *Client) Command(ctx context.Context, prefix string, args map[string]any) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	req := map[string]any{"prefix": prefix, "format": "json"}
	for k, v := range args {
		req[k] = v
	}
	b, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("encode ceph %s: %w", prefix, err)
	}
	conn, release, err := c.acquire()
	if err != nil {
		return nil, err
	}
	out, status, err := conn.MonCommand(b)
	release()
	if err != nil {
		// A refusal comes with the mon's status text; without one the
		// connection itself is suspect (a timeout), and the next command
		// reconnects.
		if status == "" || errors.Is(err, rados.ErrNotConnected) {
			c.logger.Warn("Ceph command failed, will reconnect", "prefix", prefix, "err", err)
			c.mu.Lock()
			if c.conn == conn {
				c.dropLocked()
			}
			c.mu.Unlock()
		}
		return nil, &CommandError{Prefix: prefix, Status: status, Err: err}
	}
	return out, nil
}

// acquire returns the connection, dialling it if needed, with the read lock
// held until release: librados runs commands concurrently, and a
// connection is shut down only once no command uses it.
func (c *Client) acquire() (Commander, func(), error) {
	for {
		c.mu.RLock()
		if c.conn != nil {
			return c.conn, c.mu.RUnlock, nil
		}
		c.mu.RUnlock()
		c.mu.Lock()
		if c.conn == nil {
			conn, shutdown, err := c.dial(c.cfg)
			if err != nil {
				c.mu.Unlock()
				return nil, nil, err
			}
			c.conn, c.shutdown = conn, shutdown
			c.logger.Info("Connected to Ceph", "config", c.cfg.ConfigFile, "user", c.cfg.User)
		}
		c.mu.Unlock()
	}
}

// Float is a float that always encodes with a decimal point: the mons reject
// `1` where their schema says float ("bad or missing field 'weight'").
type Float float64

// MarshalJSON writes f with a decimal point.
func (f Float) MarshalJSON() ([]byte, error) {
	s := strconv.FormatFloat(float64(f), 'f', -1, 64)
	if !strings.ContainsAny(s, ".eE") {
		s += ".0"
	}
	return []byte(s), nil
}
