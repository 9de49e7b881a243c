package nop_test

import (
	"bytes"
	"context"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ballast-cloud/ballast/actuators/nop"
	"github.com/ballast-cloud/ballast/decision/action"
)

func TestNop(t *testing.T) {
	var logs bytes.Buffer
	n, err := nop.New(nop.Config{}, slog.New(slog.NewTextHandler(&logs, nil)))
	require.NoError(t, err)
	a := action.NewNop("hello from the plan")
	require.NoError(t, n.Precondition(context.Background(), a))
	require.NoError(t, n.Execute(context.Background(), a, func(float64) {}))
	require.Contains(t, logs.String(), `msg="Nop action"`)
	require.Contains(t, logs.String(), `message="hello from the plan"`)
	require.Contains(t, logs.String(), "component=actuators/nop")
	done, err := n.Reconcile(context.Background(), a)
	require.NoError(t, err)
	require.True(t, done)
}
