package watcher

import (
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseVersion(t *testing.T) {
	for _, c := range []struct {
		in   []string
		want Version
		err  string
	}{
		{nil, Version{1, 0}, ""},
		{[]string{""}, Version{1, 0}, ""},
		{[]string{"infra-optim"}, Version{1, 0}, ""},
		{[]string{"infra-optim 1.4"}, Version{1, 4}, ""},
		{[]string{"  infra-optim   1.5  "}, Version{1, 5}, ""},
		{[]string{"infra-optim Latest"}, Version{1, 7}, ""},
		{[]string{"infra-optim 1"}, Version{1, 0}, ""},
		{[]string{"infra-optim 1.+2"}, Version{1, 2}, ""},
		{[]string{"infra-optim 1._2"}, Version{1, 0}, ""},
		{[]string{"infra-optim 1.0_3"}, Version{1, 3}, ""},
		{[]string{"infra-optim 1.4 beta"}, Version{1, 0}, ""},
		{[]string{"infra-optim 1.3, compute 2.60"}, Version{1, 3}, ""},
		{[]string{"infra-optim 1.3,infra-optim 1.6"}, Version{1, 6}, ""},
		{[]string{"infra-optim 1.6", "infra-optim bogus-but-two words"}, Version{1, 0}, ""},
		{[]string{"infra-optim 0.9"}, Version{}, "Mutually exclusive versions requested. Version 0.9 requested"},
		{[]string{"infra-optim 1.8"}, Version{}, "Version 1.8 was requested"},
		{[]string{"infra-optim 1.99999999999999999999999"}, Version{}, "Version 1.99999999999999999999999 was requested"},
		{[]string{"infra-optim 2"}, Version{}, "Invalid value for OpenStack-API-Version header"},
		{[]string{"infra-optim 1.2.3"}, Version{}, "Invalid value for OpenStack-API-Version header"},
		{[]string{"infra-optim ."}, Version{1, 0}, ""},
	} {
		got, err := ParseVersion(c.in)
		if c.err != "" {
			require.ErrorContains(t, err, c.err, "%q", c.in)
			continue
		}
		require.NoError(t, err, "%q", c.in)
		require.Equal(t, c.want, got, "%q", c.in)
	}
}

func TestApplyPatch(t *testing.T) {
	doc := map[string]any{"name": "a", "parameters": map[string]any{"x": 1.0}, "scope": []any{"p", "q"}, "interval": nil}
	ops := func(s string) []PatchOp {
		o, err := ParsePatch([]byte(s))
		require.NoError(t, err)
		return o
	}
	out, err := ApplyPatch(doc, ops(`[{"op": "replace", "path": "/name", "value": "b"},
		{"op": "add", "path": "/parameters/y", "value": [1, 2]},
		{"op": "remove", "path": "/parameters/x"},
		{"op": "add", "path": "/scope/1", "value": "new"},
		{"op": "add", "path": "/scope/-", "value": "last"},
		{"op": "replace", "path": "/interval", "value": "60"}]`))
	require.NoError(t, err)
	require.Equal(t, map[string]any{"name": "b", "parameters": map[string]any{"y": []any{1.0, 2.0}},
		"scope": []any{"p", "new", "q", "last"}, "interval": "60"}, out)
	require.Equal(t, "a", doc["name"], "the input is not modified")
	require.Equal(t, map[string]any{"x": 1.0}, doc["parameters"])

	for patch, reason := range map[string]string{
		`[{"op": "add", "path": "/colour", "value": 1}]`:           "Adding a new attribute (/colour) to the root of  the resource is not allowed",
		`[{"op": "replace", "path": "/parameters/z", "value": 1}]`: "can't replace a non-existent object 'z'",
		`[{"op": "remove", "path": "/scope/7"}]`:                   "can't remove a non-existent object '7'",
		`[{"op": "add", "path": "/scope/9", "value": 1}]`:          "can't insert outside of list",
		`[{"op": "add", "path": "/name/x", "value": 1}]`:           "cannot address 'x' inside a string",
		`[{"op": "replace", "path": "/scope/01", "value": 1}]`:     "'01' is not a valid sequence index",
	} {
		_, err := ApplyPatch(doc, ops(patch))
		require.ErrorContains(t, err, reason, patch)
	}
}

// FuzzParsePatch feeds arbitrary bodies to the JSON-patch parser and the
// patch engine: they never panic, refuse with a 400, accept only the ops
// and paths Watcher accepts, and never modify their input.
func FuzzParsePatch(f *testing.F) {
	for _, s := range []string{
		`[{"op": "replace", "path": "/state", "value": "CANCELLED"}]`,
		`[{"op": "add", "path": "/parameters/para1", "value": 2.0}, {"op": "remove", "path": "/scope/0"}]`,
		`[{"op": "move", "from": "/a", "path": "/b"}]`,
		`[{"op": "replace", "path": "/scope/-", "value": {"a": [1, 2]}}]`,
		`{"op": "replace"}`, `[]`, `[null]`, `null`, `[{"op": "add", "path": "/ä_1-x", "value": null}]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		ops, err := ParsePatch(body)
		if err != nil {
			var ae *apiError
			if !errors.As(err, &ae) || ae.status != http.StatusBadRequest {
				t.Fatalf("error %v is not a 400", err)
			}
			_ = errorBody(ae)
			return
		}
		rules := auditPatchRules
		for _, op := range ops {
			if op.Op != "add" && op.Op != "replace" && op.Op != "remove" {
				t.Fatalf("op %q accepted", op.Op)
			}
			if !patchPath.MatchString(op.Path) || !strings.HasPrefix(op.Path, "/") {
				t.Fatalf("path %q accepted", op.Path)
			}
			_ = rules.check(op)
		}
		doc := map[string]any{"name": "n", "state": "PENDING", "parameters": map[string]any{"a": 1.0, "b": []any{1.0}},
			"scope": []any{map[string]any{"compute": []any{}}}, "interval": nil}
		orig := deepCopy(doc)
		out, err := ApplyPatch(doc, ops)
		if !reflect.DeepEqual(orig, any(doc)) {
			t.Fatal("ApplyPatch modified its input")
		}
		if err != nil {
			var ae *apiError
			if !errors.As(err, &ae) || ae.status != http.StatusBadRequest {
				t.Fatalf("apply error %v is not a 400", err)
			}
			return
		}
		if _, err := json.Marshal(out); err != nil {
			t.Fatalf("patched document does not encode: %v", err)
		}
	})
}

// FuzzParseVersion feeds arbitrary OpenStack-API-Version headers: the
// result is always a served version or a 406 with Watcher's text.
func FuzzParseVersion(f *testing.F) {
	for _, s := range []string{"infra-optim 1.4", "infra-optim latest", "compute 2.1, infra-optim 1.9", "infra-optim 1.2.3",
		"infra-optim -1.-0", "infra-optim 1_0.0_7", "infra-optim ١.٢", ",,,infra-optim 1.7,", "INFRA-optim 01.007"} {
		f.Add(s, "")
	}
	f.Fuzz(func(t *testing.T, h1, h2 string) {
		v, err := ParseVersion([]string{h1, h2})
		if err == nil {
			if v.Major != 1 || v.Minor < minMinor || v.Minor > maxMinor {
				t.Fatalf("%q %q gave unserved version %v", h1, h2, v)
			}
			return
		}
		var ve *VersionError
		if !errors.As(err, &ve) {
			t.Fatalf("error %v is not a VersionError", err)
		}
		if ve.Msg != "Invalid value for OpenStack-API-Version header" &&
			!strings.HasSuffix(ve.Msg, "The supported version range is: [1.0, 1.7].") {
			t.Fatalf("unexpected message %q", ve.Msg)
		}
		_ = errorBody(pecanError(http.StatusNotAcceptable, ve.Msg))
	})
}
