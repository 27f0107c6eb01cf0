-- The table behind PostgresApiKeyStore (restwell/auth/postgres). Run once, from your migration tool,
-- or call migrateApiKeys(pool) from a deploy step. It holds each key's SHA-256, never the key.
CREATE TABLE IF NOT EXISTS restwell_api_keys (
  id          text PRIMARY KEY,
  hash        text NOT NULL,
  subject     text NOT NULL,
  name        text,
  roles       text[] NOT NULL DEFAULT '{}',
  scopes      text[] NOT NULL DEFAULT '{}',
  tenant      text,
  allowed_ips text[],
  created_at  timestamptz NOT NULL DEFAULT now(),
  expires_at  timestamptz,
  revoked_at  timestamptz
);
CREATE INDEX IF NOT EXISTS restwell_api_keys_subject_idx ON restwell_api_keys (subject);
