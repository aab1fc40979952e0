-- SIEM connections (seed 000's `siem_connections`): their URL and token stay sealed.
CREATE TABLE siem_connections (
    tenant_id uuid NOT NULL,
    id uuid NOT NULL,
    name text NOT NULL,
    kind text NOT NULL,
    host text NOT NULL,
    index_name text NOT NULL,
    sourcetype text NOT NULL,
    site text NOT NULL,
    contexts text[] NOT NULL,
    event_types text[] NOT NULL,
    enabled boolean NOT NULL,
    start_position bigint NOT NULL,
    secret_version bigint NOT NULL,
    secret_nonce bytea NOT NULL,
    secret_ciphertext bytea NOT NULL,
    deleted boolean NOT NULL DEFAULT false,
    created_by text NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    agg_version bigint NOT NULL,
    position bigint NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

-- Each forwarder's progress: the last log position its SIEM acknowledged. Written by the
-- forwarder, not folded from the log, so a rebuild of the read model keeps it.
CREATE TABLE siem_checkpoints (
    connection_id uuid PRIMARY KEY,
    tenant_id uuid NOT NULL,
    position bigint NOT NULL,
    forwarded bigint NOT NULL DEFAULT 0,
    last_error text,
    last_success_at timestamptz,
    updated_at timestamptz NOT NULL
);
