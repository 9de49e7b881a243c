// Package watcher serves the Watcher-compatible /v1 API (OpenStack
// Watcher's infra-optim service, microversions 1.0–1.7) over the Ballast
// decision engine: goals, strategies, scoring engines, services, audit
// templates, audits, action plans, actions, the data model and webhooks,
// with Watcher's views, filters, pagination, JSON-patch rules, state
// machines, status codes and error bodies, so that python-watcherclient and
// `openstack optimize` work unchanged.
//
// It adds bearer-token authentication with roles (reader, operator, admin)
// from a tokens file and an admin-managed token API, and an audit log of
// logins, mutating requests and state changes. It runs the audit runner
// (decision/audit) and hands plans to the applier through a Launcher; it
// never executes an action itself and never logs a token.
package watcher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/ballast-cloud/ballast/decision"
	"github.com/ballast-cloud/ballast/decision/audit"
	"github.com/ballast-cloud/ballast/decision/goal"
	"github.com/ballast-cloud/ballast/decision/scoring"
	"github.com/ballast-cloud/ballast/web/store"
)

// Config is the watcher section of the server configuration. Zero values
// get the defaults noted.
type Config struct {
	// ListenAddress, when set, also serves the API on its own listener
	// (Watcher's default port is 9322); the API is always mounted on the
	// main server too.
	ListenAddress string `yaml:"listen_address"`
	// ExternalURL is the base of the links in responses (default: the
	// request's scheme and Host).
	ExternalURL string `yaml:"external_url"`
	// AuthStrategy is "tokens" (default) or "noauth" (every request acts
	// as an admin named anonymous; for a laptop, never for production).
	AuthStrategy string `yaml:"auth_strategy"`
	// TokensFile is the YAML file of tokens (see docs/watcher-api.md).
	TokensFile string `yaml:"tokens_file"`
	// EnableWebhooksAuth requires a token on POST /v1/webhooks (default
	// true, as Watcher's enable_webhooks_auth).
	EnableWebhooksAuth *bool `yaml:"enable_webhooks_auth"`
	// MaxLimit caps and defaults a page's size (default 1000).
	MaxLimit int `yaml:"max_limit"`
	// LoginWindow is how long a token stays logged in after a request: a
	// request after a longer silence is recorded as a new login (default
	// 15m).
	LoginWindow time.Duration `yaml:"login_window"`
	// ServiceHeartbeat and ServiceDownTime drive /v1/services: services
	// report every ServiceHeartbeat (default 10s) and show FAILED after
	// ServiceDownTime without one (default 90s, Watcher's).
	ServiceHeartbeat time.Duration `yaml:"service_heartbeat"`
	ServiceDownTime  time.Duration `yaml:"service_down_time"`
	// Database is the SQLite store (opened by the caller with store.Open).
	Database store.Config `yaml:"database"`
	// Audits configures the audit runner.
	Audits audit.Config `yaml:"audits"`
	// Now replaces the clock, for tests.
	Now func() time.Time `yaml:"-"`
}

