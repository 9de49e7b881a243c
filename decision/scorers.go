package decision

import (
	"github.com/ballast-cloud/ballast/decision/scoring"
)

// builtinScorers is the one place scoring engines are registered.
func builtinScorers() (*scoring.Registry, error) {
	r := scoring.NewRegistry()
	wr, err := scoring.NewWeightedResource(nil, 0)
	if err != nil {
		return nil, err
	}
	mc, err := scoring.NewMigrationCost(scoring.MigrationCost{})
	if err != nil {
		return nil, err
	}
	for _, e := range []scoring.Engine{wr, mc} {
		if err := r.Register(e); err != nil {
			return nil, err
		}
	}
	return r, nil
}
