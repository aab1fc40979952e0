-- Seed 004's discovered secrets: what agents found in their clusters. Metadata only, never a
-- value, never the checksum an agent reported.
CREATE TABLE broker_secrets (
    tenant_id uuid NOT NULL,
    id uuid NOT NULL,
    cluster_name text NOT NULL,
    provider_type text NOT NULL,
    secret_ref text NOT NULL,
    provider_config jsonb NOT NULL,
    labels jsonb NOT NULL,
    version text NOT NULL,
    created_at_source timestamptz,
    updated_at_source timestamptz,
    status text NOT NULL,
    observations integer NOT NULL,
    reported_by uuid NOT NULL,
    first_seen_at timestamptz NOT NULL,
    changed_at timestamptz NOT NULL,
    position bigint NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

CREATE INDEX broker_secrets_by_ref ON broker_secrets (tenant_id, cluster_name, provider_type, secret_ref);
CREATE INDEX broker_secrets_labels ON broker_secrets USING gin (labels jsonb_path_ops);

-- When each was last listed by a sync: presence, written by the sync itself, not the log.
CREATE TABLE broker_secret_presence (
    tenant_id uuid NOT NULL,
    id uuid NOT NULL,
    last_seen_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
