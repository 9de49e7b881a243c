package watcher

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/ballast-cloud/ballast/web/store"
)

// Token management (admin only): tokens from the tokens file are listed
// read-only; API tokens are created (the secret is shown once) and
// revoked. Secrets are never listed, logged or stored.

func tokenView(t *store.Token) obj {
	return obj{"uuid": t.UUID, "name": t.Name, "role": t.Role, "source": "api", "created_by": t.CreatedBy,
		"created_at": awareTime(&t.CreatedAt), "expires_at": awareTime(t.ExpiresAt)}
}

func (a *API) listTokens(w http.ResponseWriter, r *http.Request) error {
	items := []obj{}
	for _, e := range a.auth.fileTokens() {
		items = append(items, obj{"uuid": nil, "name": e.Name, "role": e.Role, "source": "file"})
	}
	toks, err := a.deps.Store.ListTokens(r.Context())
	if err != nil {
		return err
	}
	for i := range toks {
		items = append(items, tokenView(&toks[i]))
	}
	return writeJSON(w, http.StatusOK, obj{"tokens": items})
}

func (a *API) createToken(w http.ResponseWriter, r *http.Request) error {
	body, err := readBody(r, "token", false)
	if err != nil {
		return err
	}
	if err := checkKnown(body, "token", "name", "role", "expires_at"); err != nil {
		return err
	}
	name, ok, err := strArg(body, "name")
	if err != nil {
		return err
	}
	if !ok || name == "" {
		return invalidInput("name", "None", "Mandatory field missing.")
	}
	role, ok, err := strArg(body, "role")
	if err != nil {
		return err
	}
	if _, known := roleRank[role]; !ok || !known {
		return invalidInput("role", role, "Value should be one of: admin, operator, reader")
	}
	if a.auth.inFile(name) {
		return conflictErr("A token named %s is defined in the tokens file", name)
	}
	var expires *time.Time
	if s, ok, err := strArg(body, "expires_at"); err != nil {
		return err
	} else if ok {
		t, err := parseTimeValue("expires_at", s)
		if err != nil {
			return err
		}
		if !t.After(a.cfg.Now()) {
			return badRequest("expires_at %s is in the past", isoTime(t, true))
		}
		expires = &t
	}
	secret, err := newSecret()
	if err != nil {
		return err
	}
	tk, err := a.deps.Store.CreateToken(r.Context(), name, role, hashSecret(secret), expires)
	if errors.Is(err, store.ErrDuplicate) {
		return conflictErr("A token named %s already exists", name)
	}
	if err != nil {
		return err
	}
	out := tokenView(tk)
	out["token"] = secret
	w.Header().Set("Location", a.baseURL(r)+"/v1/auth/tokens/"+tk.UUID)
	w.Header().Set("Cache-Control", "no-store")
	return writeJSON(w, http.StatusCreated, out)
}

func (a *API) deleteToken(w http.ResponseWriter, r *http.Request) error {
	id := chi.URLParam(r, "id")
	if a.auth.inFile(id) {
		return badRequest("Token %s is defined in the tokens file; remove it there", id)
	}
	if err := a.deps.Store.RevokeToken(r.Context(), id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// listAuditLog is GET /v1/audit_log: newest first, filtered by actor,
// kind, resource_uuid and a since/until window; marker is the last id of
// the previous page.
func (a *API) listAuditLog(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	for k := range q {
		switch k {
		case "actor", "kind", "resource_uuid", "since", "until", "marker", "limit":
		default:
			return badRequest("Unknown argument: %q", k)
		}
	}
	f := store.LogFilter{Actor: q.Get("actor"), Kind: q.Get("kind"), ResourceUUID: q.Get("resource_uuid"), Limit: a.cfg.MaxLimit}
	for _, t := range []struct {
		name string
		dst  *time.Time
	}{{"since", &f.Since}, {"until", &f.Until}} {
		if s := q.Get(t.name); s != "" {
			v, err := parseTimeValue(t.name, s)
			if err != nil {
				return err
			}
			*t.dst = v
		}
	}
	if s := q.Get("marker"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return invalidInput("marker", s, "unable to convert to int")
		}
		f.Marker = n
	}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			return invalidInput("limit", s, "unable to convert to int")
		}
		if n <= 0 {
			return badRequest("Limit must be positive")
		}
		f.Limit = min(n, a.cfg.MaxLimit)
	}
	entries, err := a.deps.Store.ListLog(r.Context(), f)
	if err != nil {
		return err
	}
	body := obj{"audit_log": entries}
	if len(entries) == f.Limit {
		next := a.baseURL(r) + "/v1/audit_log?"
		vals := q
		vals.Set("limit", strconv.Itoa(f.Limit))
		vals.Set("marker", strconv.FormatInt(entries[len(entries)-1].ID, 10))
		body["next"] = next + vals.Encode()
	}
	return writeJSON(w, http.StatusOK, body)
}
