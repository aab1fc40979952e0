-- Outbound webhooks (seed 000's `webhooks`). The URL, routing key and signing secret stay
-- sealed here as in the log: the fan-out reactor opens them with the key store when it
-- delivers, and no query ever returns them.
CREATE TABLE webhooks (
    tenant_id uuid NOT NULL,
    id uuid NOT NULL,
    name text NOT NULL,
    kind text NOT NULL,
    host text NOT NULL,
    topics text[] NOT NULL,
    enabled boolean NOT NULL,
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
CREATE INDEX webhooks_live ON webhooks (tenant_id, created_at DESC) WHERE NOT deleted;
