package watcher

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/ballast-cloud/ballast/web/store"
)

// Roles, weakest first: readers read, operators also change (audits,
// templates, plans, actions, webhooks), admins also manage tokens and read
// the audit log.
const (
	RoleReader   = "reader"
	RoleOperator = "operator"
	RoleAdmin    = "admin"
)

var roleRank = map[string]int{RoleReader: 1, RoleOperator: 2, RoleAdmin: 3}

// Secret is a string that never shows itself in logs, errors or dumps.
type Secret string

func (Secret) String() string   { return "<secret>" }
func (Secret) GoString() string { return "<secret>" }

// MarshalYAML redacts the secret.
func (s Secret) MarshalYAML() (any, error) {
	if s == "" {
		return "", nil
	}
	return "<secret>", nil
}

// MarshalJSON redacts the secret.
func (s Secret) MarshalJSON() ([]byte, error) {
	if s == "" {
		return []byte(`""`), nil
	}
	return []byte(`"<secret>"`), nil
}

// TokenEntry is one token of the tokens file. Exactly one of Token,
// TokenFile and TokenSHA256 gives the secret.
type TokenEntry struct {
	Name string `yaml:"name"`
	Role string `yaml:"role"`
	// Token is the secret itself.
	Token Secret `yaml:"token"`
	// TokenFile holds the secret (trailing newline ignored); relative
	// paths are relative to the tokens file.
	TokenFile string `yaml:"token_file"`
	// TokenSHA256 is the hex SHA-256 of the secret, so that the file need
	// not hold it.
	TokenSHA256 string `yaml:"token_sha256"`
}

// TokensFile is the tokens file's content.
type TokensFile struct {
	Tokens []TokenEntry `yaml:"tokens"`
}

// minSecretLen refuses guessable secrets.
const minSecretLen = 16

func hashSecret(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// LoadTokensFile reads and validates a tokens file; errors name the entry
// and field and never include a secret.
func LoadTokensFile(path string) (map[string]TokenEntry, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("watcher.tokens_file: %w", err)
	}
	var f TokensFile
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("watcher.tokens_file %s: %v", path, redactYAMLError(err))
	}
	out := map[string]TokenEntry{}
	names := map[string]bool{}
	for i, e := range f.Tokens {
		where := fmt.Sprintf("watcher.tokens_file %s: tokens[%d]", path, i)
		if e.Name == "" {
			return nil, fmt.Errorf("%s: name is required", where)
		}
		where += fmt.Sprintf(" (%q)", e.Name)
		if names[e.Name] {
			return nil, fmt.Errorf("%s: name is used twice", where)
		}
		names[e.Name] = true
		if _, ok := roleRank[e.Role]; !ok {
			return nil, fmt.Errorf("%s: role %q is not one of admin, operator, reader", where, e.Role)
		}
		n := 0
		for _, set := range []bool{e.Token != "", e.TokenFile != "", e.TokenSHA256 != ""} {
			if set {
				n++
			}
		}
		if n != 1 {
			return nil, fmt.Errorf("%s: exactly one of token, token_file and token_sha256 is required", where)
		}
		var sum string
		switch {
		case e.Token != "":
			if len(e.Token) < minSecretLen {
				return nil, fmt.Errorf("%s: token must be at least %d characters", where, minSecretLen)
			}
			sum = hashSecret(string(e.Token))
		case e.TokenFile != "":
			p := e.TokenFile
			if !filepath.IsAbs(p) {
				p = filepath.Join(filepath.Dir(path), p)
			}
			sb, err := os.ReadFile(p)
			if err != nil {
				return nil, fmt.Errorf("%s: token_file: %w", where, err)
			}
			secret := strings.TrimRight(string(sb), "\r\n")
			if len(secret) < minSecretLen {
				return nil, fmt.Errorf("%s: the secret in token_file must be at least %d characters", where, minSecretLen)
			}
			sum = hashSecret(secret)
		default:
			s := strings.ToLower(e.TokenSHA256)
			if b, err := hex.DecodeString(s); err != nil || len(b) != sha256.Size {
				return nil, fmt.Errorf("%s: token_sha256 must be 64 hex digits", where)
			}
			sum = s
		}
		if _, dup := out[sum]; dup {
			return nil, fmt.Errorf("%s: the same secret is used by two tokens", where)
		}
		e.Token = ""
		out[sum] = e
	}
	return out, nil
}

