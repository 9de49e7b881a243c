package model

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// DecodeError is a model file that does not decode, with where: Path is a
// JSON path with array indexes (hosts[3].capacity.vcpus), or a line and
// column for a syntax error. Err is encoding/json's or time's own error.
type DecodeError struct {
	Path string
	Msg  string
	Err  error
}

func (e *DecodeError) Error() string {
	if e.Path == "" {
		return e.Msg
	}
	return e.Path + ": " + e.Msg
}

func (e *DecodeError) Unwrap() error { return e.Err }

// explain turns the error of the whole-model decode into one that says where
// the problem is. encoding/json names neither array indexes, nor the field
// of an unknown key or of a time that does not parse, so the model is read
// again piece by piece (only on this error path) to find the first bad value
// in document order.
func explain(data []byte, err error) error {
	var syn *json.SyntaxError
	switch {
	case errors.As(err, &syn):
		// Offset counts the bytes read, the bad one included.
		return &DecodeError{Path: position(data, int(syn.Offset)-1), Msg: syn.Error(), Err: err}
	case errors.Is(err, io.EOF):
		return &DecodeError{Msg: "empty input: want a model object", Err: err}
	case errors.Is(err, io.ErrUnexpectedEOF):
		return &DecodeError{Path: position(data, len(data)), Msg: "unexpected end of input: the model is incomplete", Err: err}
	case errors.As(err, new(*DecodeError)):
		return err
	}
	if verr := checkVersion(data); verr != nil {
		return verr
	}
	if located := walk(data, reflect.TypeFor[Cluster](), ""); located != nil {
		return located
	}
	return fmt.Errorf("decode model: %w", err)
}

// checkVersion reports a missing or unsupported version, and nothing else.
// It reads the top-level keys only up to "version", which Write puts first.
func checkVersion(data []byte) error {
	if firstByte(data) != '{' {
		return &DecodeError{Msg: "want a model object, got " + got(jsonKind(data))}
	}
	var version []byte
	err := elements(data, func(_ int, key string, value []byte) error {
		if strings.EqualFold(key, "version") {
			version = value
			return errFound
		}
		return nil
	})
	if !errors.Is(err, errFound) || string(version) == "null" {
		return &DecodeError{Path: "version", Msg: fmt.Sprintf("missing (want %d)", Version)}
	}
	v, err := strconv.Atoi(string(version))
	if err != nil {
		// Not a whole number: the walk names what it is.
		return nil
	}
	if v != Version {
		return &DecodeError{Path: "version", Msg: fmt.Sprintf("%d is not supported (want %d)", v, Version)}
	}
	return nil
}

// errFound stops elements once the version is found.
var errFound = errors.New("found")

// trailing rejects anything but white space after the model object.
func trailing(data []byte, end int) error {
	rest := bytes.TrimLeft(data[end:], " \t\r\n")
	if len(rest) == 0 {
		return nil
	}
	return &DecodeError{Path: position(data, len(data)-len(rest)), Msg: "data after the model object (a file holds one model)"}
}

// position renders a byte offset of data as "line L, column C" (1-based,
// columns in characters).
func position(data []byte, off int) string {
	off = max(0, min(off, len(data)))
	before := data[:off]
	line := bytes.Count(before, []byte{'\n'}) + 1
	col := utf8.RuneCount(before[bytes.LastIndexByte(before, '\n')+1:]) + 1
	return fmt.Sprintf("line %d, column %d", line, col)
}

var (
	timeType            = reflect.TypeFor[time.Time]()
	jsonUnmarshalerType = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// walk finds the first value of data, in document order, that does not
// decode into a value of type t, and returns a *DecodeError naming it; path
// names data itself. It returns nil when it finds no problem.
func walk(data []byte, t reflect.Type, path string) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	first := firstByte(data)
	// Types that decode themselves, and structs with embedded fields
	// (promoted fields are not looked up here), are decoded whole.
	custom := reflect.PointerTo(t).Implements(jsonUnmarshalerType) || reflect.PointerTo(t).Implements(textUnmarshalerType)
	switch {
	case custom:
	case t.Kind() == reflect.Struct && first == '{' && !embeds(t):
		return walkStruct(data, t, path)
	case (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) && first == '[':
		return walkSlice(data, t.Elem(), path)
	case t.Kind() == reflect.Map && t.Key().Kind() == reflect.String && first == '{':
		return walkMap(data, t.Elem(), path)
	}
	err := strict(data, t)
	if err == nil {
		return nil
	}
	return describe(data, t, path, err)
}

