package watcher

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// PatchOp is one RFC 6902 operation of the subset Watcher accepts: add,
// replace and remove.
type PatchOp struct {
	Op   string
	Path string
	// Value is the raw JSON value; HasValue tells an absent value from
	// null.
	Value    json.RawMessage
	HasValue bool
}

// patchPath is WSME's pattern for a patch path (Python's \w is Unicode
// letters, digits and underscore).
var patchPath = regexp.MustCompile(`^(/[\p{L}\p{N}_-]+)+$`)

// maxPatchOps bounds a patch document; Watcher's resources have fewer than
// twenty fields.
const maxPatchOps = 256

// ParsePatch reads a JSON-patch document and checks each operation's
// shape as WSME's JsonPatchType does. Errors are Watcher's 400 messages.
func ParsePatch(body []byte) ([]PatchOp, error) {
	var raw []map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&raw); err != nil {
		return nil, badRequest("Invalid JSON-patch document: want a list of {\"op\", \"path\", \"value\"} objects: %s", jsonErr(err))
	}
	if dec.More() {
		return nil, badRequest("Invalid JSON-patch document: unexpected data after the list")
	}
	if raw == nil {
		return nil, badRequest("Invalid JSON-patch document: want a list of {\"op\", \"path\", \"value\"} objects")
	}
	if len(raw) > maxPatchOps {
		return nil, badRequest("Invalid JSON-patch document: %d operations, at most %d are accepted", len(raw), maxPatchOps)
	}
	ops := make([]PatchOp, 0, len(raw))
	for _, m := range raw {
		if m == nil {
			return nil, badRequest("Invalid JSON-patch document: each operation must be an object")
		}
		for k := range m {
			if k != "op" && k != "path" && k != "value" {
				return nil, badRequest("Unknown attribute for argument patch: %s", k)
			}
		}
		var op PatchOp
		for _, f := range []struct {
			name string
			dst  *string
		}{{"path", &op.Path}, {"op", &op.Op}} {
			v, ok := m[f.name]
			if !ok || string(v) == "null" {
				return nil, badRequest("Invalid input for field/attribute %s. Value: 'None'. Mandatory field missing.", f.name)
			}
			if err := json.Unmarshal(v, f.dst); err != nil {
				return nil, badRequest("Invalid input for field/attribute %s. Value: '%s'. Wrong type. Expected a string",
					f.name, truncate(string(v)))
			}
		}
		if !patchPath.MatchString(op.Path) {
			return nil, badRequest(`Invalid input for field/attribute path. Value: '%s'. Value should match the pattern ^(/[\w-]+)+$`,
				truncate(op.Path))
		}
		switch op.Op {
		case "add", "replace", "remove":
		default:
			return nil, badRequest("Invalid input for field/attribute op. Value: '%s'. Value should be one of: add, remove, replace",
				truncate(op.Op))
		}
		if v, ok := m["value"]; ok {
			op.Value, op.HasValue = v, true
		}
		ops = append(ops, op)
	}
	return ops, nil
}

func truncate(s string) string {
	if len(s) > 200 {
		return s[:200] + "..."
	}
	return s
}

func jsonErr(err error) string {
	return strings.TrimPrefix(err.Error(), "json: ")
}

// patchRules are a resource's JsonPatchType: attributes that can never be
// patched, those that cannot be removed, and (when set) the only ones that
// can be patched.
type patchRules struct {
	internal  []string
	mandatory []string
	allowed   []string
	// watcherAllowed says allowed is Watcher's own list (actions), checked
	// before the internal attributes as Watcher does; otherwise allowed is
	// Ballast's narrowing of what Watcher would let through (it saves any
	// field of the object), checked after.
	watcherAllowed bool
}

// baseInternal are Watcher's global internal attributes.
var baseInternal = []string{"/created_at", "/id", "/links", "/updated_at", "/deleted_at", "/uuid"}

// check is JsonPatchType.validate for one operation.
func (r patchRules) check(op PatchOp) error {
	top := "/" + strings.SplitN(op.Path, "/", 3)[1]
	notAllowed := len(r.allowed) > 0 && !slices.Contains(r.allowed, top)
	if notAllowed && r.watcherAllowed {
		return badRequest("'%s' is not an allowed attribute and can not be updated", op.Path)
	}
	if slices.Contains(baseInternal, top) || slices.Contains(r.internal, top) {
		return badRequest("'%s' is an internal attribute and can not be updated", op.Path)
	}
	if notAllowed {
		return badRequest("'%s' is not an allowed attribute and can not be updated", op.Path)
	}
	if op.Op == "remove" && slices.Contains(r.mandatory, op.Path) {
		return badRequest("'%s' is a mandatory attribute and can not be removed", op.Path)
	}
	if op.Op != "remove" && !op.HasValue {
		return badRequest("'add' and 'replace' operations needs value")
	}
	return nil
}

