// Package nova is the actuators' Nova hook: it enables and disables a host's
// nova-compute service through the compute API's os-services resource
// (microversion 2.53 and later: services are addressed by UUID), so that
// Nova's scheduler agrees with what an action plan does to a host.
//
// It authenticates with a token given in configuration (Keystone token
// issuance is outside Ballast); the token is never logged nor put in an
// error. It classifies failures (429 and 5xx are retried, honouring
// Retry-After, by actuators.Retry) and decides nothing.
package nova

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/ballast-cloud/ballast/actuators"
)

// Secret is a string that never shows itself: printing, YAML and JSON give
// "<secret>" so a configuration dump or a log line cannot leak it.
type Secret string

const redacted = "<secret>"

func (s Secret) String() string   { return redacted }
func (s Secret) GoString() string { return redacted }

// LogValue redacts the secret in slog records.
func (s Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalYAML redacts the secret.
func (s Secret) MarshalYAML() (any, error) {
	if s == "" {
		return "", nil
	}
	return redacted, nil
}

// MarshalJSON redacts the secret.
func (s Secret) MarshalJSON() ([]byte, error) {
	if s == "" {
		return []byte(`""`), nil
	}
	return json.Marshal(redacted)
}

// Config says how to reach Nova. Zero values get the defaults noted.
type Config struct {
	// URL is the compute endpoint with its version
	// (http://controller:8774/v2.1).
	URL string `yaml:"url"`
	// Token is sent as X-Auth-Token; TokenFile holds it instead (read at
	// start). One of them is required.
	Token     Secret `yaml:"token"`
	TokenFile string `yaml:"token_file"`
	// Microversion is the compute API microversion sent (default 2.53,
	// the first with service UUIDs).
	Microversion string `yaml:"microversion"`
	// Timeout bounds each request (default 10s).
	Timeout time.Duration `yaml:"timeout"`
}

var microversionRE = regexp.MustCompile(`^2\.(\d+)$`)

// Validate applies the defaults and checks the values, naming the field.
func (c *Config) Validate() error {
	u, err := url.Parse(c.URL)
	if c.URL == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("nova.url: %q is not an http(s) URL of the compute API (want e.g. http://controller:8774/v2.1)", c.URL)
	}
	if u.User != nil {
		return errors.New("nova.url: must not carry credentials; use nova.token or nova.token_file")
	}
	switch {
	case c.Token != "" && c.TokenFile != "":
		return errors.New("nova.token: set token or token_file, not both")
	case c.Token == "" && c.TokenFile == "":
		return errors.New("nova.token: set token or token_file")
	}
	if c.Microversion == "" {
		c.Microversion = "2.53"
	}
	m := microversionRE.FindStringSubmatch(c.Microversion)
	if m == nil {
		return fmt.Errorf("nova.microversion: %q is not 2.N", c.Microversion)
	}
	if n, _ := strconv.Atoi(m[1]); n < 53 {
		return fmt.Errorf("nova.microversion: %s is below 2.53, which addresses services by UUID", c.Microversion)
	}
	if c.Timeout < 0 {
		return fmt.Errorf("nova.timeout: %s must not be negative", c.Timeout)
	}
	if c.Timeout == 0 {
		c.Timeout = 10 * time.Second
	}
	return nil
}

// ErrNoService says the host has no nova-compute service.
var ErrNoService = errors.New("no nova-compute service")

// Client talks to Nova's os-services API.
type Client struct {
	cfg     Config
	base    string
	token   Secret
	http    *http.Client
	logger  *slog.Logger
	backoff actuators.Backoff
}

// New validates cfg and reads the token file. httpClient may be nil.
func New(cfg Config, httpClient *http.Client, logger *slog.Logger) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	token := cfg.Token
	if cfg.TokenFile != "" {
		b, err := os.ReadFile(cfg.TokenFile)
		if err != nil {
			return nil, fmt.Errorf("nova.token_file: %w", err)
		}
		if token = Secret(strings.TrimSpace(string(b))); token == "" {
			return nil, fmt.Errorf("nova.token_file: %s is empty", cfg.TokenFile)
		}
	}
	if httpClient == nil {
		httpClient = &http.Client{}
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Client{cfg: cfg, base: strings.TrimRight(cfg.URL, "/"), token: token, http: httpClient,
		logger: logger.With("component", "actuators/nova"), backoff: actuators.Backoff{Initial: 500 * time.Millisecond, Max: 10 * time.Second, Attempts: 4}}, nil
}

