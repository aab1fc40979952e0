-- Read models of the spine. Everything here can be dropped and rebuilt from AEGIS_EVENTS.

-- One row per projection: how far it has applied the log, and whether it is halted.
CREATE TABLE projector_checkpoints (
    name            text PRIMARY KEY,
    position        bigint NOT NULL DEFAULT 0,
    status          text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'halted')),
    error           text,
    failed_position bigint,
    updated_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE tenants (
    id          uuid PRIMARY KEY,
    name        text NOT NULL,
    created_at  timestamptz NOT NULL,
    position    bigint NOT NULL
);
CREATE INDEX tenants_created ON tenants (created_at DESC, id DESC);

CREATE TABLE incidents (
    tenant_id     uuid NOT NULL,
    id            uuid NOT NULL,
    title         text NOT NULL,
    severity      text NOT NULL,
    status        text NOT NULL,
    source        text NOT NULL,
    description   text NOT NULL,
    agent_id      text,
    dedup_key     text,
    assigned_to   text,
    actions_taken jsonb NOT NULL DEFAULT '[]'::jsonb,
    version       bigint NOT NULL,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    resolved_at   timestamptz,
    position      bigint NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX incidents_newest ON incidents (tenant_id, created_at DESC, id DESC);
CREATE INDEX incidents_status ON incidents (tenant_id, status, severity);
