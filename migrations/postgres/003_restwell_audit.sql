-- The table behind postgresSink() (restwell/audit). Run once, from your migration tool,
-- or call migrateAudit(pool) from a deploy step.
CREATE TABLE IF NOT EXISTS restwell_audit (
  log        text NOT NULL,
  seq        bigint NOT NULL,
  hash       text NOT NULL,
  record     text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (log, seq)
);
