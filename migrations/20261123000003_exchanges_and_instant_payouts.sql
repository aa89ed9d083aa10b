-- ChangeNow exchanges, created once per purpose key (a payment's instant payout, a conversion,
-- a payout batch) and reused on every retry: an activity that finds the row never asks
-- ChangeNow for a second exchange.

CREATE TABLE changenow_exchanges (
    purpose_key          TEXT PRIMARY KEY CHECK (purpose_key <> ''),
    exchange_id          TEXT NOT NULL UNIQUE,
    from_currency        TEXT NOT NULL,
    from_network         TEXT NOT NULL,
    to_currency          TEXT NOT NULL,
    to_network           TEXT NOT NULL,
    from_amount          NUMERIC(38, 18) NOT NULL CHECK (from_amount > 0),
    expected_to_amount   NUMERIC(38, 18),
    payin_address        TEXT NOT NULL,
    payout_address       TEXT NOT NULL,
    -- ChangeNow's status as last seen, as it sent it: ChangeNow may add statuses, and an
    -- unexpected one must be stored (and alerted on), never refused.
    status               TEXT NOT NULL CHECK (status <> '' AND length(status) <= 64),
    amount_from          NUMERIC(38, 18),
    amount_to            NUMERIC(38, 18),
    payin_hash           TEXT,
    payout_hash          TEXT,
    refund_hash          TEXT,
    refund_amount        NUMERIC(38, 18),
    created_at           TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at           TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- One instant payout per payment (workflows::domain::InstantPayoutStatus):
--   pending -> exchange_created -> sent -> completed | failed | refunded
--   pending -> held       (below ChangeNow's minimum; waits for an operator)
--   pending | exchange_created -> failed   (rejected before any ETH left the wallet)
CREATE TABLE instant_payouts (
    payment_id          BIGINT PRIMARY KEY REFERENCES payments (payment_id),
    client_id           TEXT NOT NULL REFERENCES clients (client_id),
    status              TEXT NOT NULL DEFAULT 'pending' CHECK (status IN (
                            'pending', 'held', 'exchange_created', 'sent', 'completed', 'failed', 'refunded')),
    amount_eth          NUMERIC(38, 18) NOT NULL CHECK (amount_eth > 0),
    payout_currency     TEXT NOT NULL,
    payout_network      TEXT NOT NULL,
    wallet_address      TEXT NOT NULL,
    exchange_id         TEXT REFERENCES changenow_exchanges (exchange_id),
    payin_tx_hash       TEXT,
    amount_received     NUMERIC(38, 18),
    payout_hash         TEXT,
    refund_hash         TEXT,
    refund_amount       NUMERIC(38, 18),
    reason              TEXT,
    created_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT instant_payouts_sent_has_tx CHECK (status NOT IN ('sent', 'completed') OR payin_tx_hash IS NOT NULL),
    CONSTRAINT instant_payouts_completed_has_amount CHECK (status <> 'completed' OR amount_received IS NOT NULL),
    CONSTRAINT instant_payouts_exceptions_have_reason CHECK (status NOT IN ('held', 'failed', 'refunded') OR reason IS NOT NULL)
);

CREATE INDEX instant_payouts_open_idx ON instant_payouts (created_at)
    WHERE status IN ('pending', 'held', 'exchange_created', 'sent');
