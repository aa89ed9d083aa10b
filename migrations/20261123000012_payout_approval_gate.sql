-- BTCPay's AwaitingApproval: a payout batch above `settings.payout_approval_above_usd` (absent:
-- off; `PAYOUT_APPROVAL_ABOVE_USD` sets it when the worker starts) is claimed `awaiting_approval`
-- with its rows and waits for an operator's `approve` or `reject` signal to its run. Approved, it is
-- paid (`processing`); rejected, it ends `rejected` with the reason and its rows are released.
-- Payout batch states: processing | awaiting_approval -> processing -> completed | failed;
-- awaiting_approval -> rejected.
ALTER TABLE payout_batches DROP CONSTRAINT payout_batches_status_check;
ALTER TABLE payout_batches ADD CONSTRAINT payout_batches_status_check CHECK (status IN (
    'pending', 'processing', 'completed', 'failed', 'awaiting_approval', 'rejected'));
ALTER TABLE payout_batches ADD COLUMN approved_at TIMESTAMPTZ;
ALTER TABLE payout_batches ADD CONSTRAINT payout_batches_rejected_has_reason
    CHECK (status <> 'rejected' OR failure_reason IS NOT NULL);
