-- Read model of the vault context (seed 001). Never a value, sealed or clear: values stay in
-- the log, sealed, and are opened only by GET /credentials/{name}/value.
CREATE TABLE vault_credentials (
    tenant_id uuid NOT NULL,
    name text NOT NULL,
    id text NOT NULL,
    credential_type text NOT NULL,
    provider text NOT NULL,
    description text NOT NULL,
    -- active | retired | destroyed; expiring and expired are computed at query time.
    lifecycle text NOT NULL,
    expires_at timestamptz,
    rotation_enabled boolean NOT NULL,
    rotation_interval_hours integer NOT NULL,
    rotation_strategy text NOT NULL,
    rotator text NOT NULL,
    alert_threshold_hours integer NOT NULL,
    tags text[] NOT NULL,
    metadata jsonb NOT NULL,
    provider_credential_id text,
    version bigint NOT NULL,
    value_since timestamptz NOT NULL,
    next_rotation_at timestamptz,
    rotating boolean NOT NULL DEFAULT false,
    last_rotated_at timestamptz,
    last_rotation_error text,
    health text NOT NULL DEFAULT 'unknown',
    health_error text,
    last_health_check timestamptz,
    health_response_ms bigint,
    last_used_at timestamptz,
    -- The version whose expiry was alerted (alerts fire once per version).
    alerted_version bigint,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    agg_version bigint NOT NULL,
    position bigint NOT NULL,
    PRIMARY KEY (tenant_id, name)
);
CREATE INDEX vault_credentials_due ON vault_credentials (next_rotation_at)
    WHERE lifecycle = 'active' AND next_rotation_at IS NOT NULL;
CREATE INDEX vault_credentials_expiry ON vault_credentials (expires_at)
    WHERE lifecycle = 'active' AND expires_at IS NOT NULL;

-- One row per value read, for usage_stats (uses in the last 24 h and 7 d).
CREATE TABLE vault_credential_uses (
    tenant_id uuid NOT NULL,
    name text NOT NULL,
    used_at timestamptz NOT NULL,
    position bigint NOT NULL,
    PRIMARY KEY (tenant_id, name, position)
);
CREATE INDEX vault_credential_uses_recent ON vault_credential_uses (tenant_id, name, used_at);

-- Alerts of the health dashboard: expiring, rotation_failed, unhealthy.
CREATE TABLE vault_alerts (
    tenant_id uuid NOT NULL,
    name text NOT NULL,
    alert_type text NOT NULL,
    message text NOT NULL,
    created_at timestamptz NOT NULL,
    position bigint NOT NULL,
    idx integer NOT NULL,
    PRIMARY KEY (tenant_id, position, idx)
);
CREATE INDEX vault_alerts_recent ON vault_alerts (tenant_id, created_at DESC);
