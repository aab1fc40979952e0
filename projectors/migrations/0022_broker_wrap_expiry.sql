-- Wraps whose time ran out unretrieved are ended by the expiry pass (wrap.expired.v1), which
-- finds them here, as it finds spent wraps whose key is not yet recorded destroyed
-- (wrap.key_destroyed.v1: a retrieval destroys it just after answering).
ALTER TABLE broker_wraps ADD COLUMN expired_at timestamptz;
ALTER TABLE broker_wraps ADD COLUMN key_destroyed_at timestamptz;
CREATE INDEX broker_wraps_due ON broker_wraps (expires_at)
    WHERE retrieved_at IS NULL AND expired_at IS NULL;
CREATE INDEX broker_wraps_spent ON broker_wraps (tenant_id, id)
    WHERE key_destroyed_at IS NULL AND (retrieved_at IS NOT NULL OR expired_at IS NOT NULL);