// redactYAMLError keeps the line numbers of a YAML error but not the
// offending values, which may be secrets.
func redactYAMLError(err error) string {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		var lines []string
		for _, m := range te.Errors {
			if i := strings.Index(m, ": "); i >= 0 && strings.HasPrefix(m, "line ") {
				m = m[:i] + ": " + strings.SplitN(m[i+2:], " ", 2)[0] + " ..."
			}
			lines = append(lines, m)
		}
		return "invalid YAML: " + strings.Join(lines, "; ")
	}
	msg := err.Error()
	if i := strings.Index(msg, "line "); i >= 0 {
		return "invalid YAML at " + strings.SplitN(msg[i:], ":", 2)[0]
	}
	return "invalid YAML"
}

// principal is an authenticated caller.
type principal struct {
	name, role string
	// source is "file" or "api".
	source string
}

type authenticator struct {
	cfg       Config
	store     *store.Store
	validator TokenValidator
	logger    *slog.Logger

	mu        sync.RWMutex
	fileToks  map[string]TokenEntry
	fileMod   time.Time
	checkedAt time.Time

	loginMu sync.Mutex
	lastUse map[string]time.Time

	failMu     sync.Mutex
	failSecond int64
	failCount  int
	suppressed int
}

func newAuthenticator(cfg Config, st *store.Store, v TokenValidator, logger *slog.Logger) (*authenticator, error) {
	a := &authenticator{cfg: cfg, store: st, validator: v, logger: logger, fileToks: map[string]TokenEntry{},
		lastUse: map[string]time.Time{}}
	if cfg.AuthStrategy == "tokens" {
		toks, err := LoadTokensFile(cfg.TokensFile)
		if err != nil {
			return nil, err
		}
		a.fileToks = toks
		if fi, err := os.Stat(cfg.TokensFile); err == nil {
			a.fileMod = fi.ModTime()
		}
		a.checkedAt = cfg.Now()
	}
	return a, nil
}

// reloadEvery bounds how often the tokens file's mtime is checked.
const reloadEvery = 5 * time.Second