// patchString renders a patch as Watcher's PatchError shows it.
func patchString(ops []PatchOp) string {
	parts := make([]string, len(ops))
	for i, op := range ops {
		s := fmt.Sprintf("{'op': '%s', 'path': '%s'", op.Op, op.Path)
		if op.HasValue {
			s += ", 'value': " + truncate(string(op.Value))
		}
		parts[i] = s + "}"
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// patchError is Watcher's PatchError.
func patchError(ops []PatchOp, reason string) *apiError {
	return badRequest("Couldn't apply patch '%s'. Reason: %s", patchString(ops), reason)
}

// ApplyPatch applies ops to a copy of doc (a resource as a JSON object) as
// python-jsonpatch does, after Watcher's rule that add may not create a
// new root attribute. doc is not modified.
func ApplyPatch(doc map[string]any, ops []PatchOp) (map[string]any, error) {
	var root any = deepCopy(doc)
	for _, op := range ops {
		segs := strings.Split(op.Path, "/")[1:]
		if op.Op == "add" && len(segs) == 1 {
			if _, ok := root.(map[string]any)[segs[0]]; !ok {
				return nil, badRequest("Adding a new attribute (%s) to the root of  the resource is not allowed", op.Path)
			}
		}
		var val any
		if op.HasValue {
			if err := json.Unmarshal(op.Value, &val); err != nil {
				return nil, patchError(ops, "value is not JSON: "+jsonErr(err))
			}
		}
		var err error
		root, err = applyOne(root, segs, op.Op, val)
		if err != nil {
			return nil, patchError(ops, err.Error())
		}
	}
	return root.(map[string]any), nil
}

func applyOne(node any, segs []string, op string, val any) (any, error) {
	key := segs[0]
	last := len(segs) == 1
	switch n := node.(type) {
	case map[string]any:
		child, ok := n[key]
		if last {
			switch op {
			case "add":
				n[key] = val
			case "replace":
				if !ok {
					return nil, fmt.Errorf("can't replace a non-existent object '%s'", key)
				}
				n[key] = val
			case "remove":
				if !ok {
					return nil, fmt.Errorf("can't remove a non-existent object '%s'", key)
				}
				delete(n, key)
			}
			return n, nil
		}
		if !ok {
			return nil, fmt.Errorf("member '%s' not found in %s", key, short(n))
		}
		c, err := applyOne(child, segs[1:], op, val)
		if err != nil {
			return nil, err
		}
		n[key] = c
		return n, nil
	case []any:
		if last && op == "add" && key == "-" {
			return append(n, val), nil
		}
		i, err := strconv.Atoi(key)
		if err != nil || i < 0 || strconv.Itoa(i) != key {
			return nil, fmt.Errorf("'%s' is not a valid sequence index", key)
		}
		if last {
			switch op {
			case "add":
				if i > len(n) {
					return nil, fmt.Errorf("can't insert outside of list")
				}
				n = append(n, nil)
				copy(n[i+1:], n[i:])
				n[i] = val
				return n, nil
			case "replace":
				if i >= len(n) {
					return nil, fmt.Errorf("can't replace outside of list")
				}
				n[i] = val
				return n, nil
			default:
				if i >= len(n) {
					return nil, fmt.Errorf("can't remove a non-existent object '%s'", key)
				}
				return append(n[:i], n[i+1:]...), nil
			}
		}
		if i >= len(n) {
			return nil, fmt.Errorf("index '%d' is out of bounds", i)
		}
		c, err := applyOne(n[i], segs[1:], op, val)
		if err != nil {
			return nil, err
		}
		n[i] = c
		return n, nil
	}
	return nil, fmt.Errorf("cannot address '%s' inside a %s", key, kindOf(node))
}

func short(v any) string {
	b, _ := json.Marshal(v)
	return truncate(string(b))
}

func kindOf(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "string"
	case float64, json.Number:
		return "number"
	case bool:
		return "boolean"
	}
	return fmt.Sprintf("%T", v)
}

// deepCopy copies JSON-shaped values.
func deepCopy(v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = deepCopy(e)
		}
		return m
	case []any:
		l := make([]any, len(x))
		for i, e := range x {
			l[i] = deepCopy(e)
		}
		return l
	}
	return v
}
