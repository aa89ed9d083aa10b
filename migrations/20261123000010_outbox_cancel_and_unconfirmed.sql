-- Transfers whose run is gone, and transfers slower than their run's deadline.
--
-- An intent signed but never broadcast, whose run ended (its send step gave up or the run was
-- terminated), is cancelled: the outbox signs a 0-value transfer from the hot wallet to itself at
-- the intent's nonce, as one more attempt. Exactly one attempt can take the nonce; if it is the
-- cancellation, the intent ends `cancelled` and its value never left (the reservation is freed
-- and later nonces go through). Outbox states: signed -> confirmed | reverted | cancelled.
ALTER TABLE transfer_intents DROP CONSTRAINT transfer_intents_status_check;
ALTER TABLE transfer_intents ADD CONSTRAINT transfer_intents_status_check
    CHECK (status IN ('signed', 'confirmed', 'reverted', 'cancelled'));

-- Set when the transfer outlived its run's deadline without its confirmations: it was sent and may
-- still land, so it is not a failure; the run keeps waiting and the outbox watch keeps checking.
ALTER TABLE transfer_intents ADD COLUMN unconfirmed_since TIMESTAMPTZ;

ALTER TABLE transfer_attempts ADD COLUMN cancels BOOLEAN NOT NULL DEFAULT false;
