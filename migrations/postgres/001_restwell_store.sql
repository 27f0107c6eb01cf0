-- The table behind PostgresStore (restwell/postgres). Run once, from your migration tool,
-- or call migrate(pool) from a deploy step. The application never creates it on its own.
CREATE TABLE IF NOT EXISTS restwell_store (
  key        text PRIMARY KEY,
  value      text NOT NULL,
  expires_at timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS restwell_store_expires_at_idx ON restwell_store (expires_at);
