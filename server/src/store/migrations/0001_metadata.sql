-- Airlock's metadata on PostgreSQL, version 1. Records are JSON (as in the sled backend),
-- keyed by package name and version; what is queried or locked on has its own column.

CREATE TABLE packages (
    name TEXT PRIMARY KEY,
    record JSONB NOT NULL
);

CREATE TABLE versions (
    package TEXT NOT NULL,
    version TEXT NOT NULL,
    record JSONB NOT NULL,
    PRIMARY KEY (package, version)
);

CREATE TABLE tarballs (
    package TEXT NOT NULL,
    file_name TEXT NOT NULL,
    entry JSONB NOT NULL,
    PRIMARY KEY (package, file_name)
);

CREATE TABLE checks (
    package TEXT NOT NULL,
    version TEXT NOT NULL,
    record JSONB NOT NULL,
    PRIMARY KEY (package, version)
);

-- The check queue as a lease table: a replica claims an entry (FOR UPDATE SKIP LOCKED)
-- by writing its owner id, a random token and an expiry; only the token's holder can
-- store the decision, and an expired lease can be claimed by another replica.
CREATE TABLE check_queue (
    package TEXT NOT NULL,
    version TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    lease_owner TEXT,
    lease_token TEXT,
    lease_expires_at TIMESTAMPTZ,
    PRIMARY KEY (package, version)
);

CREATE TABLE audit_events (
    id BIGSERIAL PRIMARY KEY,
    time TIMESTAMPTZ NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    package TEXT NOT NULL,
    version TEXT NOT NULL,
    from_state TEXT,
    to_state TEXT,
    comment TEXT,
    -- Policy-rule events name a pattern, not a version: they are not in any history.
    in_history BOOLEAN NOT NULL
);
CREATE INDEX audit_events_history ON audit_events (package, version, id) WHERE in_history;

CREATE TABLE release_records (
    package TEXT NOT NULL,
    version TEXT NOT NULL,
    record BYTEA NOT NULL,
    PRIMARY KEY (package, version)
);

CREATE TABLE policy_rules (
    id BIGSERIAL PRIMARY KEY,
    kind TEXT NOT NULL,
    package TEXT NOT NULL,
    versions TEXT,
    reason TEXT NOT NULL,
    added_by TEXT NOT NULL,
    added_at TIMESTAMPTZ NOT NULL
);
