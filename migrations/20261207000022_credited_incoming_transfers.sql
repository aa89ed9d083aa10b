-- Money coming back into the hot wallet is credited once (DESIGN: "credit what arrived, once").
-- Every path that counts an incoming transfer (a conversion's USDT, a conversion's refund, a
-- payout part's refund, an instant payout's refund, and the operators' recovery commands) claims
-- it here first, in activities::ethereum::credits: one row per thing that paid the hot wallet
-- (a token Transfer event by its log index, or the transaction's own ETH value as log -1), for
-- one purpose. A claim by another purpose is refused, naming the first.
CREATE TABLE credited_incoming_transfers (
    tx_hash            TEXT NOT NULL CHECK (tx_hash ~ '^0x[0-9a-f]{64}$'),
    -- -1: the ETH value of the transaction; -2: the whole transaction, credited before this table
    -- existed (its parts were not recorded).
    log_index          INTEGER NOT NULL CHECK (log_index >= -2),
    -- 'ETH' or the token contract; NULL only for rows from before this table.
    asset              TEXT,
    sender             TEXT,
    amount_base_units  NUMERIC(78, 0) CHECK (amount_base_units > 0),
    -- What the money counts for: conversion:{batch}, conversion_refund:{batch},
    -- payout_refund:{transfer purpose key}, instant_refund:{payment id}.
    credited_to        TEXT NOT NULL CHECK (credited_to ~ '^(conversion|conversion_refund|payout_refund|instant_refund):.+$'),
    credited_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (tx_hash, log_index),
    CONSTRAINT credited_incoming_transfers_parts_complete CHECK (
        log_index = -2 OR (asset IS NOT NULL AND sender IS NOT NULL AND amount_base_units IS NOT NULL))
);
CREATE INDEX credited_incoming_transfers_purpose_idx ON credited_incoming_transfers (credited_to);

-- What the ledger already counted before: each such transaction stays with what it counted for.
INSERT INTO credited_incoming_transfers (tx_hash, log_index, credited_to)
SELECT DISTINCT ON (lower(conversion_tx_hash)) lower(conversion_tx_hash), -2, 'conversion:' || batch_conversion_id
FROM batch_conversions
WHERE conversion_status = 'completed' AND lower(conversion_tx_hash) ~ '^0x[0-9a-f]{64}$'
ON CONFLICT DO NOTHING;
INSERT INTO credited_incoming_transfers (tx_hash, log_index, credited_to)
SELECT DISTINCT ON (lower(refund_tx_hash)) lower(refund_tx_hash), -2, 'conversion_refund:' || batch_conversion_id
FROM batch_conversions
WHERE rows_released AND lower(refund_tx_hash) ~ '^0x[0-9a-f]{64}$'
ON CONFLICT DO NOTHING;
INSERT INTO credited_incoming_transfers (tx_hash, log_index, credited_to)
SELECT DISTINCT ON (lower(refund_hash)) lower(refund_hash), -2, 'instant_refund:' || payment_id
FROM instant_payouts
WHERE status = 'refunded' AND lower(refund_hash) ~ '^0x[0-9a-f]{64}$'
ON CONFLICT DO NOTHING;

-- The table above now says what a refund counted for. An instant payout keeps the refund hash
-- ChangeNow reported even when it did not count (its reason says why), so two payouts may name
-- one hash.
DROP INDEX instant_payouts_refund_credited_once;
