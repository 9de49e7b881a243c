// Package migrate is the migrate actuator: it moves a libvirt domain from
// source_node to destination_node by peer-to-peer migration
// (virDomainMigrateToURI3 with MIGRATE_PEER2PEER|PERSIST_DEST|UNDEFINE_SOURCE,
// plus MIGRATE_LIVE for a live migration). The source libvirtd dials the
// destination itself, so Ballast needs a connection to the source only to
// migrate, and to both to check and reconcile.
//
// A running domain migrates live (or, for migration_type cold, paused for
// the copy); a shut-off domain migrates offline (its definition moves). The
// job's statistics give progress; past the configured timeout, or when the
// applier aborts, the job is aborted and libvirt rolls the domain back to
// the source. Ballast host names map to libvirt URIs through configuration.
//
// It must not decide where instances go: it performs the plan's move.
package migrate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"libvirt.org/go/libvirt"

	"github.com/ballast-cloud/ballast/actuators"
	"github.com/ballast-cloud/ballast/decision/action"
	"github.com/ballast-cloud/ballast/exporters/virt"
)

// Host maps a Ballast host name to its libvirt daemon.
type Host struct {
	// Name is the host's name in plans (source_node, destination_node).
	Name string `yaml:"name"`
	// URI is how Ballast connects to the host's libvirtd
	// (qemu+tcp://host/system, qemu+ssh://…, qemu+unix:///system?socket=…).
	URI string `yaml:"uri"`
	// MigrationURI is how a source libvirtd reaches this host as the
	// destination of a peer-to-peer migration (default URI; it differs when
	// Ballast and the hypervisors see different networks).
	MigrationURI string `yaml:"migration_uri"`
	// MigrationAddress, when set, is the data-plane URI qemu on the source
	// sends memory to (tcp://10.0.0.2[:port]), e.g. a dedicated migration
	// network; by default the destination libvirtd chooses.
	MigrationAddress string `yaml:"migration_address"`
}

// Config configures the migrate actuator. Zero values get the defaults noted.
type Config struct {
	Hosts []Host `yaml:"hosts"`
	// BandwidthMiBps caps a migration's bandwidth in MiB/s (default 0: no
	// cap).
	BandwidthMiBps uint64 `yaml:"bandwidth_mib_per_second"`
	// AutoConverge throttles a guest's vCPUs when memory is dirtied faster
	// than it is copied.
	AutoConverge bool `yaml:"auto_converge"`
	// PostCopy allows post-copy; the switch is made once a migration has
	// run PostCopyAfter in pre-copy (default 30s).
	PostCopy      bool          `yaml:"post_copy"`
	PostCopyAfter time.Duration `yaml:"post_copy_after"`
	// Timeout aborts a migration still running after it (default 15m,
	// Watcher's migration_max_retries × migration_interval).
	Timeout time.Duration `yaml:"timeout"`
	// PollInterval is how often job statistics are read for progress
	// (default 1s).
	PollInterval time.Duration `yaml:"poll_interval"`
	// AllowUnsafe passes MIGRATE_UNSAFE (disks not on shared storage with a
	// cache mode libvirt cannot prove safe).
	AllowUnsafe bool `yaml:"allow_unsafe"`
	// CopyStorage copies non-shared disks with the migration
	// (MIGRATE_NON_SHARED_DISK).
	CopyStorage bool `yaml:"copy_storage"`
}

var uriScheme = regexp.MustCompile(`^[a-z][a-z0-9+.-]*$`)

func checkURI(field, s string, schemes ...string) error {
	u, err := url.Parse(s)
	if err != nil || !uriScheme.MatchString(u.Scheme) {
		return fmt.Errorf("%s: %q is not a URI (want e.g. qemu+tcp://host/system)", field, s)
	}
	if len(schemes) > 0 && !slices.Contains(schemes, u.Scheme) {
		return fmt.Errorf("%s: %q has scheme %q, want one of %s", field, s, u.Scheme, strings.Join(schemes, ", "))
	}
	return nil
}

