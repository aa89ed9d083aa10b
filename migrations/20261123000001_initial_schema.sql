-- The payout engine's ledger. Money is NUMERIC (never float); states are text with CHECK
-- constraints that list exactly the variants of the Rust enums that write them.

CREATE TABLE clients (
    client_id                   TEXT PRIMARY KEY CHECK (client_id <> ''),  -- the channel id
    wallet_address              TEXT NOT NULL CHECK (wallet_address <> ''),
    payout_currency             TEXT NOT NULL CHECK (payout_currency ~ '^[a-z0-9]{2,12}$'),
    payout_network              TEXT NOT NULL CHECK (payout_network ~ '^[a-z0-9]{2,20}$'),
    payout_strategy             TEXT NOT NULL CHECK (payout_strategy IN ('instant', 'threshold')),
    payout_threshold_usd        NUMERIC(12, 2) NOT NULL DEFAULT 0,
    payout_threshold_updated_at TIMESTAMPTZ,
    created_at                  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at                  TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- An instant client has no threshold; a threshold client needs one worth a swap.
    CONSTRAINT clients_threshold_matches_strategy CHECK (
        (payout_strategy = 'instant' AND payout_threshold_usd = 0)
        OR (payout_strategy = 'threshold' AND payout_threshold_usd >= 50)
    )
);

CREATE TABLE payments (
    payment_id          BIGINT PRIMARY KEY,          -- NOWPayments' payment_id
    order_id            TEXT NOT NULL,               -- PGP-{user_id}|{client_id}
    user_id             BIGINT NOT NULL,
    client_id           TEXT NOT NULL REFERENCES clients (client_id),
    -- NOWPayments' own status, as last reported (waiting, confirming, confirmed, sending,
    -- partially_paid, finished, failed, refunded, expired; an undocumented one is recorded too).
    payment_status      TEXT NOT NULL CHECK (payment_status ~ '^[a-z_]{1,32}$'),
    -- Our processing state (workflows::domain::PaymentStatus).
    status              TEXT NOT NULL DEFAULT 'received' CHECK (status IN (
                            'received', 'processing', 'accumulated', 'awaiting_instant_payout')),
    price_amount        NUMERIC(30, 8) NOT NULL CHECK (price_amount >= 0),
    price_currency      TEXT NOT NULL,
    pay_amount          NUMERIC(38, 18),
    actually_paid       NUMERIC(38, 18),
    pay_currency        TEXT,
    outcome_amount      NUMERIC(38, 18),
    outcome_currency    TEXT,
    -- Filled by PaymentWorkflow when it takes the fee.
    fee_percent         NUMERIC(9, 6),
    fee_amount_usd      NUMERIC(30, 8),
    net_amount_usd      NUMERIC(30, 8),
    fee_amount_eth      NUMERIC(38, 18),
    net_amount_eth      NUMERIC(38, 18),
    -- The last IPN body exactly as received (its signature can be checked again).
    raw_ipn             TEXT NOT NULL,
    ipn_count           INTEGER NOT NULL DEFAULT 1,
    -- Set once Temporal has accepted PaymentWorkflow; NULL + finished = the re-driver's work.
    workflow_started_at TIMESTAMPTZ,
    received_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    processed_at        TIMESTAMPTZ,
    CONSTRAINT payments_routed_has_fee CHECK (
        status IN ('received', 'processing') OR (net_amount_usd IS NOT NULL AND net_amount_eth IS NOT NULL)
    )
);

CREATE INDEX payments_client_idx ON payments (client_id, received_at);
CREATE INDEX payments_awaiting_workflow_idx ON payments (received_at)
    WHERE payment_status = 'finished' AND workflow_started_at IS NULL;
CREATE INDEX payments_awaiting_instant_payout_idx ON payments (received_at)
    WHERE status = 'awaiting_instant_payout';

