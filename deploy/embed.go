// Package deploy holds what Ballast ships besides the binary: systemd units,
// Kubernetes manifests, compose files, Grafana dashboards, and the default
// alerting rules and their runbooks, which it also builds into the binary.
package deploy

import (
	"embed"
	"io/fs"
)

// Rules is the built-in rule file (rules/ballast.rules.yml), loaded by the
// server unless rules.builtin is false.
//
//go:embed rules/ballast.rules.yml
var Rules []byte

//go:embed runbooks/*.md
var runbooks embed.FS

// Runbooks holds one <AlertName>.md per built-in alert (and README.md), as
// served at /runbooks/.
var Runbooks = mustSub(runbooks, "runbooks")

func mustSub(f fs.FS, dir string) fs.FS {
	s, err := fs.Sub(f, dir)
	if err != nil {
		panic(err) // only on a bad constant path
	}
	return s
}
