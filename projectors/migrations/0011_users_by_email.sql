-- Login finds the tenants whose users hold an email (emails are unique per tenant).
CREATE INDEX IF NOT EXISTS users_by_email ON users (email);
