-- Seed 004's jobs for agents: what a claim picks candidates from (the job's own history decides
-- who gets it). The payload holds references, never values.
CREATE TABLE broker_jobs (
    tenant_id uuid NOT NULL,
    id text NOT NULL,
    job_type text NOT NULL,
    payload jsonb NOT NULL,
    agent_scope jsonb NOT NULL,
    scoped_agent uuid,
    request_id text,
    status text NOT NULL,
    agent_id uuid,
    lease_expires_at timestamptz,
    attempts integer NOT NULL DEFAULT 0,
    error text NOT NULL DEFAULT '',
    enqueued_by text NOT NULL,
    enqueued_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    position bigint NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

CREATE INDEX broker_jobs_claimable ON broker_jobs (tenant_id, enqueued_at, id)
    WHERE status IN ('queued', 'claimed');
