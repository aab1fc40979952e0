-- When a user last logged in (user.logged_in.v1); rebuildable like the rest of users.
ALTER TABLE users ADD COLUMN last_login_at timestamptz;
