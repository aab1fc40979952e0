-- Threat-intel enrichment (seed 000's threat_intel_cache). Provider answers are not tenant
-- state and not history: they are cached here, shared by every tenant and instance, and
-- expire (IPs after an hour, domains after a day). Each tenant's lookups are kept for its
-- summary. Neither is rebuilt from the log.
CREATE TABLE threat_intel_cache (
    provider text NOT NULL,
    kind text NOT NULL,
    indicator text NOT NULL,
    result jsonb NOT NULL,
    fetched_at timestamptz NOT NULL,
    PRIMARY KEY (provider, kind, indicator)
);

CREATE TABLE threat_intel_lookups (
    tenant_id uuid NOT NULL,
    id uuid NOT NULL,
    kind text NOT NULL,
    indicator text NOT NULL,
    verdict text NOT NULL,
    score integer,
    looked_up_by text NOT NULL,
    looked_up_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX threat_intel_lookups_recent ON threat_intel_lookups (tenant_id, looked_up_at DESC);
