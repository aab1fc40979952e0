-- A claim's candidates are the oldest queued jobs and the jobs whose lease ran out. One index over
-- both statuses had every claim walk past the jobs claimed ahead of it (their leases still live),
-- a cost that grew with the work in flight; each half now has its own index.
DROP INDEX IF EXISTS broker_jobs_claimable;
CREATE INDEX broker_jobs_queued ON broker_jobs (tenant_id, enqueued_at, id) WHERE status = 'queued';
CREATE INDEX broker_jobs_leased ON broker_jobs (tenant_id, lease_expires_at) WHERE status = 'claimed';
