-- The tables behind PostgresDeliveryLog, PostgresEndpointStore and the outbox (restwell/webhooks).
-- Run once, from your migration tool, or call migrateWebhookDelivery(pool) from a deploy step.
-- restwell_webhook_delivery_endpoints holds each endpoint's signing secrets, as given, in its
-- `secrets` column: protect the table as a secret, and encrypt it at rest where you need to.
CREATE TABLE IF NOT EXISTS restwell_webhook_delivery_events (
  id         text PRIMARY KEY,
  type       text NOT NULL,
  created_at timestamptz NOT NULL,
  event      json NOT NULL
);
CREATE INDEX IF NOT EXISTS restwell_webhook_delivery_events_created_at_idx ON restwell_webhook_delivery_events (created_at);
CREATE TABLE IF NOT EXISTS restwell_webhook_delivery_deliveries (
  id               text PRIMARY KEY,
  seq              bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
  event_id         text NOT NULL,
  event_type       text NOT NULL,
  event_created_at timestamptz NOT NULL,
  endpoint_id      text NOT NULL,
  version          text,
  status           text NOT NULL,
  generation       integer NOT NULL,
  attempts         integer NOT NULL,
  total_attempts   integer NOT NULL,
  next_attempt_at  timestamptz,
  dead_reason      text,
  last_status      integer,
  last_failure     text,
  test             boolean NOT NULL DEFAULT false,
  created_at       timestamptz NOT NULL,
  updated_at       timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS restwell_webhook_delivery_deliveries_created_idx ON restwell_webhook_delivery_deliveries (created_at, seq);
CREATE INDEX IF NOT EXISTS restwell_webhook_delivery_deliveries_endpoint_status_idx ON restwell_webhook_delivery_deliveries (endpoint_id, status);
CREATE INDEX IF NOT EXISTS restwell_webhook_delivery_deliveries_status_updated_idx ON restwell_webhook_delivery_deliveries (status, updated_at);
CREATE INDEX IF NOT EXISTS restwell_webhook_delivery_deliveries_event_idx ON restwell_webhook_delivery_deliveries (event_id);
CREATE TABLE IF NOT EXISTS restwell_webhook_delivery_attempts (
  seq              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  delivery_id      text NOT NULL,
  event_id         text NOT NULL,
  event_type       text NOT NULL,
  endpoint_id      text NOT NULL,
  version          text,
  generation       integer NOT NULL,
  attempt          integer NOT NULL,
  at               timestamptz NOT NULL,
  duration_ms      double precision NOT NULL,
  ok               boolean NOT NULL,
  status           integer,
  failure          text,
  message          text,
  response_excerpt text,
  test             boolean NOT NULL DEFAULT false
);
CREATE INDEX IF NOT EXISTS restwell_webhook_delivery_attempts_at_idx ON restwell_webhook_delivery_attempts (at, seq);
CREATE INDEX IF NOT EXISTS restwell_webhook_delivery_attempts_endpoint_at_idx ON restwell_webhook_delivery_attempts (endpoint_id, at, seq);
CREATE INDEX IF NOT EXISTS restwell_webhook_delivery_attempts_delivery_idx ON restwell_webhook_delivery_attempts (delivery_id);
CREATE INDEX IF NOT EXISTS restwell_webhook_delivery_attempts_event_idx ON restwell_webhook_delivery_attempts (event_id);
CREATE TABLE IF NOT EXISTS restwell_webhook_delivery_endpoints (
  id         text PRIMARY KEY,
  record     json NOT NULL,
  secrets    json NOT NULL,
  created_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL
);
CREATE TABLE IF NOT EXISTS restwell_webhook_delivery_outbox (
  seq          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  event_id     text NOT NULL,
  event        json NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  available_at timestamptz NOT NULL DEFAULT now(),
  attempts     integer NOT NULL DEFAULT 0,
  last_error   text
);
CREATE INDEX IF NOT EXISTS restwell_webhook_delivery_outbox_available_idx ON restwell_webhook_delivery_outbox (available_at, seq);
CREATE TABLE IF NOT EXISTS restwell_webhook_delivery_meta (
  name  text PRIMARY KEY,
  value text NOT NULL
);
