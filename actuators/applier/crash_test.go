package applier_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ballast-cloud/ballast/actuators"
	"github.com/ballast-cloud/ballast/actuators/applier"
	"github.com/ballast-cloud/ballast/actuators/memstate"
	"github.com/ballast-cloud/ballast/actuators/nop"
	"github.com/ballast-cloud/ballast/actuators/sleep"
	"github.com/ballast-cloud/ballast/decision/action"
)

// crashChildEnv, set to a directory, makes the test binary an applier
// process: it resumes the plans journaled in the directory and exits when
// they end (TestMain).
const crashChildEnv = "BALLAST_APPLIER_CRASH_CHILD"

// counting is the real sleep actuator that first appends the action's ID to
// a file, the way a migration changes the infrastructure before it takes
// its time. The file outlives the process; Reconcile reads it.
type counting struct {
	*sleep.Sleep
	path string
}

func (c counting) Execute(ctx context.Context, a action.Action, progress func(float64)) error {
	f, err := os.OpenFile(c.path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	_, err = f.WriteString(a.ID + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return c.Sleep.Execute(ctx, a, progress)
}

func (c counting) Reconcile(_ context.Context, a action.Action) (bool, error) {
	n, err := executions(c.path)
	return n[a.ID] > 0, err
}

// executions counts the lines of the counter file by action ID.
func executions(path string) (map[string]int, error) {
	out := map[string]int{}
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return out, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		out[sc.Text()]++
	}
	return out, sc.Err()
}

func crashChild() int {
	dir := os.Getenv(crashChildEnv)
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	fail := func(err error) int {
		logger.Error("Crash child", "err", err)
		return 2
	}
	store, err := memstate.Open(filepath.Join(dir, "journal"))
	if err != nil {
		return fail(err)
	}
	defer store.Close()
	sl, err := sleep.New(sleep.Config{}, logger)
	if err != nil {
		return fail(err)
	}
	n, err := nop.New(nop.Config{}, logger)
	if err != nil {
		return fail(err)
	}
	reg := actuators.Registry{action.Sleep: counting{Sleep: sl, path: filepath.Join(dir, "executions")}, action.Nop: n}
	ap, err := applier.New(applier.Config{}, applier.Deps{Store: store, Loader: store, Actuators: reg}, logger)
	if err != nil {
		return fail(err)
	}
	defer ap.Stop()
	exs, err := ap.Resume(context.Background())
	if err != nil {
		return fail(err)
	}
	for _, ex := range exs {
		<-ex.Done()
		if res := ex.Result(); res.State == "" {
			return fail(fmt.Errorf("plan %s: %w", ex.PlanID, res.Err))
		}
	}
	return 0
}

// TestCrashSafety applies a plan in a child process, SIGKILLs it three
// times while actions run, restarts it each time, and checks with the
// execution counter the actuator keeps outside the process that no action
// ran twice, that every action's state matches what really happened, and
// that the plan completes.
func TestCrashSafety(t *testing.T) {
	dir := t.TempDir()
	var acts []action.Action
	edges := map[int][]int{}
	for i := range 18 {
		acts = append(acts, action.NewSleep(0.2))
		if i >= 3 {
			edges[i] = []int{i - 3} // three chains of six
		}
	}
	acts = append(acts, action.NewNop("end"))
	edges[len(acts)-1] = []int{15, 16, 17}
	p := plan("crash", [2]int{1, 3}, acts, edges)
	store, err := memstate.Open(filepath.Join(dir, "journal"))
	require.NoError(t, err)
	require.NoError(t, store.Add(p))
	require.NoError(t, store.Close())

	counter := filepath.Join(dir, "executions")
	lines := func() int {
		n, err := executions(counter)
		require.NoError(t, err)
		total := 0
		for _, c := range n {
			total += c
		}
		return total
	}
	child := func() *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+dir)
		cmd.Stderr = &strings.Builder{}
		return cmd
	}
	for kill := 1; kill <= 3; kill++ {
		cmd := child()
		require.NoError(t, cmd.Start())
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		target := 4 * kill
		deadline := time.After(time.Minute)
	wait:
		for lines() < target {
			select {
			case err := <-exited:
				t.Fatalf("child exited before kill %d: %v\n%s", kill, err, cmd.Stderr)
			case <-deadline:
				t.Fatalf("child did not reach %d executions", target)
			case <-time.After(2 * time.Millisecond):
				continue wait
			}
		}
		require.NoError(t, cmd.Process.Kill()) // SIGKILL: no cleanup at all
		<-exited
	}
	cmd := child()
	cmd.Stderr = nil
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "final run:\n%s", out)

	store, err = memstate.Open(filepath.Join(dir, "journal"))
	require.NoError(t, err)
	defer store.Close()
	final, msg, err := store.Plan("crash")
	require.NoError(t, err)
	n, err := executions(counter)
	require.NoError(t, err)
	failed := 0
	for _, a := range final.Actions {
		if a.Type != action.Sleep {
			continue
		}
		require.LessOrEqual(t, n[a.ID], 1, "action %s executed %d times", a.ID, n[a.ID])
		switch a.State {
		case actuators.StateSucceeded:
			require.Equal(t, 1, n[a.ID], "action %s SUCCEEDED without executing", a.ID)
		case actuators.StateFailed:
			failed++
			require.Zero(t, n[a.ID], "action %s FAILED though it executed", a.ID)
		default:
			t.Fatalf("action %s ended %s", a.ID, a.State)
		}
	}
	if failed == 0 {
		require.Equal(t, actuators.StateSucceeded, final.State, msg)
	} else {
		require.Equal(t, actuators.StateFailed, final.State, msg)
	}
	require.Empty(t, ongoingTwice(store), "an action went ONGOING twice")
	reconciled := 0
	for _, tr := range store.History() {
		if tr.Kind == "action" && tr.From == actuators.StateOngoing && strings.HasPrefix(tr.Message, "The applier restarted") {
			reconciled++
		}
	}
	require.GreaterOrEqual(t, reconciled, 1, "no kill landed while an action ran")
	t.Logf("plan %s after 3 kills: %d actions reconciled, %d failed, executions %d", final.State, reconciled, failed, lines())
}
