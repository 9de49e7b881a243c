package action

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestConstructorsValidate(t *testing.T) {
	for _, a := range []Action{
		NewMigrate(MigrateParams{Live: true, Source: "a", Destination: "b", InstanceID: "u"}, false),
		NewMigrate(MigrateParams{Source: "a", InstanceID: "u"}, true),
		NewServiceState("id", "h", false, "watcher_disabled"),
		NewPowerState("", "h", true),
		NewHostState("", "h", "maintenance", "x"),
		NewNop("hi"),
		NewSleep(2),
		NewUpmap("1.a", []UpmapPair{{From: 1, To: 2}}, nil),
		NewReweight(3, 0.9, 1),
	} {
		require.NoError(t, Validate(&a), a.Type)
		require.NotEmpty(t, a.Description)
		// The JSON form is what the API and applier receive.
		b, err := json.Marshal(a)
		require.NoError(t, err)
		var back Action
		require.NoError(t, json.Unmarshal(b, &back))
		require.NoError(t, Validate(&back), "after JSON round trip: %s", b)
	}
}

func TestMigrateShape(t *testing.T) {
	a := NewMigrate(MigrateParams{Live: true, Source: "a", Destination: "b", InstanceID: "u", InstanceName: "vm"}, false)
	require.Equal(t, map[string]any{"migration_type": "live", "source_node": "a", "destination_node": "b",
		"resource_id": "u", "resource_name": "vm"}, a.InputParameters)
	require.Equal(t, []string{"a", "b"}, a.Hosts())
	s := NewServiceState("node-uuid", "h1", false, "watcher_disabled")
	require.Equal(t, map[string]any{"state": "disabled", "resource_id": "node-uuid", "resource_name": "h1",
		"disabled_reason": "watcher_disabled"}, s.InputParameters)
}

func TestValidateRejects(t *testing.T) {
	for _, tc := range []struct {
		a    Action
		want string
	}{
		{Action{Type: "explode"}, `action_type "explode" is not one of`},
		{Action{Type: Migrate, InputParameters: map[string]any{"migration_type": "warp", "source_node": "a", "resource_id": "u"}}, `migration_type "warp" is not one of [live cold]`},
		{Action{Type: Migrate, InputParameters: map[string]any{"migration_type": "live", "resource_id": "u"}}, "source_node is required"},
		{Action{Type: Sleep, InputParameters: map[string]any{"duration": -1.0}}, "must not be negative"},
		{Action{Type: Sleep, InputParameters: map[string]any{"duration": "x"}}, "must be a number"},
		{Action{Type: CephReweight, InputParameters: map[string]any{"osd_id": 1.0, "weight": 2.0}}, "within [0, 1]"},
		{Action{Type: CephUpmap, InputParameters: map[string]any{"pgid": "1.0", "mappings": []any{map[string]any{"from": 1.0, "to": 1.0}}}}, "must be distinct"},
		{Action{Type: ChangeNovaServiceState, InputParameters: map[string]any{"state": "on", "resource_name": "h"}}, `state "on" is not one of [enabled disabled]`},
	} {
		require.ErrorContains(t, Validate(&tc.a), tc.want)
	}
}