func embeds(t reflect.Type) bool {
	for i := range t.NumField() {
		if t.Field(i).Anonymous {
			return true
		}
	}
	return false
}

// strict decodes data into a new value of type t as Decode does.
func strict(data []byte, t reflect.Type) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	return dec.Decode(reflect.New(t).Interface())
}

func firstByte(data []byte) byte {
	data = bytes.TrimLeft(data, " \t\r\n")
	if len(data) == 0 {
		return 0
	}
	return data[0]
}

// walkSlice and walkMap decode the elements of an array or the values of an
// object one at a time, strictly, and walk into those that fail: a large
// array costs about one decode.
func walkSlice(data []byte, elem reflect.Type, path string) error {
	return elements(data, func(i int, _ string, value []byte) error {
		if strict(value, elem) == nil {
			return nil
		}
		return walk(value, elem, path+"["+strconv.Itoa(i)+"]")
	})
}

func walkMap(data []byte, elem reflect.Type, path string) error {
	return elements(data, func(_ int, key string, value []byte) error {
		if strict(value, elem) == nil {
			return nil
		}
		return walk(value, elem, fmt.Sprintf("%s[%q]", path, key))
	})
}

// elements calls fn with the index and text of each element of the JSON
// array data, or the index, key and value text of each member of the JSON
// object data, in order, until fn returns an error. data has passed
// encoding/json's syntax check; this only splits it, which is much cheaper
// than decoding the pieces into json.RawMessage.
func elements(data []byte, fn func(i int, key string, value []byte) error) error {
	i := skipSpace(data, 0)
	if i >= len(data) || (data[i] != '[' && data[i] != '{') {
		return nil
	}
	object := data[i] == '{'
	i++
	for n := 0; ; n++ {
		i = skipSpace(data, i)
		if i >= len(data) || data[i] == ']' || data[i] == '}' {
			return nil
		}
		var key string
		if object {
			end := valueEnd(data, i)
			if json.Unmarshal(data[i:end], &key) != nil {
				return nil
			}
			i = skipSpace(data, end)
			if i >= len(data) || data[i] != ':' {
				return nil
			}
			i = skipSpace(data, i+1)
		}
		end := valueEnd(data, i)
		if end <= i {
			return nil
		}
		if err := fn(n, key, data[i:end]); err != nil {
			return err
		}
		i = skipSpace(data, end)
		if i < len(data) && data[i] == ',' {
			i++
		}
	}
}

func skipSpace(data []byte, i int) int {
	for i < len(data) && (data[i] == ' ' || data[i] == '\t' || data[i] == '\r' || data[i] == '\n') {
		i++
	}
	return i
}

func literalEnd(c byte) bool {
	switch c {
	case ' ', '\t', '\r', '\n', ',', ':', ']', '}':
		return true
	}
	return false
}

// valueEnd returns the index just after the JSON value that starts at
// data[i].
func valueEnd(data []byte, i int) int {
	depth := 0
	for ; i < len(data); i++ {
		switch data[i] {
		case '"':
			for i++; i < len(data) && data[i] != '"'; i++ {
				if data[i] == '\\' {
					i++
				}
			}
			if depth == 0 {
				return min(i+1, len(data))
			}
		case '[', '{':
			depth++
		case ']', '}':
			depth--
			if depth <= 0 {
				return i + 1
			}
		default:
			if depth == 0 {
				for i < len(data) && !literalEnd(data[i]) {
					i++
				}
				return i
			}
		}
	}
	return len(data)
}

