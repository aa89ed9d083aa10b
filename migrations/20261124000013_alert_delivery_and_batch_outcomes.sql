-- Alerts reach operators: each has a severity, is delivered to ALERT_WEBHOOK_URL by the
-- alert-rules schedule (at least once; the receiver dedupes by alert_id), and a condition that
-- cleared closes its alert by itself (resolved_at, beside the operator's acknowledged_at).
ALTER TABLE alerts
    ADD COLUMN severity            TEXT NOT NULL DEFAULT 'warning' CHECK (severity IN ('critical', 'warning', 'info')),
    ADD COLUMN details             JSONB NOT NULL DEFAULT '{}'::jsonb,
    ADD COLUMN delivered_at        TIMESTAMPTZ,
    ADD COLUMN delivery_attempts   INTEGER NOT NULL DEFAULT 0 CHECK (delivery_attempts >= 0),
    ADD COLUMN last_delivery_error TEXT,
    ADD COLUMN resolved_at         TIMESTAMPTZ,
    -- Closed by itself implies closed.
    ADD CONSTRAINT alerts_resolved_is_closed CHECK (resolved_at IS NULL OR acknowledged_at IS NOT NULL);

-- Kinds may carry digits (client_over_threshold_7d).
ALTER TABLE alerts DROP CONSTRAINT alerts_kind_check,
    ADD CONSTRAINT alerts_kind_check CHECK (kind ~ '^[a-z0-9_]{1,64}$');

UPDATE alerts SET severity = 'critical'
 WHERE kind IN ('payout_batch_failed', 'conversion_batch_failed', 'instant_payout_stopped', 'transfer_unconfirmed');
-- Alerts settled before delivery existed are history, not news.
UPDATE alerts SET delivered_at = raised_at WHERE acknowledged_at IS NOT NULL;

CREATE INDEX alerts_undelivered_idx ON alerts (alert_id) WHERE delivered_at IS NULL;

-- One row per batch outcome, written in the transaction that recorded it, so the metrics
-- `payout_conversions_total{outcome}`, `payout_batches_total{outcome}` and
-- `payout_batch_duration_seconds` count each outcome once however often a step ran, across
-- every worker and restart (a process-local counter would count retried steps twice and
-- forget at each restart). A batch retried after a failure records a second outcome.
CREATE TABLE batch_outcomes (
    outcome_id  BIGSERIAL PRIMARY KEY,
    batch_kind  TEXT NOT NULL CHECK (batch_kind IN ('conversion', 'payout')),
    batch_id    UUID NOT NULL,
    outcome     TEXT NOT NULL CHECK (outcome IN ('completed', 'failed', 'rejected')),
    seconds     NUMERIC(14, 3) NOT NULL CHECK (seconds >= 0),
    recorded_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX batch_outcomes_kind_idx ON batch_outcomes (batch_kind, outcome);
