-- GitOps observations of executed patch requests (seed 004, BRD §26): how many of a request's
-- watches are still open, and when it was last polled. The watch pass polls what is due here;
-- the observations themselves are read from the request's own history.
ALTER TABLE broker_requests
    ADD COLUMN gitops_open integer NOT NULL DEFAULT 0,
    ADD COLUMN gitops_polled_at timestamptz;

CREATE INDEX broker_requests_gitops_due ON broker_requests (gitops_polled_at NULLS FIRST)
    WHERE gitops_open > 0;
