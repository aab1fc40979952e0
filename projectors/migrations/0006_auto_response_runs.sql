-- Auto-response runs and approvals (seed 000's auto_response_runs and ar_pending), and what
-- rules gained: the blast-radius brake and the reason for their mode.
ALTER TABLE auto_response_rules
    ADD COLUMN mode_reason text NOT NULL DEFAULT '',
    ADD COLUMN brake_max_targets integer NOT NULL DEFAULT 0,
    ADD COLUMN brake_window_secs integer NOT NULL DEFAULT 0;

CREATE TABLE auto_response_runs (
    tenant_id uuid NOT NULL,
    id uuid NOT NULL,
    rule_id uuid NOT NULL,
    rule_version integer NOT NULL,
    mode text NOT NULL,
    admission text NOT NULL,
    -- Now: how the run ended, approvals included.
    result text NOT NULL,
    -- How the run itself completed (`pending_approval` for a gated run, never changed), so
    -- acp_ar_rule_runs_total only ever counts up.
    completed_result text,
    trigger_event_id text NOT NULL,
    trigger_position bigint NOT NULL,
    trigger_event_type text NOT NULL,
    trigger_aggregate text NOT NULL,
    targets jsonb NOT NULL,
    actions jsonb NOT NULL,
    approval_required boolean NOT NULL,
    brake_tripped boolean NOT NULL DEFAULT false,
    started_at timestamptz NOT NULL,
    completed_at timestamptz,
    position bigint NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX auto_response_runs_recent ON auto_response_runs (tenant_id, started_at DESC, id DESC);
CREATE INDEX auto_response_runs_rule ON auto_response_runs (tenant_id, rule_id, started_at DESC);

CREATE TABLE auto_response_approvals (
    tenant_id uuid NOT NULL,
    id uuid NOT NULL,
    rule_id uuid NOT NULL,
    rule_version integer NOT NULL,
    actions jsonb NOT NULL,
    trigger_event_id text NOT NULL,
    trigger_event_type text NOT NULL,
    status text NOT NULL,
    expires_at timestamptz NOT NULL,
    requested_at timestamptz NOT NULL,
    decided_by text,
    note text NOT NULL DEFAULT '',
    result text,
    outcome jsonb,
    updated_at timestamptz NOT NULL,
    agg_version bigint NOT NULL,
    position bigint NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX auto_response_approvals_status ON auto_response_approvals (tenant_id, status, requested_at DESC);
CREATE INDEX auto_response_approvals_due ON auto_response_approvals (expires_at) WHERE status = 'pending';