func walkStruct(data []byte, t reflect.Type, path string) error {
	return elements(data, func(_ int, key string, value []byte) error {
		field, name, ok := fieldFor(t, key)
		if !ok {
			return &DecodeError{Path: path, Msg: fmt.Sprintf("unknown field %q", key)}
		}
		return walk(value, field, join(path, name))
	})
}

// fieldFor finds the field of struct t that the JSON key fills, as
// encoding/json does: by its json name, else case-insensitively.
func fieldFor(t reflect.Type, key string) (reflect.Type, string, bool) {
	var folded reflect.Type
	var foldedName string
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		if name == key {
			return f.Type, name, true
		}
		if folded == nil && strings.EqualFold(name, key) {
			folded, foldedName = f.Type, name
		}
	}
	return folded, foldedName, folded != nil
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// describe says what is wrong with data, a value of type t at path, given
// the error decoding it.
func describe(data []byte, t reflect.Type, path string, err error) error {
	var ute *json.UnmarshalTypeError
	var pe *time.ParseError
	switch {
	case t == timeType && errors.As(err, &pe):
		return &DecodeError{Path: path, Msg: fmt.Sprintf("want a time such as 2026-11-21T10:00:00Z (RFC 3339), got %q", pe.Value), Err: err}
	case t == timeType:
		return &DecodeError{Path: path, Msg: fmt.Sprintf("want a time such as 2026-11-21T10:00:00Z (RFC 3339), got %s", got(jsonKind(data))), Err: err}
	case errors.As(err, &ute):
		if ute.Field != "" {
			// Only for types the walk does not enter: name the field anyway.
			path = join(path, ute.Field)
		} else if ute.Value == "number" {
			// encoding/json leaves out the number where a string is wanted.
			ute = &json.UnmarshalTypeError{Value: jsonKind(data), Type: ute.Type}
		}
		return &DecodeError{Path: path, Msg: mismatch(ute), Err: err}
	}
	return &DecodeError{Path: path, Msg: err.Error(), Err: err}
}

// mismatch says what a value of the wrong type is and what is wanted.
func mismatch(e *json.UnmarshalTypeError) string {
	n, isNumber := strings.CutPrefix(e.Value, "number ")
	switch e.Type.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if !isNumber {
			return "want a whole number, got " + e.Value
		}
		f, err := strconv.ParseFloat(n, 64)
		switch {
		case err != nil || math.Abs(f) >= math.Ldexp(1, e.Type.Bits()-1):
			return fmt.Sprintf("%s is out of range (want a whole number of at most %d bits)", n, e.Type.Bits())
		case f == math.Trunc(f):
			return fmt.Sprintf("want a whole number written without a fraction or exponent, got %s", n)
		}
		return "want a whole number, got " + n
	case reflect.Float32, reflect.Float64:
		if isNumber {
			return fmt.Sprintf("%s is out of range (want a number of at most %d bits)", n, e.Type.Bits())
		}
		return "want a number, got " + e.Value
	case reflect.String:
		return "want a string, got " + got(e.Value)
	case reflect.Bool:
		return "want true or false, got " + got(e.Value)
	case reflect.Slice, reflect.Array:
		return "want an array, got " + got(e.Value)
	case reflect.Struct, reflect.Map:
		return "want an object, got " + got(e.Value)
	}
	return fmt.Sprintf("want a %s, got %s", e.Type, got(e.Value))
}

// got renders encoding/json's description of a value ("string", "number
// 2.5").
func got(v string) string {
	if n, ok := strings.CutPrefix(v, "number "); ok {
		return n
	}
	return v
}

// jsonKind names the kind of a JSON value as encoding/json does.
func jsonKind(data []byte) string {
	switch firstByte(data) {
	case '"':
		return "string"
	case '{':
		return "object"
	case '[':
		return "array"
	case 't', 'f':
		return "bool"
	case 'n':
		return "null"
	}
	return "number " + string(bytes.TrimSpace(data))
}
