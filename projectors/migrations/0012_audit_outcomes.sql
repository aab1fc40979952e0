-- Seed 001's view of the vault's events in the audit log: the document's action name
-- (`applied`, `rotated`, `read`, ...), who asked for it (an apply's `requested_by`), what it
-- acted on (an apply's workflow and node), and whether it succeeded (a failed rotation is
-- `rotated` with success false). Rows written before this migration keep NULLs and true
-- until `aegis rebuild audit`.
ALTER TABLE audit_events
    ADD COLUMN vault_action text,
    ADD COLUMN requested_by text,
    ADD COLUMN target text,
    ADD COLUMN success boolean NOT NULL DEFAULT true;
CREATE INDEX audit_events_vault_action ON audit_events (tenant_id, vault_action, position DESC)
    WHERE vault_action IS NOT NULL;
