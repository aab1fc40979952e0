-- Seed 004's access requests, value-free, for listing: who asked for which keys of which
-- secret and how it stands. One request with its approvers' decisions is read from its own
-- history. A patch's values, sealed or not, are never here.
CREATE TABLE broker_requests (
    tenant_id uuid NOT NULL,
    id text NOT NULL,
    kind text NOT NULL,
    requester_id uuid NOT NULL,
    project_id text NOT NULL,
    environment text NOT NULL,
    provider_type text NOT NULL,
    provider_config jsonb NOT NULL,
    secret_ref text NOT NULL,
    keys text[] NOT NULL,
    justification text NOT NULL,
    status text NOT NULL,
    workflow_id text NOT NULL,
    min_approvers integer NOT NULL,
    approvals integer NOT NULL DEFAULT 0,
    reject_reason text,
    error text,
    job_id text,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    position bigint NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

CREATE INDEX broker_requests_newest ON broker_requests (tenant_id, created_at DESC, id);
CREATE INDEX broker_requests_requester ON broker_requests (tenant_id, requester_id, created_at DESC);
-- The expiry pass and the follow-up of approvals look here.
CREATE INDEX broker_requests_due ON broker_requests (expires_at) WHERE status = 'pending';
CREATE INDEX broker_requests_approved ON broker_requests (updated_at) WHERE status = 'approved';