// WithDefaults returns c with defaults applied, validated; errors name the
// field.
func (c Config) WithDefaults() (Config, error) {
	if c.AuthStrategy == "" {
		c.AuthStrategy = "tokens"
	}
	if c.EnableWebhooksAuth == nil {
		t := true
		c.EnableWebhooksAuth = &t
	}
	if c.MaxLimit == 0 {
		c.MaxLimit = 1000
	}
	if c.LoginWindow == 0 {
		c.LoginWindow = 15 * time.Minute
	}
	if c.ServiceHeartbeat == 0 {
		c.ServiceHeartbeat = 10 * time.Second
	}
	if c.ServiceDownTime == 0 {
		c.ServiceDownTime = 90 * time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("watcher.%s: %s", field, fmt.Sprintf(format, args...)))
	}
	switch c.AuthStrategy {
	case "tokens", "noauth":
	default:
		bad("auth_strategy", "%q is not one of tokens, noauth", c.AuthStrategy)
	}
	if c.ListenAddress != "" {
		if _, _, err := net.SplitHostPort(c.ListenAddress); err != nil {
			bad("listen_address", "%q: %v", c.ListenAddress, err)
		}
	}
	if c.ExternalURL != "" {
		u, err := url.Parse(c.ExternalURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("external_url", "%q is not an absolute http(s) URL", c.ExternalURL)
		} else {
			c.ExternalURL = strings.TrimSuffix(c.ExternalURL, "/")
		}
	}
	if c.MaxLimit < 0 {
		bad("max_limit", "%d must be positive", c.MaxLimit)
	}
	if c.LoginWindow < 0 {
		bad("login_window", "%s must be positive", c.LoginWindow)
	}
	if c.ServiceHeartbeat < 0 || c.ServiceDownTime < 0 {
		bad("service_heartbeat", "service_heartbeat and service_down_time must be positive")
	}
	if c.AuthStrategy == "tokens" && c.TokensFile == "" {
		// Tokens can also be created through the API, but only by an
		// admin, and the first admin must come from somewhere.
		bad("tokens_file", "required with auth_strategy tokens (or set auth_strategy: noauth)")
	}
	if _, err := c.Audits.WithDefaults(); err != nil {
		bad("audits", "%v", err)
	}
	return c, errors.Join(errs...)
}

// Engine is what the API needs of the decision engine: *decision.Engine.
type Engine interface {
	audit.Planner
	Goals() []goal.Goal
	Strategies() []decision.StrategyInfo
	ScoringEngines() []scoring.Info
	// ParametersFor validates parameters and fills defaults.
	ParametersFor(goal, strategy string, params map[string]any) (string, map[string]any, error)
}

var _ Engine = (*decision.Engine)(nil)

// Deps are the API's collaborators. Store, Engine and Models are required.
// Launcher starts plans on the applier: without one, started plans stay
// PENDING. The store publishes events (give store.Open the bus).
type Deps struct {
	Store      *store.Store
	Engine     Engine
	Models     audit.ModelSource
	Launcher   audit.Launcher
	Registerer prometheus.Registerer
	// Validator, when set, is asked about tokens that are neither in the
	// tokens file nor API tokens: the seam for Keystone validation.
	Validator TokenValidator
}

// TokenValidator validates a token the API does not know itself (Keystone,
// an OIDC introspection endpoint), returning the caller's name and one of
// the roles admin, operator, reader; ok is false for a token it rejects.
type TokenValidator interface {
	Validate(ctx context.Context, token string) (name, role string, ok bool, err error)
}

// Canceller is implemented by launchers that want to hear at once that a
// plan moved to CANCELLING (the applier otherwise sees it at its next
// compare-and-set).
type Canceller interface {
	Cancel(ctx context.Context, planUUID string) error
}

// API is the Watcher-compatible API; it is an http.Handler.
type API struct {
	cfg     Config
	deps    Deps
	logger  *slog.Logger
	runner  *audit.Runner
	auth    *authenticator
	handler http.Handler

	requests *prometheus.HistogramVec
}

