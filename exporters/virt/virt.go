// Package virt owns the agent's connection to libvirt: it connects lazily,
// notices a dead connection (libvirtd restarted or gone) and reconnects on
// the next use, and keeps a short-lived snapshot of the domains' parsed XML
// so the collectors of one scrape (instance, diskio, inventory) share one
// listing instead of asking libvirtd three times. Domain statistics are
// read through libvirt's C API directly (stats.go), not the Go binding's
// GetAllDomainStats, which costs a cgo call per field looked for.
//
// It must not build metrics: collectors do that from what it returns.
package virt

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"libvirt.org/go/libvirt"

	"github.com/ballast-cloud/ballast/exporters/domxml"
)

// DefaultURI is the local system qemu driver.
const DefaultURI = "qemu:///system"

// Config says where libvirt is.
type Config struct {
	// URI is the libvirt connection URI (default qemu:///system).
	URI string
	// DomainCacheTTL is how long one domain listing is reused (default 5s,
	// shorter than any sane scrape interval; negative disables the cache).
	DomainCacheTTL time.Duration
	// XMLMaxAge is how long a domain's parsed XML is reused before it is
	// fetched again (default 1m; negative: every listing). The XML carries
	// devices and metadata, which change rarely (hotplug, resize); fetching
	// and parsing it for every domain on every scrape is most of a scrape's
	// cost. A domain new to the listing is always fetched at once.
	XMLMaxAge time.Duration
}

// xmlEntry is a cached domain description.
type xmlEntry struct {
	dom *domxml.Domain
	// expires is spread over [maxAge/2, maxAge) so a host's domains are not
	// all refetched on the same scrape.
	expires time.Time
}

// Client is a self-healing libvirt connection.
type Client struct {
	uri    string
	ttl    time.Duration
	xmlAge time.Duration
	logger *slog.Logger
	// Dial opens a connection; tests may wrap it.
	dial func(uri string) (*libvirt.Connect, error)
	now  func() time.Time

	mu   sync.Mutex
	conn *libvirt.Connect

	snapMu sync.Mutex
	snap   []*domxml.Domain
	snapAt time.Time
	xmls   map[string]xmlEntry // by UUID
	spread uint64              // rotates expiry offsets

	diskErr atomic.Pointer[string] // last disk-path error, logged once
}

// New returns a client for cfg. It does not connect: libvirtd may start
// after the agent, and the first scrape connects.
func New(cfg Config, logger *slog.Logger) (*Client, error) {
	if cfg.URI == "" {
		cfg.URI = DefaultURI
	}
	if cfg.DomainCacheTTL == 0 {
		cfg.DomainCacheTTL = 5 * time.Second
	}
	if cfg.XMLMaxAge == 0 {
		cfg.XMLMaxAge = time.Minute
	}
	return &Client{uri: cfg.URI, ttl: cfg.DomainCacheTTL, xmlAge: cfg.XMLMaxAge, logger: logger,
		dial: libvirt.NewConnect, now: time.Now, xmls: map[string]xmlEntry{}}, nil
}

// ErrUnreachable wraps the error of a connection attempt that failed:
// libvirtd is not running or not reachable at the URI.
var ErrUnreachable = errors.New("libvirt unreachable")

// URI returns the connection URI.
func (c *Client) URI() string { return c.uri }

// Conn returns a live connection, reconnecting when the last one died.
func (c *Client) Conn() (*libvirt.Connect, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn != nil {
		if alive(c.conn) {
			return c.conn, nil
		}
		c.logger.Warn("Libvirt connection lost, reconnecting", "uri", c.uri)
		c.closeLocked()
	}
	conn, err := c.dial(c.uri)
	if err != nil {
		return nil, fmt.Errorf("connect to libvirt %s: %w: %w", c.uri, ErrUnreachable, err)
	}
	c.logger.Info("Connected to libvirt", "uri", c.uri)
	c.conn = conn
	return conn, nil
}

// Check looks at err from a call on conn and drops conn when the failure
// means the connection itself is gone, so the next Conn reconnects.
func (c *Client) Check(conn *libvirt.Connect, err error) {
	if err == nil || IsNoDomain(err) || alive(conn) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn == conn {
		c.logger.Warn("Libvirt connection failed, will reconnect", "uri", c.uri, "err", err)
		c.closeLocked()
	}
}

func (c *Client) closeLocked() {
	if c.conn != nil {
		if _, err := c.conn.Close(); err != nil {
			c.logger.Debug("Closing libvirt connection", "err", err)
		}
		c.conn = nil
	}
}

// alive reports whether conn can still be used. Drivers that cannot tell
// (the in-process test driver) are taken at their word: a dead remote
// connection says so.
func alive(conn *libvirt.Connect) bool {
	ok, err := conn.IsAlive()
	if err != nil {
		return IsNoSupport(err)
	}
	return ok
}

