// Package testenv lets Go tests find the real components the project's
// scripts bring up (a Ceph cluster, libvirt daemons, Debian's Prometheus,
// Alertmanager and python3-watcherclient).
//
// A test asks for a component by the environment variable the scripts export.
// When it is missing the test is skipped with the reason, so `go test ./...`
// works on a bare machine; under `make test` (which starts every component
// and sets BALLAST_REQUIRE_INTEGRATION=1) a missing component fails the test
// instead, so CI can never pass by skipping.
package testenv

import (
	"os"
	"os/exec"
	"testing"
)

// RequireEnv returns the value of the environment variable name, which the
// project's scripts set when component what is up.
func RequireEnv(t testing.TB, name, what string) string {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		missing(t, "%s is not set: %s is not running (start it with the project's scripts, or run make test)", name, what)
	}
	return v
}

// RequireBinary returns the path of the executable file, installed by
// scripts/deps.sh.
func RequireBinary(t testing.TB, file string) string {
	t.Helper()
	p, err := exec.LookPath(file)
	if err != nil {
		missing(t, "%s not found in PATH: install it with scripts/deps.sh", file)
	}
	return p
}

// Strict reports whether missing components fail tests instead of skipping them.
func Strict() bool { return os.Getenv("BALLAST_REQUIRE_INTEGRATION") == "1" }

func missing(t testing.TB, format string, args ...any) {
	t.Helper()
	if Strict() {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}
