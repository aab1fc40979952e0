-- Seed 000's `users.is_platform_admin`: a user the platform admin made a platform admin.
ALTER TABLE users ADD COLUMN is_platform_admin boolean NOT NULL DEFAULT false;