// Validate applies the defaults and checks every field, naming the bad one
// (libvirt.hosts[2].uri).
func (c *Config) Validate() error {
	var errs []error
	seen := map[string]int{}
	for i := range c.Hosts {
		h := &c.Hosts[i]
		f := fmt.Sprintf("libvirt.hosts[%d]", i)
		if h.Name == "" {
			errs = append(errs, fmt.Errorf("%s.name: must not be empty", f))
		} else if j, dup := seen[h.Name]; dup {
			errs = append(errs, fmt.Errorf("%s.name: %q is also hosts[%d]", f, h.Name, j))
		}
		seen[h.Name] = i
		if err := checkURI(f+".uri", h.URI); err != nil {
			errs = append(errs, err)
		}
		if h.MigrationURI == "" {
			h.MigrationURI = h.URI
		} else if err := checkURI(f+".migration_uri", h.MigrationURI); err != nil {
			errs = append(errs, err)
		}
		if h.MigrationAddress != "" {
			if err := checkURI(f+".migration_address", h.MigrationAddress, "tcp", "rdma", "unix"); err != nil {
				errs = append(errs, err)
			}
		}
	}
	durs := []struct {
		v    *time.Duration
		def  time.Duration
		name string
	}{{&c.PostCopyAfter, 30 * time.Second, "post_copy_after"}, {&c.Timeout, 15 * time.Minute, "timeout"}, {&c.PollInterval, time.Second, "poll_interval"}}
	for _, d := range durs {
		if *d.v < 0 {
			errs = append(errs, fmt.Errorf("libvirt.%s: %s must not be negative", d.name, *d.v))
		} else if *d.v == 0 {
			*d.v = d.def
		}
	}
	return errors.Join(errs...)
}

// hypervisor is a configured host and its connection.
type hypervisor struct {
	Host
	client *virt.Client
}

// Migrate migrates libvirt domains.
type Migrate struct {
	cfg    Config
	hosts  map[string]*hypervisor
	logger *slog.Logger
}

var (
	_ actuators.Actuator   = (*Migrate)(nil)
	_ actuators.Reconciler = (*Migrate)(nil)
)

