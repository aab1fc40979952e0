-- Seed 004's single-shot wraps, value-free: what was handed over for which request, whether it
-- was retrieved, and how many attempts were refused and why. Neither the value, sealed or not,
-- nor its MAC is ever here.
CREATE TABLE broker_wraps (
    tenant_id uuid NOT NULL,
    id text NOT NULL,
    request_id text NOT NULL,
    key_name text NOT NULL,
    agent_id uuid NOT NULL,
    byte_length bigint NOT NULL,
    source text NOT NULL,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    retrieved_at timestamptz,
    retrieved_via text,
    denied_consumed integer NOT NULL DEFAULT 0,
    denied_expired integer NOT NULL DEFAULT 0,
    denied_not_approved integer NOT NULL DEFAULT 0,
    position bigint NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

CREATE INDEX broker_wraps_request ON broker_wraps (tenant_id, request_id, created_at);
