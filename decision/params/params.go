// Package params describes, validates and defaults strategy parameters with
// the JSON-Schema (draft-4) subset Watcher publishes as a strategy's
// parameters_spec: object properties of type number, integer, string,
// boolean, array and object, with default, minimum, maximum, enum and items.
//
// A strategy declares a Schema; Apply checks user parameters against it,
// fills in defaults and returns errors that name the parameter and say what
// would be accepted. Coerce turns command-line strings into the declared
// types. The package knows nothing of any strategy.
package params

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Property is one parameter's schema.
type Property struct {
	// Type is number, integer, string, boolean, array or object.
	Type        string    `json:"type"`
	Description string    `json:"description,omitempty"`
	Default     any       `json:"default,omitempty"`
	Minimum     *float64  `json:"minimum,omitempty"`
	Maximum     *float64  `json:"maximum,omitempty"`
	Enum        []any     `json:"enum,omitempty"`
	Items       *Property `json:"items,omitempty"`
	// Properties and AdditionalProperties describe objects.
	Properties           map[string]*Property `json:"properties,omitempty"`
	AdditionalProperties *Property            `json:"additionalProperties,omitempty"`
	Required             []string             `json:"required,omitempty"`
}

// Schema is a strategy's parameters_spec: an object with properties.
type Schema struct {
	Properties map[string]*Property
	// Required parameters have no default and must be given.
	Required []string
}

// Float returns a pointer for Minimum and Maximum.
func Float(v float64) *float64 { return &v }

// MarshalJSON renders the draft-4 object Watcher clients expect.
func (s Schema) MarshalJSON() ([]byte, error) {
	out := map[string]any{"type": "object", "properties": s.Properties, "additionalProperties": false}
	if s.Properties == nil {
		out["properties"] = map[string]*Property{}
	}
	if len(s.Required) > 0 {
		out["required"] = s.Required
	}
	return json.Marshal(out)
}

// Defaults returns every default value, deep-copied.
func (s Schema) Defaults() map[string]any {
	out := map[string]any{}
	for name, p := range s.Properties {
		if p.Default != nil {
			out[name] = deepCopy(p.Default)
		}
	}
	return out
}

func deepCopy(v any) any {
	b, err := json.Marshal(v)
	if err != nil {
		return v
	}
	var out any
	if json.Unmarshal(b, &out) != nil {
		return v
	}
	return out
}

