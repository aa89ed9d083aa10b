-- The hot wallet's outbox. One transfer intent per purpose key (payment, conversion or payout
-- batch) owns exactly one nonce; every signed attempt for it (the first, and fee-bumped
-- replacements) reuses that nonce, so at most one of them can ever land on chain.

CREATE TABLE transfer_intents (
    purpose_key        TEXT PRIMARY KEY CHECK (purpose_key <> ''),
    chain_id           BIGINT NOT NULL,
    from_address       TEXT NOT NULL,
    nonce              BIGINT NOT NULL CHECK (nonce >= 0),
    -- 'ETH', or the ERC-20 contract address for a token transfer.
    asset              TEXT NOT NULL CHECK (asset = 'ETH' OR asset ~ '^0x[0-9a-fA-F]{40}$'),
    -- The beneficiary (for a token transfer: the token recipient, not the contract).
    to_address         TEXT NOT NULL CHECK (to_address ~ '^0x[0-9a-fA-F]{40}$'),
    -- In the asset's base units: wei, or the token's smallest unit (USDT: 10^-6).
    amount_base_units  NUMERIC(78, 0) NOT NULL CHECK (amount_base_units > 0),
    -- Outbox states (activities::ethereum::TransferState): signed -> confirmed | reverted.
    status             TEXT NOT NULL DEFAULT 'signed' CHECK (status IN ('signed', 'confirmed', 'reverted')),
    confirmed_tx_hash  TEXT,
    confirmed_block    BIGINT,
    created_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT transfer_intents_one_nonce UNIQUE (chain_id, from_address, nonce),
    CONSTRAINT transfer_intents_final_has_hash CHECK (status = 'signed' OR confirmed_tx_hash IS NOT NULL)
);

CREATE TABLE transfer_attempts (
    tx_hash                  TEXT PRIMARY KEY,
    purpose_key              TEXT NOT NULL REFERENCES transfer_intents (purpose_key),
    attempt                  INTEGER NOT NULL CHECK (attempt >= 0),
    max_fee_per_gas          NUMERIC(78, 0) NOT NULL,
    max_priority_fee_per_gas NUMERIC(78, 0) NOT NULL,
    gas_limit                BIGINT NOT NULL,
    raw_tx                   BYTEA NOT NULL,   -- signed EIP-2718 bytes, re-sent as they are
    signed_at                TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_broadcast_at        TIMESTAMPTZ,
    CONSTRAINT transfer_attempts_sequence UNIQUE (purpose_key, attempt)
);

CREATE INDEX transfer_intents_open_idx ON transfer_intents (created_at) WHERE status = 'signed';