// maybeReload re-reads the tokens file when it changed; a broken file
// keeps the previous tokens (and says so).
func (a *authenticator) maybeReload() {
	now := a.cfg.Now()
	a.mu.RLock()
	due := now.Sub(a.checkedAt) >= reloadEvery
	a.mu.RUnlock()
	if !due {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if now.Sub(a.checkedAt) < reloadEvery {
		return
	}
	a.checkedAt = now
	fi, err := os.Stat(a.cfg.TokensFile)
	if err != nil || fi.ModTime().Equal(a.fileMod) {
		return
	}
	toks, err := LoadTokensFile(a.cfg.TokensFile)
	if err != nil {
		a.logger.Error("Tokens file not reloaded; keeping the previous tokens", "err", err)
		return
	}
	a.fileToks, a.fileMod = toks, fi.ModTime()
	a.logger.Info("Tokens file reloaded", "tokens", len(toks))
}

// bearer returns the token a request presents: X-Auth-Token (as
// watcherclient sends it) or Authorization: Bearer.
func bearer(r *http.Request) string {
	if t := r.Header.Get("X-Auth-Token"); t != "" {
		return t
	}
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

func remoteAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// authenticate resolves the request's token. It returns nil without error
// when no token was presented or it is unknown (the caller answers 401).
func (a *authenticator) authenticate(ctx context.Context, token string) (*principal, error) {
	if a.cfg.AuthStrategy == "noauth" {
		return &principal{name: "anonymous", role: RoleAdmin, source: "noauth"}, nil
	}
	if token == "" {
		return nil, nil
	}
	a.maybeReload()
	sum := hashSecret(token)
	a.mu.RLock()
	e, ok := a.fileToks[sum]
	a.mu.RUnlock()
	if ok {
		return &principal{name: e.Name, role: e.Role, source: "file"}, nil
	}
	tk, err := a.store.TokenBySecret(ctx, sum)
	if err != nil {
		return nil, err
	}
	if tk != nil {
		return &principal{name: tk.Name, role: tk.Role, source: "api"}, nil
	}
	if a.validator == nil {
		return nil, nil
	}
	name, role, ok, err := a.validator.Validate(ctx, token)
	if err != nil {
		return nil, fmt.Errorf("token validator: %w", err)
	}
	if _, known := roleRank[role]; !ok || !known {
		return nil, nil
	}
	return &principal{name: name, role: role, source: "validator"}, nil
}

// recordUse logs a login when the token was silent for longer than the
// login window.
func (a *authenticator) recordUse(ctx context.Context, p *principal, remote string) {
	if a.cfg.AuthStrategy == "noauth" {
		return
	}
	now := a.cfg.Now()
	key := p.source + "/" + p.name
	a.loginMu.Lock()
	last, seen := a.lastUse[key]
	a.lastUse[key] = now
	a.loginMu.Unlock()
	if seen && now.Sub(last) < a.cfg.LoginWindow {
		return
	}
	if err := a.store.AppendLog(ctx, store.LogEntry{Kind: store.KindLogin, Actor: p.name, Role: p.role, Remote: remote,
		Detail: "token from the " + p.source}); err != nil {
		a.logger.Warn("Cannot record login", "actor", p.name, "err", err)
	}
}

// maxFailedLoginsLogged bounds the failed-login entries written per second,
// so that a client hammering with bad tokens cannot fill the database.
const maxFailedLoginsLogged = 10

func (a *authenticator) recordFailure(ctx context.Context, r *http.Request, reason string) {
	now := a.cfg.Now()
	a.failMu.Lock()
	if sec := now.Unix(); sec != a.failSecond {
		a.failSecond, a.failCount = sec, 0
	}
	a.failCount++
	if a.failCount > maxFailedLoginsLogged {
		a.suppressed++
		a.failMu.Unlock()
		return
	}
	suppressed := a.suppressed
	a.suppressed = 0
	a.failMu.Unlock()
	detail := reason
	if suppressed > 0 {
		detail += fmt.Sprintf(" (%d more failures not logged)", suppressed)
	}
	if err := a.store.AppendLog(ctx, store.LogEntry{Kind: store.KindLoginFailed, Actor: "unknown", Role: "",
		Remote: remoteAddr(r), Method: r.Method, Path: r.URL.Path, Status: http.StatusUnauthorized, Detail: detail}); err != nil {
		a.logger.Warn("Cannot record failed login", "err", err)
	}
}

// fileTokens lists the tokens of the file (for the token API).
func (a *authenticator) fileTokens() []TokenEntry {
	a.maybeReload()
	a.mu.RLock()
	defer a.mu.RUnlock()
	out := make([]TokenEntry, 0, len(a.fileToks))
	for _, e := range a.fileToks {
		out = append(out, e)
	}
	slices.SortFunc(out, func(x, y TokenEntry) int { return strings.Compare(x.Name, y.Name) })
	return out
}

func (a *authenticator) inFile(name string) bool {
	a.mu.RLock()
	defer a.mu.RUnlock()
	for _, e := range a.fileToks {
		if e.Name == name {
			return true
		}
	}
	return false
}

// newSecret returns a fresh random token.
func newSecret() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return "blst_" + base64.RawURLEncoding.EncodeToString(b), nil
}

// unauthorized is keystonemiddleware's 401, in Watcher's envelope.
func unauthorized() *apiError {
	e := errorf(http.StatusUnauthorized, "The request you have made requires authentication.")
	e.header = http.Header{"Www-Authenticate": {`Bearer realm="ballast"`}}
	return e
}

// forbidden is Watcher's PolicyNotAuthorized.
func forbidden(policy string) *apiError {
	return errorf(http.StatusForbidden, "Policy doesn't allow %s to be performed.", policy)
}
