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
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
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

// Exclusive holds a lock on the shared component identified by key (for
// example the libvirt hosts' URI) until the test ends. go test runs packages
// in parallel processes; tests that change a shared component (restart a
// daemon, evacuate a host) take it so they never see each other's guests or
// restarts. The lock is an flock on a file in the temporary directory, so
// it is released when the process dies.
func Exclusive(t testing.TB, key string) {
	t.Helper()
	sum := sha256.Sum256([]byte(key))
	path := filepath.Join(os.TempDir(), "ballast-test-"+hex.EncodeToString(sum[:8])+".lock")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatalf("lock %s: %v", key, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		_ = f.Close()
		t.Fatalf("lock %s: %v", key, err)
	}
	t.Cleanup(func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		_ = f.Close()
	})
}
