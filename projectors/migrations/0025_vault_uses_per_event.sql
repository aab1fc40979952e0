-- Value reads are group-committed: one commit may hold several reads of one credential, so a
-- use is the event (position, idx), not the commit. The primary key's name is looked up, since
-- a blue/green rebuild may have swapped in a table whose constraint was named after it.
ALTER TABLE vault_credential_uses ADD COLUMN idx integer NOT NULL DEFAULT 0;
DO $$
DECLARE
    pk text;
BEGIN
    SELECT conname INTO pk FROM pg_constraint
        WHERE conrelid = 'vault_credential_uses'::regclass AND contype = 'p';
    EXECUTE format('ALTER TABLE vault_credential_uses DROP CONSTRAINT %I', pk);
END $$;
ALTER TABLE vault_credential_uses ADD PRIMARY KEY (tenant_id, name, position, idx);
