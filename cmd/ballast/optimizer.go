package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/ballast-cloud/ballast/actuators/applier"
	"github.com/ballast-cloud/ballast/actuators/cephmon"
	"github.com/ballast-cloud/ballast/actuators/setup"
	"github.com/ballast-cloud/ballast/decision"
	"github.com/ballast-cloud/ballast/decision/audit"
	"github.com/ballast-cloud/ballast/decision/collect"
	"github.com/ballast-cloud/ballast/decision/sim"
	"github.com/ballast-cloud/ballast/web/store"
	"github.com/ballast-cloud/ballast/web/watcher"
)

// optimizerConfig is the part of the configuration file for deciding and
// doing: the simulated cluster, the decision engine, the Watcher API with
// its store and audits, and the actuators.
type optimizerConfig struct {
	Simulator simulatorConfig `yaml:"simulator"`
	Decision  decision.Config `yaml:"decision"`
	Collect   collect.Config  `yaml:"model"`
	Watcher   watcher.Config  `yaml:"watcher"`
	Actuators setup.Config    `yaml:"actuators"`
}

// simulatorConfig runs the simulated cluster when enabled: the embedded
// default, and what-if planning without hardware.
type simulatorConfig struct {
	Enabled    bool `yaml:"enabled"`
	sim.Config `yaml:",inline"`
}

// validate fills the defaults that depend on where data lives and checks
// every section, naming the bad field.
func (c *optimizerConfig) validate(dataDir string) error {
	if c.Watcher.Database.Path == "" {
		c.Watcher.Database.Path = filepath.Join(dataDir, "ballast.db")
	}
	if c.Simulator.StateFile == "" {
		// The simulated cluster keeps what plans changed beside the plans
		// themselves, so a restart does not undo applied plans.
		c.Simulator.StateFile = filepath.Join(dataDir, "sim-state.json")
	}
	if c.Watcher.AuthStrategy != "noauth" && c.Watcher.TokensFile == "" {
		c.Watcher.TokensFile = filepath.Join(dataDir, "tokens.yml")
	}
	var errs []error
	if _, err := c.Watcher.WithDefaults(); err != nil {
		errs = append(errs, err)
	}
	if err := c.Actuators.Validate(); err != nil {
		errs = append(errs, err)
	}
	if _, err := decision.New(c.Decision, nil); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// optimizer is the running decision side of the server.
type optimizer struct {
	sim       *sim.Sim
	inventory *collect.EventInventory
	cephMon   *cephmon.Client // reads the Ceph part of the model
	store     *store.Store
	actuators *setup.Actuators
	applier   *applier.Applier
	api       *watcher.API
}

// startOptimizer builds the simulator (when enabled), the decision engine,
// the store, the actuators, the applier and the Watcher API.
func (s *server) startOptimizer() (*optimizer, error) {
	cfg := &s.cfg.Optimizer
	o := &optimizer{}
	logger := s.base
	if cfg.Simulator.Enabled {
		var err error
		if o.sim, err = sim.New(cfg.Simulator.Config, s.bus, logger); err != nil {
			return nil, fmt.Errorf("simulator: %w", err)
		}
	}
	engine, err := decision.New(cfg.Decision, logger)
	if err != nil {
		return nil, err
	}
	var models audit.ModelSource
	if o.sim != nil {
		models = audit.SnapshotModels(o.sim.Snapshot)
	} else {
		// Hosts come from agents' inventory events (Kafka) and, for agents
		// that are only scraped or push with remote_write, from their
		// ballast_inventory_* series.
		o.inventory = collect.NewEventInventory(logger)
		inv := collect.Inventories{o.inventory, &collect.MetricInventory{Querier: s.querier}}
		// OSDs, pools and PGs come from the cluster the Ceph actuators
		// act on, read afresh for every audit.
		if cfg.Actuators.Ceph != nil {
			if o.cephMon, err = cephmon.New(*cfg.Actuators.Ceph, logger); err != nil {
				return nil, fmt.Errorf("actuators.ceph: %w", err)
			}
			inv = append(inv, &collect.CephInventory{Mon: o.cephMon})
		}
		b, err := collect.New(cfg.Collect, collect.Deps{Inventory: inv, Querier: s.querier}, logger)
		if err != nil {
			o.close()
			return nil, fmt.Errorf("model: %w", err)
		}
		models = audit.BuilderModels(b, nil)
	}
	if cfg.Watcher.AuthStrategy != "noauth" {
		if err := ensureTokensFile(cfg.Watcher.TokensFile, s.logger); err != nil {
			o.close()
			return nil, err
		}
	}
	if err := os.MkdirAll(filepath.Dir(cfg.Watcher.Database.Path), 0o755); err != nil {
		o.close()
		return nil, fmt.Errorf("watcher.database.path: %w", err)
	}
	if o.store, err = store.Open(cfg.Watcher.Database, s.bus, logger); err != nil {
		o.close()
		return nil, err
	}
	deps := setup.Deps{Inventory: watcher.NewHostInventory(o.store, models)}
	if o.sim != nil {
		deps.Simulator = o.sim
	}
	if o.actuators, err = setup.New(cfg.Actuators, deps, logger); err != nil {
		o.close()
		return nil, err
	}
	if o.applier, err = applier.New(cfg.Actuators.Applier, applier.Deps{
		Store: o.store, Loader: o.store, Actuators: o.actuators.Registry, Registerer: s.reg,
	}, logger); err != nil {
		o.close()
		return nil, err
	}
	if o.api, err = watcher.New(cfg.Watcher, watcher.Deps{
		Store: o.store, Engine: engine, Models: models,
		Launcher: watcher.ApplierLauncher(o.store, o.applier), Registerer: s.reg,
	}, logger); err != nil {
		o.close()
		return nil, err
	}
	return o, nil
}

// run starts the long-running parts; each returns when ctx ends.
func (o *optimizer) run(ctx context.Context, s *server, goFn func(func() error)) {
	if o.sim != nil {
		goFn(func() error { return o.sim.Run(ctx) })
	}
	if o.inventory != nil {
		goFn(func() error { return o.inventory.Run(ctx, s.bus, "inventory") })
	}
	goFn(func() error { return o.applier.Run(ctx) })
	goFn(func() error { return o.api.Run(ctx) })
}

func (o *optimizer) close() {
	if o.cephMon != nil {
		_ = o.cephMon.Close()
	}
	if o.actuators != nil {
		_ = o.actuators.Close()
	}
	if o.store != nil {
		_ = o.store.Close()
	}
}

// ensureTokensFile creates the tokens file with one admin token when it does
// not exist yet, so a first start is usable at once. The secret is written
// to the file (mode 0600) and never logged.
func ensureTokensFile(path string, logger *slog.Logger) error {
	if _, err := os.Stat(path); err == nil || !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	buf := make([]byte, 24)
	if _, err := rand.Read(buf); err != nil {
		return fmt.Errorf("watcher.tokens_file: %w", err)
	}
	secret := "blst_" + base64.RawURLEncoding.EncodeToString(buf)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("watcher.tokens_file: %w", err)
	}
	content := fmt.Sprintf("# Created by ballast server on first start. Add tokens for people and tools;\n"+
		"# roles: admin, operator, reader. See docs/watcher-api.md.\ntokens:\n  - name: admin\n    role: admin\n    token: %q\n", secret)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		return fmt.Errorf("watcher.tokens_file: %w", err)
	}
	logger.Info("Created the tokens file with an admin token; read the token from the file", "file", path)
	return nil
}
