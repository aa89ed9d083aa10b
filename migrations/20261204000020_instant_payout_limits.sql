-- Limits (DESIGN.md, "Trust" -> "Limits"): the approval amount (`settings.payout_approval_above_usd`)
-- gates instant payouts as it gates payout batches, and a daily limit per client
-- (`settings.client_daily_payout_limit_usd`, from CLIENT_DAILY_PAYOUT_LIMIT_USD; absent: off) holds
-- whatever payout, instant or batch, would take one client's payouts of the last 24 h above it.
--
-- Instant payout states (workflows::domain::InstantPayoutStatus) add:
--   pending -> awaiting_approval -> pending (approved; approved_at set) | rejected (nothing sent)
ALTER TABLE instant_payouts DROP CONSTRAINT instant_payouts_status_check;
ALTER TABLE instant_payouts ADD CONSTRAINT instant_payouts_status_check CHECK (status IN (
    'pending', 'awaiting_approval', 'held', 'exchange_created', 'sent', 'completed', 'failed', 'refunded', 'rejected'));
-- Why it waits, then why it was rejected.
ALTER TABLE instant_payouts DROP CONSTRAINT instant_payouts_exceptions_have_reason;
ALTER TABLE instant_payouts ADD CONSTRAINT instant_payouts_exceptions_have_reason
    CHECK (status NOT IN ('held', 'failed', 'refunded', 'awaiting_approval', 'rejected') OR reason IS NOT NULL);
-- cleared_at: when the payout passed the limits or was approved; from then on it counts towards
-- its client's day. Rows from before the gate count once they made their exchange.
ALTER TABLE instant_payouts
    ADD COLUMN cleared_at TIMESTAMPTZ,
    ADD COLUMN approved_at TIMESTAMPTZ,
    ADD CONSTRAINT instant_payouts_approved_is_cleared CHECK (approved_at IS NULL OR cleared_at IS NOT NULL);

DROP INDEX instant_payouts_open_idx;
CREATE INDEX instant_payouts_open_idx ON instant_payouts (created_at)
    WHERE status IN ('pending', 'awaiting_approval', 'held', 'exchange_created', 'sent');
-- A client's last 24 h, summed for every payout the limits judge.
CREATE INDEX instant_payouts_client_recent_idx ON instant_payouts (client_id, created_at);
