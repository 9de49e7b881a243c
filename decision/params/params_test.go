package params

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

func schema() Schema {
	return Schema{Properties: map[string]*Property{
		"n":    {Type: "number", Default: 3.2, Minimum: Float(1), Maximum: Float(10)},
		"i":    {Type: "integer", Default: float64(2)},
		"s":    {Type: "string", Default: "x", Enum: []any{"x", "y"}},
		"b":    {Type: "boolean", Default: true},
		"list": {Type: "array", Default: []any{"a"}, Items: &Property{Type: "string"}},
		"obj":  {Type: "object", Default: map[string]any{"k": 1.0}, Properties: map[string]*Property{"k": {Type: "number"}}},
		"req":  {Type: "string"},
	}, Required: []string{"req"}}
}

func TestApply(t *testing.T) {
	got, err := schema().Apply(map[string]any{"req": "r", "i": 5, "list": []string{"p", "q"}})
	require.NoError(t, err)
	require.Equal(t, map[string]any{"n": 3.2, "i": 5.0, "s": "x", "b": true, "list": []any{"p", "q"},
		"obj": map[string]any{"k": 1.0}, "req": "r"}, got)
	for _, tc := range []struct {
		in   map[string]any
		want string
	}{
		{map[string]any{}, `parameter "req" is required`},
		{map[string]any{"req": "r", "n": 11.0}, "above the maximum 10"},
		{map[string]any{"req": "r", "n": "3"}, "is not a number"},
		{map[string]any{"req": "r", "i": 1.5}, "is not an integer"},
		{map[string]any{"req": "r", "s": "z"}, "is not one of [x y]"},
		{map[string]any{"req": "r", "bogus": 1}, `parameter "bogus" is not accepted (accepted: b, i, list, n, obj, req, s)`},
		{map[string]any{"req": "r", "list": []any{1.0}}, `parameter "list[0]": 1 is not a string`},
		{map[string]any{"req": "r", "obj": map[string]any{"z": 1.0}}, `field "z" is not accepted`},
	} {
		_, err := schema().Apply(tc.in)
		require.ErrorContains(t, err, tc.want)
	}
}

func TestDefaultsAreCopies(t *testing.T) {
	s := schema()
	d := s.Defaults()
	d["list"].([]any)[0] = "changed"
	require.Equal(t, []any{"a"}, s.Properties["list"].Default)
}

func TestCoerce(t *testing.T) {
	s := schema()
	for _, tc := range []struct {
		name, in string
		want     any
	}{
		{"n", "4.5", 4.5}, {"b", "false", false}, {"s", "y", "y"},
		{"list", `["a","b"]`, []any{"a", "b"}}, {"list", "a, b", []any{"a", "b"}},
		{"obj", `{"k":2}`, map[string]any{"k": 2.0}}, {"unknown", "7", 7.0},
	} {
		got, err := s.Coerce(tc.name, tc.in)
		require.NoError(t, err)
		require.Equal(t, tc.want, got, tc.name)
	}
	_, err := s.Coerce("n", "abc")
	require.ErrorContains(t, err, `parameter "n": "abc" is not a number`)
	_, err = s.Coerce("b", "maybe")
	require.ErrorContains(t, err, "not a boolean")
}

func TestSchemaJSON(t *testing.T) {
	b, err := json.Marshal(schema())
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m))
	require.Equal(t, "object", m["type"])
	require.Contains(t, m["properties"], "n")
	require.Equal(t, []any{"req"}, m["required"])
}

func TestDecode(t *testing.T) {
	var p struct {
		N   float64 `json:"n"`
		Req string  `json:"req"`
	}
	_, err := schema().Decode(map[string]any{"req": "r"}, &p)
	require.NoError(t, err)
	require.Equal(t, 3.2, p.N)
	require.Equal(t, "r", p.Req)
}
