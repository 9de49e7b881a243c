package kafka

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/ballast-cloud/ballast/collector/bus"
	"github.com/ballast-cloud/ballast/collector/ingest"
	"github.com/ballast-cloud/ballast/collector/kafka/kfaketest"
	"github.com/ballast-cloud/ballast/tsdb"
)

// Environment of the helper processes.
const (
	envArgs    = "BALLAST_KAFKA_TEST_ARGS"    // kfake: flags, one per line
	envBrokers = "BALLAST_KAFKA_TEST_BROKERS" // ingester: comma-separated
	envTSDB    = "BALLAST_KAFKA_TEST_TSDB"    // ingester: data directory
	envGroup   = "BALLAST_KAFKA_TEST_GROUP"   // ingester: consumer group
	envDelay   = "BALLAST_KAFKA_TEST_DELAY"   // ingester: pause per batch, to stretch the stream
)

// runRole runs a helper process: "kfake", a broker persisting to a data
// directory, or "ingester", a miniature `ballast server --role=ingester`
// (Kafka → ingest → TSDB). Both stop cleanly on SIGTERM.
func runRole(role string) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	switch role {
	case "kfake":
		return kfaketest.Main(ctx, strings.Split(os.Getenv(envArgs), "\n"), os.Stdout, os.Stderr)
	case "ingester":
		if err := runIngester(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "ingester:", err)
			return 1
		}
		return 0
	}
	fmt.Fprintln(os.Stderr, "unknown role", role)
	return 2
}

func runIngester(ctx context.Context) error {
	logger := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	st, err := tsdb.Open(tsdb.Config{Path: os.Getenv(envTSDB)}, nil, logger)
	if err != nil {
		return err
	}
	defer st.Close()
	ing, err := ingest.New(ingest.Options{Source: "kafka"}, st, nil, logger)
	if err != nil {
		return err
	}
	b, err := New(fastConfig(strings.Split(os.Getenv(envBrokers), ",")), prometheus.NewRegistry(), logger)
	if err != nil {
		return err
	}
	defer b.Close()
	delay, _ := time.ParseDuration(os.Getenv(envDelay))
	return b.ConsumeSamples(ctx, os.Getenv(envGroup), func(ctx context.Context, batch *bus.SampleBatch) error {
		if delay > 0 {
			time.Sleep(delay)
		}
		return ing.Handle(ctx, batch)
	})
}

// process is a helper process started from this test binary.
type process struct {
	t      *testing.T
	cmd    *exec.Cmd
	stdout *lineBuffer
	stderr *lineBuffer
	exited chan struct{}
	err    error
}

// startProcess runs this test binary as role with the extra environment.
func startProcess(t *testing.T, role string, env ...string) *process {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), roleEnv+"="+role), env...)
	p := &process{t: t, cmd: cmd, stdout: &lineBuffer{}, stderr: &lineBuffer{}, exited: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.stdout, p.stderr
	require.NoError(t, cmd.Start())
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = cmd.Process.Kill()
			<-p.exited
		}
		if t.Failed() {
			t.Logf("%s stderr:\n%s", role, p.stderr.String())
		}
	})
	return p
}

// kill sends SIGKILL: no commit, no flush, no clean TSDB close.
func (p *process) kill() {
	require.NoError(p.t, p.cmd.Process.Signal(syscall.SIGKILL))
	<-p.exited
}

// stop sends SIGTERM and requires a clean exit.
func (p *process) stop() {
	require.NoError(p.t, p.cmd.Process.Signal(syscall.SIGTERM))
	<-p.exited
	require.NoError(p.t, p.err, "stderr:\n%s", p.stderr.String())
}

// lineBuffer collects output written from several goroutines: a process's
// stdout, a logger's lines.
type lineBuffer struct {
	mu sync.Mutex
	sb strings.Builder
}

func (l *lineBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.sb.Write(p)
}

func (l *lineBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.sb.String()
}

// jsonLogs returns the structured log records with message msg.
func jsonLogs(r io.Reader, msg string) []map[string]any {
	var out []map[string]any
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var rec map[string]any
		if json.Unmarshal(sc.Bytes(), &rec) == nil && rec["msg"] == msg {
			out = append(out, rec)
		}
	}
	return out
}
