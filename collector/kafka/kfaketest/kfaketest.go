// Package kfaketest runs kfake, a Kafka-protocol broker written in Go
// (github.com/twmb/franz-go/pkg/kfake), for tests and benchmarks: in-process
// with Start or New, or as a process of its own with Main (cmd/kfake) so a
// test can stop and restart the broker. With a data directory, a restarted
// broker keeps its topics, records and committed offsets.
//
// It is test tooling: product code must not import it.
package kfaketest

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

// Options configures a broker cluster. Zero values get the defaults noted.
type Options struct {
	// Brokers is the number of brokers (default 1).
	Brokers int
	// Ports fixes the listening ports on 127.0.0.1, one per broker, so
	// clients find a restarted broker at the same address (default: free
	// ports chosen by the kernel).
	Ports []int
	// DataDir enables persistence: state is written there continuously and
	// reloaded on start.
	DataDir string
	// SyncWrites fsyncs every produced batch.
	SyncWrites bool
	// MinSessionTimeout is the shortest consumer-group session accepted
	// (kfake's default is 6s); tests lower it so a killed member's
	// partitions move sooner.
	MinSessionTimeout time.Duration
	// PlainUser and PlainPassword, when set, enable SASL/PLAIN with that
	// superuser.
	PlainUser, PlainPassword string
	// BrokerConfigs are broker-level configs, e.g. message.max.bytes.
	BrokerConfigs map[string]string
}

func (o Options) kfakeOpts() ([]kfake.Opt, error) {
	if o.Brokers <= 0 {
		o.Brokers = 1
	}
	if len(o.Ports) > 0 && len(o.Ports) != o.Brokers {
		return nil, fmt.Errorf("kfaketest: %d ports for %d brokers", len(o.Ports), o.Brokers)
	}
	opts := []kfake.Opt{kfake.NumBrokers(o.Brokers)}
	if len(o.Ports) > 0 {
		opts = append(opts, kfake.Ports(o.Ports...))
	}
	if o.DataDir != "" {
		opts = append(opts, kfake.DataDir(o.DataDir))
	}
	if o.SyncWrites {
		opts = append(opts, kfake.SyncWrites())
	}
	if o.MinSessionTimeout > 0 {
		opts = append(opts, kfake.GroupMinSessionTimeout(o.MinSessionTimeout))
	}
	if o.PlainUser != "" {
		opts = append(opts, kfake.EnableSASL(), kfake.Superuser("PLAIN", o.PlainUser, o.PlainPassword))
	}
	if len(o.BrokerConfigs) > 0 {
		opts = append(opts, kfake.BrokerConfigs(o.BrokerConfigs))
	}
	return opts, nil
}

// Start starts a cluster in this process; Close it when done.
func Start(o Options) (*kfake.Cluster, error) {
	opts, err := o.kfakeOpts()
	if err != nil {
		return nil, err
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, fmt.Errorf("start kfake: %w", err)
	}
	return c, nil
}

// New starts an in-process cluster for the test, closed at its end, and
// returns the broker addresses.
func New(t testing.TB, o Options) []string {
	t.Helper()
	c, err := Start(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()
}

// Main runs a cluster as a process until ctx is done, printing one broker
// address per line on stdout once it listens. Flags:
//
//	-data-dir DIR   persist state in DIR (reloaded on start)
//	-ports P,P,…    listen on these ports of 127.0.0.1 (one per broker)
//	-brokers N      number of brokers (default 1; ignored with -ports)
//	-sync           fsync every produced batch
//	-min-session-timeout D   shortest consumer-group session accepted
//	-c key=value    broker config, repeatable
//
// It returns the exit status: 0 after a clean shutdown, which persists state
// when -data-dir is set; 2 for bad flags; 1 if the cluster fails to start.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("kfake", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		o     Options
		ports string
	)
	configs := configFlag{}
	fs.StringVar(&o.DataDir, "data-dir", "", "persist state in this directory")
	fs.StringVar(&ports, "ports", "", "comma-separated ports on 127.0.0.1, one per broker")
	fs.IntVar(&o.Brokers, "brokers", 1, "number of brokers")
	fs.BoolVar(&o.SyncWrites, "sync", false, "fsync every produced batch")
	fs.DurationVar(&o.MinSessionTimeout, "min-session-timeout", 0, "shortest consumer-group session accepted")
	fs.Var(configs, "c", "broker config key=value (repeatable)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if ports != "" {
		for _, p := range strings.Split(ports, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(p))
			if err != nil || n < 0 || n > 65535 {
				fmt.Fprintf(stderr, "kfake: -ports: %q is not a port number\n", p)
				return 2
			}
			o.Ports = append(o.Ports, n)
		}
		o.Brokers = len(o.Ports)
	}
	if len(configs) > 0 {
		o.BrokerConfigs = configs
	}
	c, err := Start(o)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	for _, a := range c.ListenAddrs() {
		fmt.Fprintln(stdout, a)
	}
	<-ctx.Done()
	c.Close() // persists state with -data-dir
	return 0
}

type configFlag map[string]string

func (f configFlag) String() string { return "" }

func (f configFlag) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return errors.New("want key=value")
	}
	f[k] = v
	return nil
}
