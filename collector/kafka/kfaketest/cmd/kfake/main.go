// Command kfake runs a Kafka-protocol test broker (kfaketest.Main) until
// SIGINT or SIGTERM, for restart tests and benchmarks on machines without
// Kafka. Run it with -h for its flags.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/ballast-cloud/ballast/collector/kafka/kfaketest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := kfaketest.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
