package watcher

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestOneComponentPerLine: the API and the audit runner it builds each
// scope the logger they are given, so a line names one component (a
// repeated key is a duplicate key in JSON logs).
func TestOneComponentPerLine(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.oneshot(map[string]any{"para1": 1.0})
	e.stop()
	seen := map[string]bool{}
	for _, line := range strings.Split(e.logs.String(), "\n") {
		for _, c := range []string{"component=web/watcher", "component=decision/audit"} {
			if strings.Contains(line, c) {
				seen[c] = true
				require.Equal(t, 1, strings.Count(line, "component="), "%s", line)
			}
		}
	}
	require.True(t, seen["component=decision/audit"], "the audit runner logged:\n%s", e.logs.String())
}
