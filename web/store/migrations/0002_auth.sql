-- Who did what: the audit log (append-only) and the API-managed tokens.
-- Tokens are stored as the SHA-256 of the secret, never the secret.
CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    kind TEXT NOT NULL,
    actor TEXT NOT NULL,
    role TEXT NOT NULL,
    remote TEXT NOT NULL,
    method TEXT,
    path TEXT,
    status INTEGER,
    resource_type TEXT,
    resource_uuid TEXT,
    from_state TEXT,
    to_state TEXT,
    detail TEXT
);
CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX audit_log_actor ON audit_log (actor);

CREATE TABLE tokens (
    id INTEGER PRIMARY KEY,
    uuid TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    secret_sha256 TEXT NOT NULL UNIQUE,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT,
    updated_at TEXT,
    deleted_at TEXT,
    deleted INTEGER NOT NULL DEFAULT 0,
    UNIQUE (name, deleted)
);
