-- Host states set by change_host_state actions (enabled, disabled,
-- maintenance): Ballast's inventory of what the hosts' schedulability is.
CREATE TABLE host_states (
    host TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    reason TEXT,
    updated_at TEXT NOT NULL
);
