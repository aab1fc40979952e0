-- Scheduled reports (seed 000's `scheduled_reports`) and their runs, folded from the log.
CREATE TABLE scheduled_reports (
    tenant_id uuid NOT NULL,
    id uuid NOT NULL,
    name text NOT NULL,
    kind text NOT NULL,
    cron text NOT NULL,
    timezone text NOT NULL,
    format text NOT NULL,
    window_hours integer NOT NULL,
    webhook_id uuid,
    enabled boolean NOT NULL,
    deleted boolean NOT NULL DEFAULT false,
    last_slot timestamptz,
    last_run_at timestamptz,
    created_by text NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    agg_version bigint NOT NULL,
    position bigint NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

CREATE TABLE report_runs (
    tenant_id uuid NOT NULL,
    id uuid NOT NULL,
    report_id uuid NOT NULL,
    trigger text NOT NULL,
    slot timestamptz,
    status text NOT NULL,
    rows integer NOT NULL,
    bytes bigint NOT NULL,
    delivery text NOT NULL,
    detail text NOT NULL,
    window_from timestamptz NOT NULL,
    window_to timestamptz NOT NULL,
    ran_by text NOT NULL,
    ran_at timestamptz NOT NULL,
    position bigint NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX report_runs_recent ON report_runs (tenant_id, report_id, ran_at DESC);

-- What each run produced, kept for download. Written by the run itself before its event is
-- appended, not folded from the log, so a rebuild keeps it.
CREATE TABLE report_outputs (
    tenant_id uuid NOT NULL,
    run_id uuid NOT NULL,
    report_id uuid NOT NULL,
    content_type text NOT NULL,
    content bytea NOT NULL,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, run_id)
);