// Service is a compute service as os-services lists it.
type Service struct {
	ID             string  `json:"id"`
	Host           string  `json:"host"`
	Binary         string  `json:"binary"`
	Status         string  `json:"status"`
	State          string  `json:"state"`
	DisabledReason *string `json:"disabled_reason"`
}

// ComputeService returns host's nova-compute service, or an error wrapping
// ErrNoService.
func (c *Client) ComputeService(ctx context.Context, host string) (*Service, error) {
	var out struct {
		Services []Service `json:"services"`
	}
	q := url.Values{"binary": {"nova-compute"}, "host": {host}}
	if err := c.do(ctx, http.MethodGet, "/os-services?"+q.Encode(), nil, &out); err != nil {
		return nil, err
	}
	for _, s := range out.Services {
		if s.Host == host && s.Binary == "nova-compute" {
			return &s, nil
		}
	}
	return nil, fmt.Errorf("host %s: %w", host, ErrNoService)
}

// ServiceEnabled reports whether host's nova-compute service is enabled.
func (c *Client) ServiceEnabled(ctx context.Context, host string) (bool, error) {
	s, err := c.ComputeService(ctx, host)
	if err != nil {
		return false, err
	}
	return s.Status == "enabled", nil
}

// SetServiceEnabled enables or disables host's nova-compute service; reason
// is recorded as disabled_reason when disabling.
func (c *Client) SetServiceEnabled(ctx context.Context, host string, enabled bool, reason string) error {
	s, err := c.ComputeService(ctx, host)
	if err != nil {
		return err
	}
	body := map[string]any{"status": "enabled"}
	if !enabled {
		body["status"] = "disabled"
		if reason != "" {
			body["disabled_reason"] = reason
		}
	}
	if err := c.do(ctx, http.MethodPut, "/os-services/"+url.PathEscape(s.ID), body, nil); err != nil {
		return err
	}
	c.logger.Info("Set nova-compute service", "host", host, "status", body["status"], "reason", reason)
	return nil
}

// APIError is a refusal from Nova.
type APIError struct {
	Method, Path string
	Status       int
	Message      string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("nova %s %s: %d %s", e.Method, e.Path, e.Status, e.Message)
}

func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	var payload []byte
	if body != nil {
		var err error
		if payload, err = json.Marshal(body); err != nil {
			return fmt.Errorf("encode nova request: %w", err)
		}
	}
	return actuators.Retry(ctx, c.backoff, func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, method, c.base+path, bytes.NewReader(payload))
		if err != nil {
			return fmt.Errorf("nova %s %s: %w", method, path, err)
		}
		req.Header.Set("X-Auth-Token", string(c.token))
		req.Header.Set("OpenStack-API-Version", "compute "+c.cfg.Microversion)
		req.Header.Set("X-OpenStack-Nova-API-Version", c.cfg.Microversion)
		req.Header.Set("Accept", "application/json")
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := c.http.Do(req)
		if err != nil {
			// Transport failures carry the URL, never the headers.
			c.logger.Warn("Nova request failed", "method", method, "path", path, "err", err)
			return actuators.Retryable(fmt.Errorf("nova %s %s: %w", method, path, err), 0)
		}
		defer resp.Body.Close()
		data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if err != nil {
			return actuators.Retryable(fmt.Errorf("nova %s %s: read answer: %w", method, path, err), 0)
		}
		if resp.StatusCode >= 300 {
			// A server that echoes the request must not put the token in
			// an error or a log line.
			msg := strings.ReplaceAll(message(data), string(c.token), redacted)
			apiErr := &APIError{Method: method, Path: path, Status: resp.StatusCode, Message: msg}
			c.logger.Warn("Nova refused a request", "method", method, "path", path, "status", resp.StatusCode, "message", apiErr.Message)
			if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500 {
				return actuators.Retryable(apiErr, retryAfter(resp.Header.Get("Retry-After")))
			}
			return apiErr
		}
		if out != nil {
			if err := json.Unmarshal(data, out); err != nil {
				return fmt.Errorf("nova %s %s: parse answer: %w", method, path, err)
			}
		}
		return nil
	})
}

// message extracts Nova's fault message ({"badRequest": {"message": …}}),
// or a short prefix of the body.
func message(body []byte) string {
	var fault map[string]struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(body, &fault) == nil {
		for _, f := range fault {
			if f.Message != "" {
				return f.Message
			}
		}
	}
	s := strings.TrimSpace(string(body))
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

// retryAfter reads Retry-After in seconds or as an HTTP date.
func retryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		// "0" asks for a retry now; a zero duration would mean "not said".
		return max(time.Duration(s)*time.Second, time.Millisecond)
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0)
	}
	return 0
}
