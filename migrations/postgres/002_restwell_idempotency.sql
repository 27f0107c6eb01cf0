-- The table behind withIdempotency() (restwell/idempotency/postgres). Run once, from your
-- migration tool, or call migrateIdempotency(pool) from a deploy step.
CREATE TABLE IF NOT EXISTS restwell_idempotency (
  scope        text NOT NULL,
  key          text NOT NULL,
  fingerprint  text NOT NULL,
  result       jsonb,
  created_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (scope, key)
);
CREATE INDEX IF NOT EXISTS restwell_idempotency_created_at_idx ON restwell_idempotency (created_at);
