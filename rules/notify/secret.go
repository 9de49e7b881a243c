package notify

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
)

// Secret is a credential from configuration. However it is printed (fmt
// with any verb, slog, YAML, JSON) it shows "<secret>", so that a config dump
// or a log line cannot leak it. Only string(s) gives the value.
type Secret string

const redacted = "<secret>"

func (s Secret) String() string   { return redacted }
func (s Secret) GoString() string { return redacted }

// Format renders "<secret>" for every verb (quoted for %q); without it a verb
// such as %d would print the raw value in fmt's bad-verb message.
func (s Secret) Format(f fmt.State, verb rune) {
	if verb == 'q' {
		_, _ = io.WriteString(f, strconv.Quote(redacted))
		return
	}
	_, _ = io.WriteString(f, redacted)
}

// LogValue redacts the secret in slog records.
func (s Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalYAML redacts the secret; an unset one stays empty.
func (s Secret) MarshalYAML() (any, error) {
	if s == "" {
		return "", nil
	}
	return redacted, nil
}

// MarshalJSON redacts the secret; an unset one stays empty.
func (s Secret) MarshalJSON() ([]byte, error) {
	if s == "" {
		return []byte(`""`), nil
	}
	return json.Marshal(redacted)
}

// maxSecretFile bounds a secret file: credentials are short, and a path to
// something endless (/dev/zero) must fail rather than fill memory.
const maxSecretFile = 64 << 10

// readSecretFile returns the trimmed content of a secret file.
func readSecretFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxSecretFile+1))
	if err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	if len(b) > maxSecretFile {
		return "", fmt.Errorf("%s is larger than %d bytes", path, maxSecretFile)
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return s, nil
}

// resolveSecret returns the inline secret or the content of its file twin
// (validation has made sure exactly one is set). The error names the field.
func resolveSecret(field string, inline Secret, file string) (string, error) {
	if file == "" {
		if inline == "" {
			return "", fmt.Errorf("%s: required", field)
		}
		return string(inline), nil
	}
	s, err := readSecretFile(file)
	if err != nil {
		return "", fmt.Errorf("%s_file: %w", field, err)
	}
	return s, nil
}
