-- Seed 003's versioned secrets: each version of a credential and its state
-- (active | deprecated | destroyed), for the statistics. Never a value.
CREATE TABLE vault_credential_versions (
    tenant_id uuid NOT NULL,
    name text NOT NULL,
    version bigint NOT NULL,
    state text NOT NULL,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, name, version)
);