// New syncs the engine's goals, strategies and scoring engines into the
// store, loads the tokens and builds the router and the audit runner
// (started by Run).
func New(cfg Config, deps Deps, logger *slog.Logger) (*API, error) {
	cfg, err := cfg.WithDefaults()
	if err != nil {
		return nil, err
	}
	if deps.Store == nil || deps.Engine == nil || deps.Models == nil {
		return nil, errors.New("watcher: Store, Engine and Models are required")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	// The audit runner scopes its own logger: give it the unscoped one, so
	// each line carries one component.
	base := logger
	logger = logger.With("component", "web/watcher")
	ctx := context.Background()
	if err := deps.Store.SyncCatalog(ctx, deps.Engine.Goals(), deps.Engine.Strategies(), deps.Engine.ScoringEngines()); err != nil {
		return nil, fmt.Errorf("watcher: sync goals and strategies: %w", err)
	}
	if cfg.Audits.Now == nil {
		cfg.Audits.Now = cfg.Now
	}
	runner, err := audit.New(cfg.Audits, audit.Deps{Store: deps.Store, Planner: deps.Engine, Models: deps.Models,
		Launcher: deps.Launcher, Registerer: deps.Registerer}, base)
	if err != nil {
		return nil, fmt.Errorf("watcher.audits: %w", err)
	}
	auth, err := newAuthenticator(cfg, deps.Store, deps.Validator, logger)
	if err != nil {
		return nil, err
	}
	a := &API{cfg: cfg, deps: deps, logger: logger, runner: runner, auth: auth,
		requests: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ballast_watcher_request_duration_seconds",
			Help:    "Watcher API requests by route, method and status code.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2.5, 12),
		}, []string{"route", "method", "code"}),
	}
	if deps.Registerer != nil {
		if err := deps.Registerer.Register(a.requests); err != nil {
			return nil, fmt.Errorf("watcher: register metrics: %w", err)
		}
	}
	a.handler = a.routes()
	return a, nil
}

// Runner is the audit runner (exposed for tests and benchmarks).
func (a *API) Runner() *audit.Runner { return a.runner }

// Run runs the audit runner, the service heartbeats and, if configured,
// the API's own listener, until ctx is done.
func (a *API) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return a.runner.Run(ctx) })
	g.Go(func() error { a.heartbeat(ctx); return nil })
	if a.cfg.ListenAddress != "" {
		ln, err := net.Listen("tcp", a.cfg.ListenAddress)
		if err != nil {
			return fmt.Errorf("watcher.listen_address: %w", err)
		}
		srv := &http.Server{Handler: a, ReadHeaderTimeout: 10 * time.Second,
			ErrorLog: slog.NewLogLogger(a.logger.Handler(), slog.LevelWarn)}
		a.logger.Info("Serving the Watcher API", "address", ln.Addr().String())
		g.Go(func() error {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		})
		g.Go(func() error {
			<-ctx.Done()
			sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			return srv.Shutdown(sctx)
		})
	}
	return g.Wait()
}

// Service names, Watcher's.
const (
	serviceDecisionEngine = "watcher-decision-engine"
	serviceApplier        = "watcher-applier"
)

func (a *API) heartbeat(ctx context.Context) {
	beat := func() {
		names := []string{serviceDecisionEngine}
		if a.deps.Launcher != nil {
			names = append(names, serviceApplier)
		}
		for _, n := range names {
			if err := a.deps.Store.Heartbeat(ctx, n, a.runner.Hostname()); err != nil && ctx.Err() == nil {
				a.logger.Warn("Cannot record service heartbeat", "service", n, "err", err)
			}
		}
	}
	beat()
	t := time.NewTicker(a.cfg.ServiceHeartbeat)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			beat()
		}
	}
}

// ServeHTTP serves /, /v1 and everything below. As Watcher does, a path
// whose first segment is not v1 is served as if under /v1 (/audits is
// /v1/audits), which is what Watcher's bookmark links rely on; a trailing
// slash is ignored (watcherclient sends /v1/actions/?action_plan_uuid=).
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	if len(p) > 1 {
		p = strings.TrimRight(p, "/")
		if p == "" {
			p = "/"
		}
	}
	if p != "/" && p != "/v1" && !strings.HasPrefix(p, "/v1/") {
		p = "/v1" + p
	}
	if p != r.URL.Path {
		r2 := r.Clone(r.Context())
		r2.URL.Path, r2.URL.RawPath = p, ""
		r = r2
	}
	// Routing restarts here: a parent chi router (web.New mounts the API
	// at /) must not leave its route context to ours.
	r = r.WithContext(context.WithValue(r.Context(), chi.RouteCtxKey, chi.NewRouteContext()))
	a.handler.ServeHTTP(w, r)
}
