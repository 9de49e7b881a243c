// Package store owns the Watcher API's persistence: an embedded SQLite
// database (modernc.org/sqlite, pure Go) with versioned migrations, Watcher's
// soft delete, the repositories of every /v1 resource, the compare-and-set
// state transitions the applier and the audit runner use
// (actuators.StateStore, audit.Store), and the audit log of who did what.
//
// Every state change is written to the audit log in the same transaction and,
// after commit, published as events (io.ballast.audit.v1,
// io.ballast.actionplan.v1, io.ballast.action.v1 and io.ballast.auditlog.v1).
//
// SQL stays portable (no AUTOINCREMENT, no dialect functions; timestamps are
// fixed-width UTC text) so that PostgreSQL can be added as a second driver.
// The package knows nothing of HTTP; it never logs a token.
package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/ballast-cloud/ballast/actuators"
	"github.com/ballast-cloud/ballast/collector/bus"
	"github.com/ballast-cloud/ballast/decision/audit"
)

// Config configures the database. Zero values get the defaults noted.
type Config struct {
	// Path is the SQLite file (default data/watcher.db; ballast server sets
	// ballast.db in its storage.tsdb.path); its directory is
	// created if missing.
	Path string `yaml:"path"`
	// BusyTimeout is how long a writer waits for another (default 10s).
	BusyTimeout time.Duration `yaml:"busy_timeout"`
	// Hostname is recorded on the plans this process executes (default:
	// the machine's hostname).
	Hostname string `yaml:"-"`
	// Now replaces the clock, for tests.
	Now func() time.Time `yaml:"-"`
}

func (c Config) withDefaults() (Config, error) {
	if c.Path == "" {
		c.Path = filepath.Join("data", "watcher.db")
	}
	if c.BusyTimeout == 0 {
		c.BusyTimeout = 10 * time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Hostname == "" {
		h, err := os.Hostname()
		if err != nil || h == "" {
			h = "localhost"
		}
		c.Hostname = h
	}
	if c.BusyTimeout < 0 {
		return c, fmt.Errorf("database.busy_timeout: %s must be positive", c.BusyTimeout)
	}
	return c, nil
}

// Store is the database.
type Store struct {
	cfg    Config
	db     *sql.DB
	logger *slog.Logger
	events *eventQueue
}

// EventSource is the CloudEvents source of the events the store publishes.
const EventSource = "/ballast/watcher"

// Open opens (creating if needed) the database at cfg.Path and applies the
// migrations it lacks. events may be nil; otherwise state changes and audit
// log entries are published to it, asynchronously, after each commit.
func Open(cfg Config, events bus.EventPublisher, logger *slog.Logger) (*Store, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("component", "web/store")
	if dir := filepath.Dir(cfg.Path); dir != "" {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, fmt.Errorf("database.path: %w", err)
		}
	}
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", cfg.BusyTimeout.Milliseconds()))
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Add("_pragma", "foreign_keys(1)")
	// Write transactions take the write lock at BEGIN, so two writers
	// wait on busy_timeout instead of failing on a lock upgrade.
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file:"+cfg.Path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", cfg.Path, err)
	}
	db.SetMaxOpenConns(8)
	db.SetMaxIdleConns(8)
	s := &Store{cfg: cfg, db: db, logger: logger}
	if err := s.migrate(context.Background()); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("migrate %s: %w", cfg.Path, err)
	}
	s.events = newEventQueue(events, logger)
	return s, nil
}

// Close flushes the pending events and closes the database.
func (s *Store) Close() error {
	s.events.close()
	return s.db.Close()
}

