-- Watcher's resources. Portable SQL: no AUTOINCREMENT, timestamps as
-- fixed-width UTC text (sortable), booleans as 0/1, JSON as text. Soft
-- delete as in Watcher (oslo.db): deleted = id and deleted_at set, so that
-- (name, deleted) stays unique among live rows only.
CREATE TABLE goals (
    id INTEGER PRIMARY KEY,
    uuid TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    display_name TEXT NOT NULL,
    efficacy_specification TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT,
    deleted_at TEXT,
    deleted INTEGER NOT NULL DEFAULT 0,
    UNIQUE (name, deleted)
);

CREATE TABLE strategies (
    id INTEGER PRIMARY KEY,
    uuid TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    display_name TEXT NOT NULL,
    goal_id INTEGER NOT NULL REFERENCES goals (id),
    parameters_spec TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT,
    deleted_at TEXT,
    deleted INTEGER NOT NULL DEFAULT 0,
    UNIQUE (name, deleted)
);

CREATE TABLE scoring_engines (
    id INTEGER PRIMARY KEY,
    uuid TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    metainfo TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT,
    deleted_at TEXT,
    deleted INTEGER NOT NULL DEFAULT 0,
    UNIQUE (name, deleted)
);

CREATE TABLE services (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    host TEXT NOT NULL,
    last_seen_up TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT,
    deleted_at TEXT,
    deleted INTEGER NOT NULL DEFAULT 0,
    UNIQUE (name, host, deleted)
);

CREATE TABLE audit_templates (
    id INTEGER PRIMARY KEY,
    uuid TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    description TEXT,
    goal_id INTEGER NOT NULL REFERENCES goals (id),
    strategy_id INTEGER REFERENCES strategies (id),
    scope TEXT NOT NULL,
    default_parameters TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT,
    deleted_at TEXT,
    deleted INTEGER NOT NULL DEFAULT 0,
    UNIQUE (name, deleted)
);

CREATE TABLE audits (
    id INTEGER PRIMARY KEY,
    uuid TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    audit_type TEXT NOT NULL,
    state TEXT NOT NULL,
    parameters TEXT NOT NULL,
    audit_interval TEXT,
    scope TEXT NOT NULL,
    goal_id INTEGER NOT NULL REFERENCES goals (id),
    strategy_id INTEGER REFERENCES strategies (id),
    auto_trigger INTEGER NOT NULL,
    force INTEGER NOT NULL,
    next_run_time TEXT,
    hostname TEXT,
    start_time TEXT,
    end_time TEXT,
    status_message TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT,
    deleted_at TEXT,
    deleted INTEGER NOT NULL DEFAULT 0,
    UNIQUE (name, deleted)
);
CREATE INDEX audits_type_state ON audits (audit_type, state);

CREATE TABLE action_plans (
    id INTEGER PRIMARY KEY,
    uuid TEXT NOT NULL UNIQUE,
    audit_id INTEGER NOT NULL REFERENCES audits (id),
    strategy_id INTEGER REFERENCES strategies (id),
    state TEXT NOT NULL,
    efficacy_indicators TEXT NOT NULL,
    global_efficacy TEXT NOT NULL,
    hostname TEXT,
    status_message TEXT,
    extra TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT,
    deleted_at TEXT,
    deleted INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX action_plans_audit ON action_plans (audit_id);
CREATE INDEX action_plans_state ON action_plans (state);

CREATE TABLE actions (
    id INTEGER PRIMARY KEY,
    uuid TEXT NOT NULL UNIQUE,
    action_plan_id INTEGER NOT NULL REFERENCES action_plans (id),
    action_type TEXT NOT NULL,
    input_parameters TEXT NOT NULL,
    state TEXT NOT NULL,
    parents TEXT NOT NULL,
    description TEXT NOT NULL,
    status_message TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT,
    deleted_at TEXT,
    deleted INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX actions_plan ON actions (action_plan_id);
