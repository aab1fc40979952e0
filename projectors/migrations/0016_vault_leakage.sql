-- Seed 003's leakage detection: policies, incidents with their timeline, scans. Never a
-- leaked value: an incident names the tenant's secret and where the value was seen.
CREATE TABLE vault_leak_policies (
    tenant_id uuid NOT NULL,
    id text NOT NULL,
    name text NOT NULL,
    description text NOT NULL,
    patterns jsonb NOT NULL,
    scan_targets text[] NOT NULL,
    actions jsonb NOT NULL,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE TABLE vault_leak_incidents (
    tenant_id uuid NOT NULL,
    id text NOT NULL,
    -- The tenant's credential (by name) the leaked value is a version of; '' when none.
    secret_id text NOT NULL,
    secret_version bigint NOT NULL,
    source text NOT NULL,
    location text NOT NULL,
    severity text NOT NULL,
    -- open | investigating | resolved | false_positive
    status text NOT NULL,
    details jsonb NOT NULL,
    timeline jsonb NOT NULL,
    resolution text NOT NULL DEFAULT '',
    notes text NOT NULL DEFAULT '',
    detected_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX vault_leak_incidents_recent ON vault_leak_incidents (tenant_id, detected_at DESC);
CREATE INDEX vault_leak_incidents_secret ON vault_leak_incidents (tenant_id, secret_id);
CREATE TABLE vault_leak_scans (
    tenant_id uuid NOT NULL,
    id text NOT NULL,
    -- queued | running | completed | failed
    status text NOT NULL,
    targets_total integer NOT NULL,
    targets_done integer NOT NULL DEFAULT 0,
    bytes_scanned bigint NOT NULL DEFAULT 0,
    findings integer NOT NULL DEFAULT 0,
    reason text NOT NULL DEFAULT '',
    queued_at timestamptz NOT NULL,
    started_at timestamptz,
    completed_at timestamptz,
    touched_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX vault_leak_scans_due ON vault_leak_scans (queued_at) WHERE status IN ('queued', 'running');

-- Not a read model: the vault's index of keyed fingerprints of its secret versions (see
-- aegis_vault_services::fingerprints), written when a version is sealed. It is
-- never rebuilt from the log (the log never holds a value in clear) and never shown.
CREATE TABLE vault_leak_fingerprints (
    tenant_id uuid NOT NULL,
    fingerprint bytea NOT NULL,
    credential_id text NOT NULL,
    version bigint NOT NULL,
    PRIMARY KEY (tenant_id, fingerprint, credential_id, version)
);
