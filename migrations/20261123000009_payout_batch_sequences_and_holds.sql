-- Payout batch ids are business ids: a UUIDv5 of the payout group and the group's sequence
-- number (`PayoutGroup::batch_id`), chosen by `db.claim_next_payout_batch`. A run that is reset or
-- restarted and claims again finds its group's open batch instead of stranding it under a random id.
-- Batches from before carry no sequence.
ALTER TABLE payout_batches
    ADD COLUMN group_sequence INTEGER CHECK (group_sequence > 0),
    -- Set by an operator's retry: the batch then belongs to its own run (`payout-batch-{id}`), and
    -- the group's run never takes it over.
    ADD COLUMN reopened_at    TIMESTAMPTZ;

CREATE UNIQUE INDEX payout_batches_group_sequence_idx ON payout_batches
    (client_id, client_wallet_address, client_payout_currency, client_payout_network, group_sequence)
    WHERE group_sequence IS NOT NULL;

-- The sweep's search for batches left `processing` by a run that ended.
CREATE INDEX payout_batches_processing_idx ON payout_batches (processing_started_at) WHERE status = 'processing';

-- Payout groups ChangeNow cannot pay: their unpaid USDT is below its minimum for the pair (a
-- client switched to instant with a few dollars left, a 90-day payout of a few dollars). The sweep
-- leaves such a group alone until its unpaid USDT reaches the minimum recorded here, instead of
-- claiming it into a new failed batch with a new alert every 5 minutes; one alert per group stays
-- open meanwhile. A completed payout of the group removes its hold.
CREATE TABLE payout_group_holds (
    client_id              TEXT NOT NULL,
    client_wallet_address  TEXT NOT NULL,
    client_payout_currency TEXT NOT NULL,
    client_payout_network  TEXT NOT NULL,
    minimum_usdt           NUMERIC(30, 6) NOT NULL CHECK (minimum_usdt > 0),
    -- The failed batch that found it.
    batch_id               UUID NOT NULL REFERENCES payout_batches (batch_id),
    reason                 TEXT NOT NULL,
    held_at                TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (client_id, client_wallet_address, client_payout_currency, client_payout_network)
);
