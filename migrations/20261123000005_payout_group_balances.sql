-- The over-threshold check reads one row per payout group instead of aggregating every unpaid
-- accumulation row (1,000,000 unpaid rows: most of a second as a GROUP BY, milliseconds here),
-- and needs no join: the group's threshold is kept beside its balance.
-- Triggers keep it exact: a row counts while it is converted, unpaid and in no batch, i.e.
-- exactly the rows `db.claim_payout_batch` would claim; the threshold follows the client's.

CREATE TABLE payout_group_balances (
    client_id              TEXT NOT NULL,
    client_wallet_address  TEXT NOT NULL,
    client_payout_currency TEXT NOT NULL,
    client_payout_network  TEXT NOT NULL,
    unpaid_usdt            NUMERIC(30, 6) NOT NULL CHECK (unpaid_usdt >= 0),
    unpaid_rows            INTEGER NOT NULL CHECK (unpaid_rows >= 0),
    oldest_unpaid_at       TIMESTAMPTZ,
    -- The client's threshold; 0 once it is an instant client, so what it accumulated before
    -- the switch is paid at the next check.
    due_at_usdt            NUMERIC(12, 2) NOT NULL,
    PRIMARY KEY (client_id, client_wallet_address, client_payout_currency, client_payout_network),
    CONSTRAINT payout_group_balances_empty_is_zero CHECK (
        unpaid_rows > 0 OR (unpaid_usdt = 0 AND oldest_unpaid_at IS NULL)
    )
)
-- Every accumulation change updates one of these few rows. With no index on the columns that
-- change and room left in each page, those are HOT updates, pruned in place, so the table stays
-- one row per group without waiting for VACUUM (the check reads it whole).
WITH (fillfactor = 50);

CREATE FUNCTION client_due_at_usdt(client TEXT) RETURNS NUMERIC LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN payout_strategy = 'threshold' THEN payout_threshold_usd ELSE 0 END
      FROM clients WHERE client_id = client
$$;

CREATE FUNCTION payout_group_balances_sync() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    was_claimable BOOLEAN := false;
    is_claimable  BOOLEAN := false;
BEGIN
    IF TG_OP <> 'INSERT' THEN
        was_claimable := OLD.conversion_status = 'completed' AND NOT OLD.is_paid_out AND OLD.payout_batch_id IS NULL;
    END IF;
    IF TG_OP <> 'DELETE' THEN
        is_claimable := NEW.conversion_status = 'completed' AND NOT NEW.is_paid_out AND NEW.payout_batch_id IS NULL;
    END IF;
    IF was_claimable AND is_claimable
       AND (OLD.client_id, OLD.client_wallet_address, OLD.client_payout_currency, OLD.client_payout_network,
            OLD.accumulated_amount_usdt, OLD.created_at)
         = (NEW.client_id, NEW.client_wallet_address, NEW.client_payout_currency, NEW.client_payout_network,
            NEW.accumulated_amount_usdt, NEW.created_at) THEN
        RETURN NULL;
    END IF;
    IF was_claimable THEN
        -- Lock the balance first: the recount of the oldest row below is then a new statement
        -- whose snapshot includes whatever a concurrent transaction committed to the group
        -- while this one waited. (AFTER ROW triggers run at the end of the statement, so the
        -- recount also sees this statement's own changes: once per claim, not once per row.)
        PERFORM 1 FROM payout_group_balances b
          WHERE (b.client_id, b.client_wallet_address, b.client_payout_currency, b.client_payout_network)
              = (OLD.client_id, OLD.client_wallet_address, OLD.client_payout_currency, OLD.client_payout_network)
          FOR UPDATE;
        UPDATE payout_group_balances b
           SET unpaid_usdt = b.unpaid_usdt - OLD.accumulated_amount_usdt,
               unpaid_rows = b.unpaid_rows - 1,
               oldest_unpaid_at = CASE
                   WHEN b.unpaid_rows = 1 THEN NULL
                   WHEN b.oldest_unpaid_at = OLD.created_at THEN (
                       SELECT min(a.created_at) FROM payout_accumulation a
                        WHERE a.client_id = OLD.client_id AND a.client_wallet_address = OLD.client_wallet_address
                          AND a.client_payout_currency = OLD.client_payout_currency
                          AND a.client_payout_network = OLD.client_payout_network
                          AND a.conversion_status = 'completed' AND NOT a.is_paid_out AND a.payout_batch_id IS NULL)
                   ELSE b.oldest_unpaid_at END
         WHERE (b.client_id, b.client_wallet_address, b.client_payout_currency, b.client_payout_network)
             = (OLD.client_id, OLD.client_wallet_address, OLD.client_payout_currency, OLD.client_payout_network);
    END IF;
    IF is_claimable THEN
        INSERT INTO payout_group_balances AS b (client_id, client_wallet_address, client_payout_currency,
                                                client_payout_network, unpaid_usdt, unpaid_rows, oldest_unpaid_at,
                                                due_at_usdt)
        VALUES (NEW.client_id, NEW.client_wallet_address, NEW.client_payout_currency, NEW.client_payout_network,
                NEW.accumulated_amount_usdt, 1, NEW.created_at, client_due_at_usdt(NEW.client_id))
        ON CONFLICT (client_id, client_wallet_address, client_payout_currency, client_payout_network) DO UPDATE
            SET unpaid_usdt = b.unpaid_usdt + EXCLUDED.unpaid_usdt,
                unpaid_rows = b.unpaid_rows + 1,
                oldest_unpaid_at = LEAST(b.oldest_unpaid_at, EXCLUDED.oldest_unpaid_at);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER payout_group_balances_sync
    AFTER INSERT OR UPDATE OR DELETE ON payout_accumulation
    FOR EACH ROW EXECUTE FUNCTION payout_group_balances_sync();

CREATE FUNCTION payout_group_balances_follow_client() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE payout_group_balances SET due_at_usdt = client_due_at_usdt(NEW.client_id)
     WHERE client_id = NEW.client_id;
    RETURN NULL;
END $$;

CREATE TRIGGER payout_group_balances_follow_client
    AFTER UPDATE OF payout_threshold_usd, payout_strategy ON clients
    FOR EACH ROW EXECUTE FUNCTION payout_group_balances_follow_client();

INSERT INTO payout_group_balances (client_id, client_wallet_address, client_payout_currency, client_payout_network,
                                   unpaid_usdt, unpaid_rows, oldest_unpaid_at, due_at_usdt)
SELECT client_id, client_wallet_address, client_payout_currency, client_payout_network,
       sum(accumulated_amount_usdt), count(*), min(created_at), client_due_at_usdt(client_id)
  FROM payout_accumulation
 WHERE conversion_status = 'completed' AND NOT is_paid_out AND payout_batch_id IS NULL
 GROUP BY client_id, client_wallet_address, client_payout_currency, client_payout_network;
