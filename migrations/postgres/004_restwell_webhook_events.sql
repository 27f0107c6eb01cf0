-- The table behind withWebhookEvent() (restwell/webhooks): the event ids a receiver processed,
-- recorded in the application's own transaction. Run once, from your migration tool, or call
-- migrateWebhookEvents(pool) from a deploy step; sweepWebhookEvents() removes old ids.
CREATE TABLE IF NOT EXISTS restwell_webhook_events (
  source       text NOT NULL,
  event_id     text NOT NULL,
  processed_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (source, event_id)
);
CREATE INDEX IF NOT EXISTS restwell_webhook_events_processed_at_idx ON restwell_webhook_events (processed_at);
