-- Read models of the identity context and the audit log. All rebuildable from AEGIS_EVENTS,
-- except agent_presence (heartbeats are telemetry, not history: see ARCHITECTURE.md).

CREATE TABLE users (
    tenant_id   uuid NOT NULL,
    id          uuid NOT NULL,
    email       text NOT NULL,
    name        text NOT NULL,
    status      text NOT NULL,
    version     bigint NOT NULL,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    position    bigint NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX users_newest ON users (tenant_id, created_at DESC, id DESC);

CREATE TABLE roles (
    tenant_id   uuid NOT NULL,
    id          uuid NOT NULL,
    name        text NOT NULL,
    description text NOT NULL,
    permissions text[] NOT NULL,
    version     bigint NOT NULL,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    position    bigint NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

CREATE TABLE user_roles (
    tenant_id   uuid NOT NULL,
    id          uuid NOT NULL,
    user_id     uuid NOT NULL,
    role_id     text NOT NULL,
    created_at  timestamptz NOT NULL,
    position    bigint NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX user_roles_user ON user_roles (tenant_id, user_id);
CREATE INDEX user_roles_role ON user_roles (tenant_id, role_id);

CREATE TABLE api_keys (
    tenant_id   uuid NOT NULL,
    id          uuid NOT NULL,
    name        text NOT NULL,
    prefix      text NOT NULL,
    scopes      text[] NOT NULL,
    created_by  text NOT NULL,
    created_at  timestamptz NOT NULL,
    revoked_at  timestamptz,
    position    bigint NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX api_keys_newest ON api_keys (tenant_id, created_at DESC, id DESC);

CREATE TABLE agents (
    tenant_id   uuid NOT NULL,
    id          uuid NOT NULL,
    name        text NOT NULL,
    prefix      text NOT NULL,
    status      text NOT NULL,
    version     bigint NOT NULL,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    position    bigint NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX agents_newest ON agents (tenant_id, created_at DESC, id DESC);

-- Written by the command API on each heartbeat; never rebuilt.
CREATE TABLE agent_presence (
    tenant_id    uuid NOT NULL,
    agent_id     uuid NOT NULL,
    last_seen_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, agent_id)
);

-- One row per event of every context: who did what to which resource, and when.
CREATE TABLE audit_events (
    position       bigint NOT NULL,
    idx            integer NOT NULL,
    event_id       text NOT NULL,
    tenant_id      uuid NOT NULL,
    event_type     text NOT NULL,
    action         text NOT NULL,
    context        text NOT NULL,
    resource_type  text NOT NULL,
    resource_id    text NOT NULL,
    actor_kind     text NOT NULL,
    actor          text NOT NULL,
    correlation_id text NOT NULL,
    occurred_at    timestamptz NOT NULL,
    PRIMARY KEY (position, idx)
);
CREATE INDEX audit_events_tenant ON audit_events (tenant_id, position DESC);
CREATE INDEX audit_events_actor ON audit_events (tenant_id, actor, position DESC);
CREATE INDEX audit_events_resource ON audit_events (tenant_id, resource_id, position DESC);
CREATE INDEX audit_events_correlation ON audit_events (tenant_id, correlation_id);