// Apply validates raw against the schema and returns the parameters with
// defaults filled in. Unknown parameters are rejected, naming those that are
// accepted.
func (s Schema) Apply(raw map[string]any) (map[string]any, error) {
	out := s.Defaults()
	names := make([]string, 0, len(raw))
	for k := range raw {
		names = append(names, k)
	}
	sort.Strings(names)
	var errs []error
	for _, name := range names {
		p, ok := s.Properties[name]
		if !ok {
			errs = append(errs, fmt.Errorf("parameter %q is not accepted (accepted: %s)", name, strings.Join(s.names(), ", ")))
			continue
		}
		v, err := p.check(name, normalize(raw[name]))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out[name] = v
	}
	for _, name := range s.Required {
		if _, ok := out[name]; !ok {
			errs = append(errs, fmt.Errorf("parameter %q is required", name))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

func (s Schema) names() []string {
	out := make([]string, 0, len(s.Properties))
	for k := range s.Properties {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// normalize maps Go numeric types onto float64, as JSON decoding does.
func normalize(v any) any {
	switch x := v.(type) {
	case int:
		return float64(x)
	case int32:
		return float64(x)
	case int64:
		return float64(x)
	case float32:
		return float64(x)
	case json.Number:
		f, err := x.Float64()
		if err == nil {
			return f
		}
	case []any:
		out := make([]any, len(x))
		for i := range x {
			out[i] = normalize(x[i])
		}
		return out
	case []string:
		out := make([]any, len(x))
		for i := range x {
			out[i] = x[i]
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = normalize(e)
		}
		return out
	}
	return v
}

func (p *Property) check(path string, v any) (any, error) {
	switch p.Type {
	case "number", "integer":
		f, ok := v.(float64)
		if !ok {
			return nil, fmt.Errorf("parameter %q: %v is not a %s", path, v, p.Type)
		}
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, fmt.Errorf("parameter %q: %v is not a finite number", path, v)
		}
		if p.Type == "integer" && f != math.Trunc(f) {
			return nil, fmt.Errorf("parameter %q: %v is not an integer", path, v)
		}
		if p.Minimum != nil && f < *p.Minimum {
			return nil, fmt.Errorf("parameter %q: %v is below the minimum %v", path, v, *p.Minimum)
		}
		if p.Maximum != nil && f > *p.Maximum {
			return nil, fmt.Errorf("parameter %q: %v is above the maximum %v", path, v, *p.Maximum)
		}
	case "string":
		if _, ok := v.(string); !ok {
			return nil, fmt.Errorf("parameter %q: %v is not a string", path, v)
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			return nil, fmt.Errorf("parameter %q: %v is not a boolean", path, v)
		}
	case "array":
		a, ok := v.([]any)
		if !ok {
			return nil, fmt.Errorf("parameter %q: %v is not an array", path, v)
		}
		if p.Items != nil {
			for i := range a {
				x, err := p.Items.check(fmt.Sprintf("%s[%d]", path, i), a[i])
				if err != nil {
					return nil, err
				}
				a[i] = x
			}
		}
	case "object":
		m, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("parameter %q: %v is not an object", path, v)
		}
		for _, r := range p.Required {
			if _, ok := m[r]; !ok {
				return nil, fmt.Errorf("parameter %q: field %q is required", path, r)
			}
		}
		for k, e := range m {
			sub := p.Properties[k]
			if sub == nil {
				sub = p.AdditionalProperties
			}
			if sub == nil {
				if p.Properties != nil {
					return nil, fmt.Errorf("parameter %q: field %q is not accepted", path, k)
				}
				continue
			}
			x, err := sub.check(path+"."+k, e)
			if err != nil {
				return nil, err
			}
			m[k] = x
		}
	default:
		return nil, fmt.Errorf("parameter %q: schema type %q is not supported", path, p.Type)
	}
	if len(p.Enum) > 0 && !slices.ContainsFunc(p.Enum, func(e any) bool { return equal(normalize(e), v) }) {
		return nil, fmt.Errorf("parameter %q: %v is not one of %v", path, v, p.Enum)
	}
	return v, nil
}

func equal(a, b any) bool {
	x, err1 := json.Marshal(a)
	y, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && string(x) == string(y)
}

// Coerce converts a command-line value to the parameter's declared type:
// numbers and booleans are parsed, arrays and objects are read as JSON, and
// a string stays a string. Unknown names are returned as JSON if they parse,
// else as strings, for Apply to reject with the accepted list.
func (s Schema) Coerce(name, value string) (any, error) {
	p := s.Properties[name]
	if p == nil {
		var v any
		if json.Unmarshal([]byte(value), &v) == nil {
			return v, nil
		}
		return value, nil
	}
	switch p.Type {
	case "number", "integer":
		f, err := strconv.ParseFloat(value, 64)
		if err != nil {
			return nil, fmt.Errorf("parameter %q: %q is not a %s", name, value, p.Type)
		}
		return f, nil
	case "boolean":
		b, err := strconv.ParseBool(value)
		if err != nil {
			return nil, fmt.Errorf("parameter %q: %q is not a boolean (true or false)", name, value)
		}
		return b, nil
	case "array", "object":
		var v any
		if err := json.Unmarshal([]byte(value), &v); err != nil {
			if p.Type == "array" && !strings.HasPrefix(strings.TrimSpace(value), "[") {
				// a,b,c as a list of strings
				parts := strings.Split(value, ",")
				out := make([]any, len(parts))
				for i, x := range parts {
					out[i] = strings.TrimSpace(x)
				}
				return out, nil
			}
			return nil, fmt.Errorf("parameter %q: %q is not JSON %s: %v", name, value, p.Type, err)
		}
		return v, nil
	}
	return value, nil
}

// Decode applies raw to the schema and decodes the result into out (a
// pointer to the strategy's parameter struct, with json tags).
func (s Schema) Decode(raw map[string]any, out any) (map[string]any, error) {
	applied, err := s.Apply(raw)
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(applied)
	if err != nil {
		return nil, fmt.Errorf("encode parameters: %w", err)
	}
	if err := json.Unmarshal(b, out); err != nil {
		return nil, fmt.Errorf("decode parameters: %w", err)
	}
	return applied, nil
}
