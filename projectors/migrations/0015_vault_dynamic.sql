-- Seed 003's dynamic secrets: configurations (never the admin connection) and leases (never
-- a password). A lease is `active` until it ends; one past its expiry but not yet revoked
-- by the expiry reactor is shown `expired` at query time.
CREATE TABLE vault_dynamic_configs (
    tenant_id uuid NOT NULL,
    id text NOT NULL,
    name text NOT NULL,
    kind text NOT NULL,
    backend text NOT NULL,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE TABLE vault_dynamic_leases (
    tenant_id uuid NOT NULL,
    id text NOT NULL,
    config_id text NOT NULL,
    username text NOT NULL,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    -- active | revoked | expired (ended by the expiry reactor)
    ended text,
    ended_at timestamptz,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX vault_dynamic_leases_config ON vault_dynamic_leases (tenant_id, config_id, created_at DESC);
CREATE INDEX vault_dynamic_leases_due ON vault_dynamic_leases (expires_at) WHERE ended IS NULL;
