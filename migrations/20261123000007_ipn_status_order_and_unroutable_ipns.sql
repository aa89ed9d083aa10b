-- Intake keeps every signed IPN: late money is paid, and an IPN for a client we do not know
-- (yet) is kept for an operator instead of being dropped.

-- Whether the stored NOWPayments status of a payment stays when another IPN for it arrives.
-- `finished` and `refunded` settle the payment: nothing changes them. `failed` and `expired`
-- give way only to those two, since money that arrives after NOWPayments gave up is still the
-- subscriber's payment (a `finished` after `failed` is paid). Any other status is replaced by
-- the newer IPN. One function, so `payments` and `unroutable_ipns` apply the same order.
CREATE FUNCTION ipn_status_stays(stored TEXT, incoming TEXT) RETURNS BOOLEAN
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT stored IN ('finished', 'refunded')
        OR (stored IN ('failed', 'expired') AND incoming NOT IN ('finished', 'refunded'))
$$;

-- Correctly signed IPNs whose order id names no registered client. `payments` cannot hold them
-- (its client_id is a foreign key), and refusing them alone would lose NOWPayments' word that
-- money arrived. An alert is raised with each; `starter payment route <payment_id>` moves the
-- IPN into `payments` once the client exists, and starts its workflow as the webhook would.
CREATE TABLE unroutable_ipns (
    payment_id     BIGINT PRIMARY KEY,       -- NOWPayments' payment_id
    client_id      TEXT NOT NULL,            -- as named by the order id; unknown when stored
    payment_status TEXT NOT NULL CHECK (payment_status ~ '^[a-z_]{1,32}$'),
    -- The body as received (its signature was checked), kept by the same status order as
    -- `payments.raw_ipn`; routing parses it again.
    raw_ipn        TEXT NOT NULL,
    ipn_count      INTEGER NOT NULL DEFAULT 1,
    received_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- Set when the IPN was moved into `payments`; the row stays as the record of it.
    routed_at      TIMESTAMPTZ
);

CREATE INDEX unroutable_ipns_open_idx ON unroutable_ipns (received_at) WHERE routed_at IS NULL;