// Close drops the connection.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closeLocked()
	return nil
}

// Domains returns every defined or running domain's parsed XML, reusing a
// listing younger than the cache TTL (a Describe counts as a listing).
// Domains that vanish while being listed are left out.
func (c *Client) Domains() ([]*domxml.Domain, error) {
	c.snapMu.Lock()
	defer c.snapMu.Unlock()
	if c.ttl > 0 && c.snap != nil && c.now().Sub(c.snapAt) < c.ttl {
		return c.snap, nil
	}
	conn, err := c.Conn()
	if err != nil {
		return nil, err
	}
	doms, err := conn.ListAllDomains(0)
	if err != nil {
		c.Check(conn, err)
		return nil, fmt.Errorf("list domains: %w", err)
	}
	defer func() {
		for i := range doms {
			_ = doms[i].Free()
		}
	}()
	if _, err := c.describe(len(doms), func(i int) (string, error) { return doms[i].GetUUIDString() },
		func(i int) (*domxml.Domain, error) { return DomainXML(&doms[i]) }); err != nil {
		c.Check(conn, err)
		return nil, err
	}
	return c.snap, nil
}

// Describe returns the parsed XML of every domain of l, index for index
// (nil for a domain that vanished meanwhile), from the cache where it is
// fresh. l lists every domain, so it also refreshes the listing Domains
// shares: the collectors of one scrape then ask libvirt for it once.
func (c *Client) Describe(l *StatsList) ([]*domxml.Domain, error) {
	c.snapMu.Lock()
	defer c.snapMu.Unlock()
	return c.describe(l.Len(), func(i int) (string, error) { return l.Domains[i].UUID, nil }, l.XML)
}

// describe runs under snapMu over n listed domains: it serves each from
// the XML cache or fetches it, forgets domains no longer listed and stores
// the result as the shared listing.
func (c *Client) describe(n int, uuidOf func(int) (string, error), fetch func(int) (*domxml.Domain, error)) ([]*domxml.Domain, error) {
	now := c.now()
	out := make([]*domxml.Domain, n)
	seen := make(map[string]bool, n)
	var firstErr error
	for i := range n {
		d, err := c.domainXML(i, now, uuidOf, fetch)
		switch {
		case err == nil:
			out[i] = d
			seen[d.UUID] = true
		case IsNoDomain(err):
			c.logger.Debug("Domain vanished while listing", "err", err)
		case firstErr == nil:
			firstErr = err
		}
	}
	for uuid := range c.xmls {
		if !seen[uuid] {
			delete(c.xmls, uuid)
		}
	}
	if firstErr != nil {
		return nil, firstErr
	}
	c.snap, c.snapAt = compact(out), c.now()
	return out, nil
}

// compact drops the nil entries of domains that vanished.
func compact(ds []*domxml.Domain) []*domxml.Domain {
	out := make([]*domxml.Domain, 0, len(ds))
	for _, d := range ds {
		if d != nil {
			out = append(out, d)
		}
	}
	return out
}

// domainXML returns domain i's parsed XML from the cache, or fetches it.
func (c *Client) domainXML(i int, now time.Time, uuidOf func(int) (string, error), fetch func(int) (*domxml.Domain, error)) (*domxml.Domain, error) {
	uuid, err := uuidOf(i)
	if err != nil {
		return nil, err
	}
	if e, ok := c.xmls[uuid]; ok && c.xmlAge > 0 && now.Before(e.expires) {
		return e.dom, nil
	}
	x, err := fetch(i)
	if err != nil {
		return nil, err
	}
	if c.xmlAge > 0 {
		c.spread++
		offset := c.xmlAge / 2 * time.Duration(c.spread%16) / 16
		c.xmls[uuid] = xmlEntry{dom: x, expires: now.Add(c.xmlAge/2 + offset)}
	}
	return x, nil
}

// DomainXML fetches and parses the live XML of d.
func DomainXML(d *libvirt.Domain) (*domxml.Domain, error) {
	doc, err := d.GetXMLDesc(0)
	if err != nil {
		return nil, fmt.Errorf("domain XML: %w", err)
	}
	return domxml.Parse(doc)
}

// IsNoDomain reports whether err says the domain no longer exists.
func IsNoDomain(err error) bool { return HasCode(err, libvirt.ERR_NO_DOMAIN) }

// IsNoSupport reports whether err says the driver lacks the call (the test
// driver lacks many statistics calls).
func IsNoSupport(err error) bool {
	return HasCode(err, libvirt.ERR_NO_SUPPORT) || HasCode(err, libvirt.ERR_ARGUMENT_UNSUPPORTED)
}

// HasCode reports whether err is a libvirt error with the given code.
func HasCode(err error, code libvirt.ErrorNumber) bool {
	var lerr libvirt.Error
	return errors.As(err, &lerr) && lerr.Code == code
}