CREATE TABLE settings (
    key        TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

INSERT INTO settings (key, value) VALUES ('micro_batch_threshold_usd', '20.00');

CREATE TABLE batch_conversions (
    batch_conversion_id   UUID PRIMARY KEY,
    total_eth_usd         NUMERIC(30, 8) NOT NULL,   -- the pool's net USD value
    total_eth             NUMERIC(38, 18) NOT NULL,  -- the pool's actual ETH
    threshold_at_creation NUMERIC(20, 2) NOT NULL,
    cn_api_id             TEXT,
    payin_address         TEXT,
    conversion_status     TEXT NOT NULL DEFAULT 'pending' CHECK (conversion_status IN (
                              'pending', 'swapping', 'completed', 'failed')),
    actual_usdt_received  NUMERIC(30, 6),
    conversion_tx_hash    TEXT,
    failure_reason        TEXT,
    created_at            TIMESTAMPTZ NOT NULL DEFAULT now(),
    processing_started_at TIMESTAMPTZ,
    completed_at          TIMESTAMPTZ,
    CONSTRAINT batch_conversions_completed_has_usdt CHECK (
        conversion_status <> 'completed' OR actual_usdt_received IS NOT NULL
    )
);

CREATE INDEX batch_conversions_status_idx ON batch_conversions (conversion_status);
CREATE INDEX batch_conversions_cn_api_id_idx ON batch_conversions (cn_api_id);

CREATE TABLE payout_batches (
    batch_id              UUID PRIMARY KEY,
    client_id             TEXT NOT NULL REFERENCES clients (client_id),
    client_wallet_address TEXT NOT NULL,
    client_payout_currency TEXT NOT NULL,
    client_payout_network TEXT NOT NULL,
    total_amount_usdt     NUMERIC(30, 6) NOT NULL,
    total_payments_count  INTEGER NOT NULL,
    payout_amount_crypto  NUMERIC(38, 18),
    usdt_to_crypto_rate   NUMERIC(38, 18),
    conversion_fee        NUMERIC(38, 18),
    cn_api_id             TEXT,
    cn_payin_address      TEXT,
    tx_hash               TEXT,
    tx_status             TEXT,
    status                TEXT NOT NULL DEFAULT 'pending' CHECK (status IN (
                              'pending', 'processing', 'completed', 'failed')),
    failure_reason        TEXT,
    created_at            TIMESTAMPTZ NOT NULL DEFAULT now(),
    processing_started_at TIMESTAMPTZ,
    completed_at          TIMESTAMPTZ
);

CREATE INDEX payout_batches_client_idx ON payout_batches (client_id, created_at);
CREATE INDEX payout_batches_open_idx ON payout_batches (created_at)
    WHERE status IN ('pending', 'processing', 'failed');

CREATE TABLE payout_accumulation (
    id                      BIGSERIAL PRIMARY KEY,
    nowpayments_payment_id  BIGINT NOT NULL UNIQUE REFERENCES payments (payment_id),
    client_id               TEXT NOT NULL REFERENCES clients (client_id),
    user_id                 BIGINT NOT NULL,
    subscription_id         INTEGER,
    -- The original payment.
    payment_amount_usd      NUMERIC(30, 8) NOT NULL,   -- gross, what the subscriber paid
    payment_currency        TEXT NOT NULL,
    payment_timestamp       TIMESTAMPTZ NOT NULL,
    fee_amount_usd          NUMERIC(30, 8) NOT NULL,
    net_amount_usd          NUMERIC(30, 8) NOT NULL CHECK (net_amount_usd >= 0),  -- the value locked for the client
    accumulated_eth         NUMERIC(38, 18) NOT NULL CHECK (accumulated_eth >= 0),  -- the actual ETH behind it, net of fee
    -- ETH -> USDT micro-batch conversion.
    conversion_status       TEXT NOT NULL DEFAULT 'pending' CHECK (conversion_status IN (
                                'pending', 'swapping', 'completed', 'failed')),
    batch_conversion_id     UUID REFERENCES batch_conversions (batch_conversion_id),
    accumulated_amount_usdt NUMERIC(30, 6),
    eth_to_usdt_rate        NUMERIC(38, 18),
    conversion_timestamp    TIMESTAMPTZ,
    conversion_tx_hash      TEXT,
    -- Where the client wanted the money when this payment arrived.
    client_wallet_address   TEXT NOT NULL,
    client_payout_currency  TEXT NOT NULL,
    client_payout_network   TEXT NOT NULL,
    -- Payout.
    is_paid_out             BOOLEAN NOT NULL DEFAULT false,
    payout_batch_id         UUID REFERENCES payout_batches (batch_id),
    paid_out_at             TIMESTAMPTZ,
    created_at              TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at              TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT accumulation_fee_sums CHECK (fee_amount_usd + net_amount_usd = payment_amount_usd),
    CONSTRAINT accumulation_swapping_has_batch CHECK (
        conversion_status = 'pending' OR batch_conversion_id IS NOT NULL
    ),
    CONSTRAINT accumulation_completed_has_usdt CHECK (
        conversion_status <> 'completed' OR accumulated_amount_usdt IS NOT NULL
    ),
    CONSTRAINT accumulation_paid_out_consistent CHECK (
        is_paid_out = (paid_out_at IS NOT NULL)
        AND (NOT is_paid_out OR (conversion_status = 'completed' AND payout_batch_id IS NOT NULL))
    )
);

-- The micro-batch pool: an index-only scan sums it.
CREATE INDEX accumulation_pending_pool_idx ON payout_accumulation (id)
    INCLUDE (net_amount_usd, accumulated_eth)
    WHERE conversion_status = 'pending';
-- Converted, unpaid USDT per payout group: the threshold check.
CREATE INDEX accumulation_unpaid_group_idx ON payout_accumulation
    (client_id, client_wallet_address, client_payout_currency, client_payout_network)
    INCLUDE (accumulated_amount_usdt, created_at)
    WHERE conversion_status = 'completed' AND NOT is_paid_out;
CREATE INDEX accumulation_batch_conversion_idx ON payout_accumulation (batch_conversion_id);
CREATE INDEX accumulation_payout_batch_idx ON payout_accumulation (payout_batch_id);
CREATE INDEX accumulation_client_idx ON payout_accumulation (client_id, created_at);