// DB exposes the database handle to tests and benchmarks in this module.
func (s *Store) DB() *sql.DB { return s.db }

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migration is one versioned schema change.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// Migrations lists the embedded migrations in version order; file names are
// NNNN_name.sql.
func Migrations() ([]Migration, error) {
	entries, err := fs.ReadDir(migrationFiles, "migrations")
	if err != nil {
		return nil, err
	}
	var out []Migration
	for _, e := range entries {
		base := strings.TrimSuffix(e.Name(), ".sql")
		num, name, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %s: name must be NNNN_name.sql", e.Name())
		}
		b, err := migrationFiles.ReadFile("migrations/" + e.Name())
		if err != nil {
			return nil, err
		}
		out = append(out, Migration{Version: v, Name: name, SQL: string(b)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	for i := range out {
		if out[i].Version != i+1 {
			return nil, fmt.Errorf("migration versions must be 1..n without gaps; found %d at position %d", out[i].Version, i+1)
		}
	}
	return out, nil
}

// migrate applies, each in its own transaction, the migrations not yet
// recorded in schema_migrations. Running it again changes nothing; a
// database newer than this binary is refused.
func (s *Store) migrate(ctx context.Context) error {
	return s.MigrateTo(ctx, -1)
}

// MigrateTo applies migrations up to version (all when negative).
func (s *Store) MigrateTo(ctx context.Context, version int) error {
	ms, err := Migrations()
	if err != nil {
		return err
	}
	if _, err := s.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)`); err != nil {
		return err
	}
	applied, err := s.AppliedMigrations(ctx)
	if err != nil {
		return err
	}
	if n := len(applied); n > 0 && applied[n-1] > len(ms) {
		return fmt.Errorf("database schema version %d is newer than this binary's %d", applied[n-1], len(ms))
	}
	done := map[int]bool{}
	for _, v := range applied {
		done[v] = true
	}
	for _, m := range ms {
		if done[m.Version] || (version >= 0 && m.Version > version) {
			continue
		}
		tx, err := s.db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
			_ = tx.Rollback()
			return fmt.Errorf("migration %d (%s): %w", m.Version, m.Name, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
			m.Version, m.Name, fmtTime(s.now())); err != nil {
			_ = tx.Rollback()
			return err
		}
		if err := tx.Commit(); err != nil {
			return err
		}
		s.logger.Info("Applied schema migration", "version", m.Version, "name", m.Name)
	}
	return nil
}

// AppliedMigrations returns the applied migration versions, ascending.
func (s *Store) AppliedMigrations(ctx context.Context) ([]int, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT version FROM schema_migrations ORDER BY version`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []int
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

func (s *Store) now() time.Time { return s.cfg.Now().UTC() }

// tx is a write transaction that collects the events to publish once it
// commits.
type tx struct {
	*sql.Tx
	s      *Store
	ctx    context.Context
	now    time.Time
	events []bus.Event
}

// write runs fn in a write transaction, committing when fn returns nil and
// publishing the events it collected after the commit.
func (s *Store) write(ctx context.Context, fn func(t *tx) error) error {
	sqlTx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	t := &tx{Tx: sqlTx, s: s, ctx: ctx, now: s.now()}
	if err := fn(t); err != nil {
		_ = sqlTx.Rollback()
		return err
	}
	if err := sqlTx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	s.events.push(t.events...)
	return nil
}

func (t *tx) exec(query string, args ...any) (sql.Result, error) {
	return t.ExecContext(t.ctx, query, args...)
}

// Errors. notFound and conflict satisfy errors.Is for the sentinels of
// both the audit runner and the applier.

type notFoundError struct{ kind, id string }

func (e *notFoundError) Error() string { return fmt.Sprintf("%s %s could not be found", e.kind, e.id) }
func (e *notFoundError) Is(target error) bool {
	return target == audit.ErrNotFound
}

func notFound(kind, id string) error { return &notFoundError{kind: kind, id: id} }

type conflictError struct{ msg string }

func (e *conflictError) Error() string { return e.msg }
func (e *conflictError) Is(target error) bool {
	return target == audit.ErrConflict || target == actuators.ErrStateConflict
}

func conflict(format string, args ...any) error {
	return &conflictError{msg: fmt.Sprintf(format, args...)}
}

// ErrDuplicate is returned when a name is already used by a live row.
var ErrDuplicate = errors.New("already exists")

// InputError is a request the store refuses (bad sort key, bad marker); the
// API answers it with 400 and Msg.
type InputError struct{ Msg string }

func (e *InputError) Error() string { return e.Msg }

func inputErr(format string, args ...any) error {
	return &InputError{Msg: fmt.Sprintf(format, args...)}
}

func isUnique(err error) bool {
	return err != nil && strings.Contains(err.Error(), "UNIQUE constraint failed")
}

// Time is stored as fixed-width UTC text, which sorts like the time.
const timeLayout = "2006-01-02T15:04:05.000000Z"

func fmtTime(t time.Time) string { return t.UTC().Format(timeLayout) }

func nullTime(t *time.Time) any {
	if t == nil {
		return nil
	}
	return fmtTime(*t)
}

func parseTime(s string) time.Time {
	t, err := time.Parse(timeLayout, s)
	if err != nil {
		t, _ = time.Parse(time.RFC3339Nano, s)
	}
	return t.UTC()
}

func timePtr(ns sql.NullString) *time.Time {
	if !ns.Valid || ns.String == "" {
		return nil
	}
	t := parseTime(ns.String)
	return &t
}

func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Actor is who acts: a token's name and role and the client address, or
// the system (the audit runner, the applier).
type Actor struct {
	Name   string
	Role   string
	Remote string
}

type actorKey struct{}

// WithActor returns ctx carrying a; the store records it on the changes
// made with that context.
func WithActor(ctx context.Context, a Actor) context.Context {
	return context.WithValue(ctx, actorKey{}, a)
}

// ActorFrom returns the actor in ctx, or the system.
func ActorFrom(ctx context.Context) Actor {
	if a, ok := ctx.Value(actorKey{}).(Actor); ok {
		return a
	}
	return Actor{Name: "system", Role: "system"}
}

// eventQueue publishes events in the background so that a slow bus never
// holds a transaction or an HTTP request; when its buffer is full it drops
// (and counts) rather than block.
type eventQueue struct {
	pub     bus.EventPublisher
	logger  *slog.Logger
	ch      chan bus.Event
	done    chan struct{}
	once    sync.Once
	dropped atomic.Int64
	mu      sync.RWMutex
	closed  bool
}

func newEventQueue(pub bus.EventPublisher, logger *slog.Logger) *eventQueue {
	q := &eventQueue{pub: pub, logger: logger, ch: make(chan bus.Event, 4096), done: make(chan struct{})}
	if pub == nil {
		close(q.done)
		return q
	}
	go q.run()
	return q
}

func (q *eventQueue) push(events ...bus.Event) {
	if q.pub == nil || len(events) == 0 {
		return
	}
	q.mu.RLock()
	defer q.mu.RUnlock()
	if q.closed {
		return
	}
	for _, e := range events {
		select {
		case q.ch <- e:
		default:
			if n := q.dropped.Add(1); n&(n-1) == 0 { // log at powers of two
				q.logger.Warn("Event queue full: events dropped", "dropped_total", n)
			}
		}
	}
}

func (q *eventQueue) run() {
	defer close(q.done)
	batch := make([]bus.Event, 0, 64)
	for e := range q.ch {
		batch = append(batch[:0], e)
	fill:
		for len(batch) < cap(batch) {
			select {
			case e, ok := <-q.ch:
				if !ok {
					break fill
				}
				batch = append(batch, e)
			default:
				break fill
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := q.pub.PublishEvents(ctx, batch...); err != nil {
			q.logger.Warn("Cannot publish events", "count", len(batch), "err", err)
		}
		cancel()
	}
}

func (q *eventQueue) close() {
	q.once.Do(func() {
		q.mu.Lock()
		q.closed = true
		if q.pub != nil {
			close(q.ch)
		}
		q.mu.Unlock()
		select {
		case <-q.done:
		case <-time.After(10 * time.Second):
			q.logger.Warn("Events still unpublished at close")
		}
	})
}

// Dropped returns how many events the queue dropped.
func (s *Store) Dropped() int64 { return s.events.dropped.Load() }
