-- Payments are routed only on NOWPayments' own record (GET /v1/payment/{id}); the IPN is the
-- trigger. A payment NOWPayments does not confirm as finished ends 'unverified' and is never paid.
ALTER TABLE payments DROP CONSTRAINT payments_status_check;
ALTER TABLE payments ADD CONSTRAINT payments_status_check CHECK (status IN (
    'received', 'processing', 'accumulated', 'awaiting_instant_payout', 'unverified'));
ALTER TABLE payments DROP CONSTRAINT payments_routed_has_fee;
ALTER TABLE payments ADD CONSTRAINT payments_routed_has_fee CHECK (
    status IN ('received', 'processing', 'unverified') OR (net_amount_usd IS NOT NULL AND net_amount_eth IS NOT NULL)
);

-- The facts of NOWPayments' record the payment was judged on, and when it was read.
ALTER TABLE payments ADD COLUMN nowpayments_record JSONB;
ALTER TABLE payments ADD COLUMN verified_at TIMESTAMPTZ;
-- Why a payment is unverified, in words an operator acts on.
ALTER TABLE payments ADD COLUMN unverified_reason TEXT;
ALTER TABLE payments ADD CONSTRAINT payments_unverified_has_reason CHECK (status <> 'unverified' OR unverified_reason IS NOT NULL);
