-- Read model of auto-response rules (seed 000's auto_response_rules): the version in force.
-- Every version stays in the log; GET /auto-response/rules/{id}/versions reads them there.
CREATE TABLE auto_response_rules (
    tenant_id uuid NOT NULL,
    id uuid NOT NULL,
    name text NOT NULL,
    description text NOT NULL,
    version integer NOT NULL,
    match jsonb NOT NULL,
    actions jsonb NOT NULL,
    mode text NOT NULL,
    approval_required boolean NOT NULL,
    throttle_max_runs integer NOT NULL,
    throttle_window_secs integer NOT NULL,
    created_by text NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    deleted boolean NOT NULL DEFAULT false,
    agg_version bigint NOT NULL,
    position bigint NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX auto_response_rules_active ON auto_response_rules (tenant_id) WHERE mode = 'active' AND NOT deleted;