// New validates cfg. It connects lazily: a host's libvirtd may be down now
// and up when a plan needs it.
func New(cfg Config, logger *slog.Logger) (*Migrate, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if len(cfg.Hosts) == 0 {
		return nil, errors.New("libvirt.hosts: list at least the hosts migrations run between")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("component", "actuators/migrate")
	m := &Migrate{cfg: cfg, hosts: map[string]*hypervisor{}, logger: logger}
	for _, h := range cfg.Hosts {
		// A negative cache TTL: every lookup asks libvirtd, which is the
		// point of a precondition.
		c, err := virt.New(virt.Config{URI: h.URI, DomainCacheTTL: -1, XMLMaxAge: -1}, logger.With("host", h.Name))
		if err != nil {
			return nil, fmt.Errorf("libvirt host %s: %w", h.Name, err)
		}
		m.hosts[h.Name] = &hypervisor{Host: h, client: c}
	}
	return m, nil
}

// Close drops the libvirt connections.
func (m *Migrate) Close() error {
	var errs []error
	for _, h := range m.hosts {
		errs = append(errs, h.client.Close())
	}
	return errors.Join(errs...)
}

type params struct {
	instance string
	src, dst *hypervisor
	live     bool
	srcName  string
	dstName  string
}

func (m *Migrate) parse(a action.Action) (params, error) {
	var p params
	var err error
	if p.instance, err = actuators.StringParam(a, "resource_id"); err != nil {
		return p, err
	}
	if p.srcName, err = actuators.StringParam(a, "source_node"); err != nil {
		return p, err
	}
	if p.dstName = a.Param("destination_node"); p.dstName == "" {
		return p, errors.New("migrate: input_parameters.destination_node is required: libvirt has no scheduler to pick one")
	}
	p.live = a.Param("migration_type") != "cold"
	var ok bool
	if p.src, ok = m.hosts[p.srcName]; !ok {
		return p, fmt.Errorf("migrate: source_node %q is not in actuators.libvirt.hosts", p.srcName)
	}
	if p.dst, ok = m.hosts[p.dstName]; !ok {
		return p, fmt.Errorf("migrate: destination_node %q is not in actuators.libvirt.hosts", p.dstName)
	}
	return p, nil
}

var uuidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$`)

// lookup finds the instance (a domain UUID, as Nova's instance UUIDs are,
// or a domain name) on h; nil when h does not have it.
func lookup(h *hypervisor, instance string) (*libvirt.Domain, error) {
	conn, err := h.client.Conn()
	if err != nil {
		return nil, err
	}
	var d *libvirt.Domain
	if uuidRE.MatchString(instance) {
		d, err = conn.LookupDomainByUUIDString(instance)
	} else {
		d, err = conn.LookupDomainByName(instance)
	}
	switch {
	case virt.IsNoDomain(err):
		return nil, nil
	case err != nil:
		h.client.Check(conn, err)
		return nil, fmt.Errorf("look up instance %s on %s: %w", instance, h.Name, err)
	}
	return d, nil
}

// onSource reads a's parameters and looks the instance up on the source
// (nil when the source does not have it; the caller frees it).
func (m *Migrate) onSource(a action.Action) (params, *libvirt.Domain, error) {
	p, err := m.parse(a)
	if err != nil {
		return p, nil, err
	}
	d, err := lookup(p.src, p.instance)
	return p, d, err
}

// busy reports a job (a migration, a save) running on d; drivers without
// job information, and shut-off domains (libvirt refuses to ask), report
// none.
func busy(d *libvirt.Domain) (bool, error) {
	info, err := d.GetJobInfo()
	if virt.IsNoSupport(err) || virt.HasCode(err, libvirt.ERR_OPERATION_INVALID) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return info.Type != libvirt.DOMAIN_JOB_NONE, nil
}

// Precondition checks that the instance is still on source_node and not
// busy: an instance already on the destination, gone, or in the middle of
// another job makes the action SKIPPED.
func (m *Migrate) Precondition(_ context.Context, a action.Action) error {
	p, d, err := m.onSource(a)
	if err != nil {
		return err
	}
	if d == nil {
		there, err := lookup(p.dst, p.instance)
		if err != nil {
			return err
		}
		if there != nil {
			_ = there.Free()
			return actuators.Skip("instance %s already runs on destination_node %s", p.instance, p.dstName)
		}
		return actuators.Skip("instance %s is not on source_node %s", p.instance, p.srcName)
	}
	defer d.Free()
	b, err := busy(d)
	if err != nil {
		return fmt.Errorf("job of instance %s on %s: %w", p.instance, p.srcName, err)
	}
	if b {
		return actuators.Skip("instance %s on %s is busy with another job", p.instance, p.srcName)
	}
	return nil
}

// Execute migrates the instance, reporting progress from the job's
// statistics, and aborts the job on timeout or when ctx ends.
func (m *Migrate) Execute(ctx context.Context, a action.Action, progress func(float64)) error {
	p, d, err := m.onSource(a)
	if err != nil {
		return err
	}
	if d == nil {
		return fmt.Errorf("instance %s is not on %s", p.instance, p.srcName)
	}
	defer d.Free()
	active, err := d.IsActive()
	if err != nil {
		return fmt.Errorf("state of instance %s on %s: %w", p.instance, p.srcName, err)
	}
	flags, params := m.flags(p, active)
	logger := m.logger.With("instance", p.instance, "source", p.srcName, "destination", p.dstName)
	logger.Info("Migrating instance", "live", p.live && active, "offline", !active, "flags", uint(flags))

	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- d.MigrateToURI3(p.dst.MigrationURI, params, flags) }()
	poll := time.NewTicker(m.cfg.PollInterval)
	defer poll.Stop()
	timeout := time.NewTimer(m.cfg.Timeout)
	defer timeout.Stop()
	ctxDone := ctx.Done()
	var aborted error
	postCopy := false
	for {
		select {
		case err := <-done:
			if err == nil {
				logger.Info("Instance migrated", "took", time.Since(start).Round(time.Millisecond))
				return nil
			}
			if aborted != nil {
				return fmt.Errorf("%w (libvirt: %w)", aborted, err)
			}
			return fmt.Errorf("migrate instance %s from %s to %s: %w", p.instance, p.srcName, p.dstName, err)
		case <-poll.C:
			if !active {
				continue
			}
			if f, ok := jobProgress(d); ok {
				progress(f)
			}
			if m.cfg.PostCopy && !postCopy && aborted == nil && time.Since(start) >= m.cfg.PostCopyAfter {
				postCopy = true
				if err := d.MigrateStartPostCopy(0); err != nil {
					logger.Warn("Switching to post-copy", "err", err)
				} else {
					logger.Info("Switched to post-copy", "after", time.Since(start).Round(time.Second))
				}
			}
		case <-timeout.C:
			aborted = fmt.Errorf("migration of instance %s timed out after %s (libvirt.timeout)", p.instance, m.cfg.Timeout)
			m.abort(logger, d)
		case <-ctxDone:
			ctxDone = nil
			aborted = fmt.Errorf("migration of instance %s aborted: %w", p.instance, ctx.Err())
			m.abort(logger, d)
		}
	}
}

func (m *Migrate) flags(p params, active bool) (libvirt.DomainMigrateFlags, *libvirt.DomainMigrateParameters) {
	flags := libvirt.MIGRATE_PEER2PEER | libvirt.MIGRATE_PERSIST_DEST | libvirt.MIGRATE_UNDEFINE_SOURCE
	params := &libvirt.DomainMigrateParameters{}
	if m.cfg.AllowUnsafe {
		flags |= libvirt.MIGRATE_UNSAFE
	}
	if !active {
		// A shut-off domain: only its definition moves.
		return flags | libvirt.MIGRATE_OFFLINE, params
	}
	if p.live {
		flags |= libvirt.MIGRATE_LIVE
	}
	if m.cfg.AutoConverge {
		flags |= libvirt.MIGRATE_AUTO_CONVERGE
	}
	if m.cfg.PostCopy {
		flags |= libvirt.MIGRATE_POSTCOPY
	}
	if m.cfg.CopyStorage {
		flags |= libvirt.MIGRATE_NON_SHARED_DISK
	}
	if m.cfg.BandwidthMiBps > 0 {
		params.BandwidthSet, params.Bandwidth = true, m.cfg.BandwidthMiBps
	}
	if p.dst.MigrationAddress != "" {
		params.URISet, params.URI = true, p.dst.MigrationAddress
	}
	return flags, params
}

func (m *Migrate) abort(logger *slog.Logger, d *libvirt.Domain) {
	if err := d.AbortJob(); err != nil {
		// Past the point of no return (post-copy, or the job just ended):
		// the migration completes or fails on its own.
		logger.Warn("Aborting the migration job", "err", err)
		return
	}
	logger.Info("Migration job aborted")
}

func jobProgress(d *libvirt.Domain) (float64, bool) {
	js, err := d.GetJobStats(0)
	if err != nil || js.Type == libvirt.DOMAIN_JOB_NONE {
		return 0, false
	}
	switch {
	case js.DataTotalSet && js.DataProcessedSet && js.DataTotal > 0:
		return min(float64(js.DataProcessed)/float64(js.DataTotal), 0.99), true
	case js.MemTotalSet && js.MemProcessedSet && js.MemTotal > 0:
		return min(float64(js.MemProcessed)/float64(js.MemTotal), 0.99), true
	}
	return 0, false
}

// Reconcile reports whether the instance now runs on (or, shut off, is
// defined on) the destination and no longer on the source. A migration job
// still running on the source (a peer-to-peer migration outlives the client
// that started it) is an error, so the applier asks again later.
func (m *Migrate) Reconcile(_ context.Context, a action.Action) (bool, error) {
	p, d, err := m.onSource(a)
	if err != nil {
		return false, err
	}
	if d != nil {
		defer d.Free()
		b, err := busy(d)
		if err != nil {
			return false, fmt.Errorf("job of instance %s on %s: %w", p.instance, p.srcName, err)
		}
		if b {
			return false, fmt.Errorf("instance %s is still migrating from %s", p.instance, p.srcName)
		}
		active, err := d.IsActive()
		if err != nil {
			return false, fmt.Errorf("state of instance %s on %s: %w", p.instance, p.srcName, err)
		}
		if active {
			return false, nil
		}
	}
	there, err := lookup(p.dst, p.instance)
	if err != nil || there == nil {
		return false, err
	}
	defer there.Free()
	state, reason, err := there.GetState()
	if err != nil {
		return false, fmt.Errorf("state of instance %s on %s: %w", p.instance, p.dstName, err)
	}
	if state == libvirt.DOMAIN_PAUSED && libvirt.DomainPausedReason(reason) == libvirt.DOMAIN_PAUSED_MIGRATION {
		// An incoming migration not finished: the source decides.
		return false, fmt.Errorf("instance %s is still arriving on %s", p.instance, p.dstName)
	}
	if state == libvirt.DOMAIN_SHUTOFF {
		// An offline migration leaves a persistent definition.
		persistent, err := there.IsPersistent()
		return err == nil && persistent && d == nil, err
	}
	return true, nil
}
