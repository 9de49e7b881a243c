package actuators

import (
	"encoding/json"
	"fmt"
	"math"

	"github.com/ballast-cloud/ballast/decision/action"
)

// The helpers below read input_parameters whichever way they were built: by
// the decision engine (Go ints and floats) or decoded from the API's JSON
// (float64, json.Number). Their errors name the parameter.

// StringParam returns the non-empty string parameter name.
func StringParam(a action.Action, name string) (string, error) {
	v, ok := a.InputParameters[name]
	if !ok {
		return "", fmt.Errorf("%s: input_parameters.%s is required", a.Type, name)
	}
	s, ok := v.(string)
	if !ok || s == "" {
		return "", fmt.Errorf("%s: input_parameters.%s must be a non-empty string", a.Type, name)
	}
	return s, nil
}

// FloatParam returns the finite number parameter name.
func FloatParam(a action.Action, name string) (float64, error) {
	v, ok := a.InputParameters[name]
	if !ok {
		return 0, fmt.Errorf("%s: input_parameters.%s is required", a.Type, name)
	}
	var f float64
	switch x := v.(type) {
	case float64:
		f = x
	case float32:
		f = float64(x)
	case int:
		f = float64(x)
	case int64:
		f = float64(x)
	case int32:
		f = float64(x)
	case json.Number:
		var err error
		if f, err = x.Float64(); err != nil {
			return 0, fmt.Errorf("%s: input_parameters.%s %q is not a number", a.Type, name, x)
		}
	default:
		return 0, fmt.Errorf("%s: input_parameters.%s must be a number, not %T", a.Type, name, v)
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("%s: input_parameters.%s must be a finite number", a.Type, name)
	}
	return f, nil
}

// IntParam returns the integer parameter name (an integral float is
// accepted, as JSON decodes every number to float64).
func IntParam(a action.Action, name string) (int, error) {
	f, err := FloatParam(a, name)
	if err != nil {
		return 0, err
	}
	if f != math.Trunc(f) || math.Abs(f) > 1<<31 {
		return 0, fmt.Errorf("%s: input_parameters.%s %v must be an integer", a.Type, name, f)
	}
	return int(f), nil
}
