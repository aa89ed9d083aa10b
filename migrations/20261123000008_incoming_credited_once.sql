-- One incoming transaction is credited once (issue 10, item 9). The USDT payout a conversion
-- reads from chain completes at most one batch, whatever ChangeNow reports for another exchange;
-- a failed batch may still name the hash it was shown. Hashes are hex: compared in lower case.
CREATE UNIQUE INDEX batch_conversions_payout_credited_once ON batch_conversions (lower(conversion_tx_hash))
    WHERE conversion_status = 'completed';

-- The same for the ETH an instant payout's exchange refunded: one refund transaction counts for
-- one payout.
CREATE UNIQUE INDEX instant_payouts_refund_credited_once ON instant_payouts (lower(refund_hash))
    WHERE status = 'refunded';
