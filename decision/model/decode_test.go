package model_test

import (
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ballast-cloud/ballast/decision/model"
)

// pathModel is a valid model, indented so that syntax errors have lines.
const pathModel = `{
  "version": 1,
  "timestamp": "2026-11-21T10:00:00Z",
  "hosts": [
    {"name": "h0", "capacity": {"vcpus": 8, "memory_mb": 1024, "disk_gb": 10}, "labels": {"rack": "r1"}},
    {"name": "h1", "capacity": {"vcpus": 8, "memory_mb": 1024, "disk_gb": 10}}
  ],
  "instances": [
    {"uuid": "i0", "host": "h0", "flavor": {"vcpus": 1, "memory_mb": 512, "disk_gb": 1}, "state": "active"},
    {"uuid": "i1", "host": "h1", "flavor": {"vcpus": 1, "memory_mb": 512, "disk_gb": 1}, "state": "active",
     "metadata": {"excluded": false},
     "usage": {"cpu": 0.5, "memory_mb": 100},
     "history": {"cpu": {"start": "2026-11-21T09:00:00Z", "interval_s": 300, "values": [0.3, 0.4]}}}
  ],
  "ceph": {
    "osds": [{"id": 0, "host": "s0", "crush_weight": 1, "reweight": 1, "bytes_used": 0, "bytes_total": 1, "up": true, "in": true},
             {"id": 1, "host": "s1", "crush_weight": 1, "reweight": 1, "bytes_used": 0, "bytes_total": 1, "up": true, "in": true}],
    "pools": [{"id": 1, "name": "rbd", "size": 2, "pg_num": 1}],
    "pgs": [{"pgid": "1.0", "pool": 1, "raw": [0, 1]}]
  }
}`

func TestDecodeErrorPaths(t *testing.T) {
	_, err := model.Decode([]byte(pathModel))
	require.NoError(t, err)
	edit := func(old, new string) string {
		require.Contains(t, pathModel, old)
		return strings.Replace(pathModel, old, new, 1)
	}
	h1 := `{"name": "h1", "capacity": {"vcpus": 8,`
	for _, tc := range []struct{ name, in, want string }{
		{"unknown host field", edit(h1, `{"name": "h1", "capcity": {}, "capacity": {"vcpus": 8,`), `hosts[1]: unknown field "capcity"`},
		{"unknown nested field", edit(h1, `{"name": "h1", "capacity": {"vcpu": 8,`), `hosts[1].capacity: unknown field "vcpu"`},
		{"unknown top-level field", edit(`"hosts": [`, `"hostz": [], "hosts": [`), `unknown field "hostz"`},
		{"string for a whole number", edit(h1, `{"name": "h1", "capacity": {"vcpus": "8",`), "hosts[1].capacity.vcpus: want a whole number, got string"},
		{"fraction for a whole number", edit(h1, `{"name": "h1", "capacity": {"vcpus": 2.5,`), "hosts[1].capacity.vcpus: want a whole number, got 2.5"},
		{"whole number out of range", edit(h1, `{"name": "h1", "capacity": {"vcpus": 1e30,`), "hosts[1].capacity.vcpus: 1e30 is out of range"},
		{"whole number with an exponent", edit(h1, `{"name": "h1", "capacity": {"vcpus": 8e0,`), "hosts[1].capacity.vcpus: want a whole number written without a fraction or exponent, got 8e0"},
		{"number out of range", edit(`"cpu": 0.5`, `"cpu": 1e999`), "instances[1].usage.cpu: 1e999 is out of range"},
		{"string for a number", edit(`"cpu": 0.5`, `"cpu": "50%"`), "instances[1].usage.cpu: want a number, got string"},
		{"string for a boolean", edit(`"excluded": false`, `"excluded": "no"`), "instances[1].metadata.excluded: want true or false, got string"},
		{"number for a string", edit(`"rack": "r1"`, `"rack": 12`), `hosts[0].labels["rack"]: want a string, got 12`},
		{"bad history time", edit(`"start": "2026-11-21T09:00:00Z"`, `"start": "yesterday"`), `instances[1].history["cpu"].start: want a time such as 2026-11-21T10:00:00Z (RFC 3339), got "yesterday"`},
		{"number for a time", edit(`"timestamp": "2026-11-21T10:00:00Z"`, `"timestamp": 5`), "timestamp: want a time such as 2026-11-21T10:00:00Z (RFC 3339), got 5"},
		{"bad history value", edit(`"values": [0.3, 0.4]`, `"values": [0.3, "x"]`), `instances[1].history["cpu"].values[1]: want a number, got string`},
		{"string host", edit(h1, `"h1", {"name": "h9", "capacity": {"vcpus": 8,`), "hosts[1]: want an object, got string"},
		{"object for an array", edit(`"raw": [0, 1]`, `"raw": {}`), "ceph.pgs[0].raw: want an array, got object"},
		{"ceph array element", edit(`"raw": [0, 1]`, `"raw": [0, "1"]`), "ceph.pgs[0].raw[1]: want a whole number, got string"},
		{"version not a number", edit(`"version": 1`, `"version": "1"`), "version: want a whole number, got string"},
		{"version before other errors", edit(`"version": 1`, `"version": 2, "new_field": true`), "version: 2 is not supported (want 1)"},
		{"first problem in document order", edit(h1, `{"name": "h1", "capacity": {"vcpus": "8",`) + " ", "hosts[1].capacity.vcpus"},
		{"not an object", `[1, 2]`, "want a model object, got array"},
		{"null", `null`, "want a model object, got null"},
		{"syntax error", edit(`"version": 1,`, `"version": 1`), "line 3, column 3: invalid character '\"' after object key:value pair"},
		{"truncated", pathModel[:200], "line 6, column 25: unexpected end of input"},
		{"empty", "  \n", "empty input"},
		{"trailing data", pathModel + "\n]", "line 22, column 1: data after the model object"},
		{"no hosts", `{"version": 1, "hosts": [], "instances": []}`, "hosts: at least one host is required"},
		{"hosts missing", `{"version": 1}`, "hosts: at least one host is required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := model.Decode([]byte(tc.in))
			require.Error(t, err)
			require.ErrorContains(t, err, tc.want)
			require.NotContains(t, err.Error(), "Go struct field", "encoding/json's own wording")
		})
	}
}

func TestDecodeErrorFirstInDocumentOrder(t *testing.T) {
	in := strings.Replace(pathModel, `"disk_gb": 10}, "labels"`, `"disk_gb": "x"}, "labels"`, 1)
	in = strings.Replace(in, `"state": "active",`, `"state": "active", "bogus": 1,`, 1)
	_, err := model.Decode([]byte(in))
	require.EqualError(t, err, "hosts[0].capacity.disk_gb: want a whole number, got string")
	var de *model.DecodeError
	require.True(t, errors.As(err, &de))
	require.Equal(t, "hosts[0].capacity.disk_gb", de.Path)
	var ute *json.UnmarshalTypeError
	require.True(t, errors.As(err, &ute), "encoding/json's error stays reachable")
}

// BenchmarkDecode reads the model file named by BALLAST_BENCH_MODEL, e.g.
// one made by 'ballast plan generate --hosts 10000 --vms 200000'.
func BenchmarkDecode(b *testing.B) {
	path := os.Getenv("BALLAST_BENCH_MODEL")
	if path == "" {
		b.Skip("BALLAST_BENCH_MODEL is not set")
	}
	data, err := os.ReadFile(path)
	require.NoError(b, err)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		_, err := model.Decode(data)
		require.NoError(b, err)
	}
}
