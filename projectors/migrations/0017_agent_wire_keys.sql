-- Seed 004: the wire key an agent registered, by fingerprint (the key itself stays on the log).
ALTER TABLE agents ADD COLUMN wire_key_fingerprint text;
