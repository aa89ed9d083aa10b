-- Bounded conversion batches (issue 10): a batch claims the oldest pending rows up to a row
-- limit and ChangeNow's maximum, records how many it holds, and the pool's totals are kept in
-- one row instead of being summed over every pending row on each run.

ALTER TABLE batch_conversions
    ADD COLUMN row_count           INTEGER CHECK (row_count >= 0),
    -- The refund ChangeNow reported and what of it was seen on chain: rows go back to the pool
    -- only for a refund of the full amount.
    ADD COLUMN refund_tx_hash      TEXT,
    ADD COLUMN refund_amount_eth   NUMERIC(38, 18) CHECK (refund_amount_eth >= 0),
    ADD COLUMN rows_released       BOOLEAN NOT NULL DEFAULT false;

UPDATE batch_conversions b SET row_count = (
    SELECT count(*) FROM payout_accumulation a WHERE a.batch_conversion_id = b.batch_conversion_id);

-- The pending pool in one row. 1,000,000 pending rows took 105 ms to sum (an index-only scan
-- of every row); reading this row is constant time. Statement-level triggers keep it exact:
-- a claim of 10,000 rows updates it once, and statements that touch no pending row (payouts
-- marking rows paid) do not write it at all.
CREATE TABLE conversion_pool_totals (
    singleton    BOOLEAN PRIMARY KEY DEFAULT true CHECK (singleton),
    pending_rows BIGINT NOT NULL CHECK (pending_rows >= 0),
    pending_usd  NUMERIC(38, 8) NOT NULL CHECK (pending_usd >= 0),
    pending_eth  NUMERIC(48, 18) NOT NULL CHECK (pending_eth >= 0)
);

INSERT INTO conversion_pool_totals (pending_rows, pending_usd, pending_eth)
SELECT count(*), COALESCE(sum(net_amount_usd), 0), COALESCE(sum(accumulated_eth), 0)
  FROM payout_accumulation WHERE conversion_status = 'pending';

CREATE FUNCTION conversion_pool_totals_add(d_rows BIGINT, d_usd NUMERIC, d_eth NUMERIC) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF d_rows <> 0 OR d_usd <> 0 OR d_eth <> 0 THEN
        UPDATE conversion_pool_totals
           SET pending_rows = pending_rows + d_rows, pending_usd = pending_usd + d_usd,
               pending_eth = pending_eth + d_eth;
    END IF;
END $$;

CREATE FUNCTION conversion_pool_totals_on_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM conversion_pool_totals_add(count(*), COALESCE(sum(net_amount_usd), 0), COALESCE(sum(accumulated_eth), 0))
       FROM inserted WHERE conversion_status = 'pending';
    RETURN NULL;
END $$;

CREATE FUNCTION conversion_pool_totals_on_update() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    n_new BIGINT; usd_new NUMERIC; eth_new NUMERIC;
    n_old BIGINT; usd_old NUMERIC; eth_old NUMERIC;
BEGIN
    SELECT count(*), COALESCE(sum(net_amount_usd), 0), COALESCE(sum(accumulated_eth), 0)
      INTO n_new, usd_new, eth_new FROM updated_new WHERE conversion_status = 'pending';
    SELECT count(*), COALESCE(sum(net_amount_usd), 0), COALESCE(sum(accumulated_eth), 0)
      INTO n_old, usd_old, eth_old FROM updated_old WHERE conversion_status = 'pending';
    PERFORM conversion_pool_totals_add(n_new - n_old, usd_new - usd_old, eth_new - eth_old);
    RETURN NULL;
END $$;

CREATE FUNCTION conversion_pool_totals_on_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM conversion_pool_totals_add(-count(*), -COALESCE(sum(net_amount_usd), 0), -COALESCE(sum(accumulated_eth), 0))
       FROM deleted WHERE conversion_status = 'pending';
    RETURN NULL;
END $$;

-- Transition tables allow one event per trigger, hence three.
CREATE TRIGGER conversion_pool_totals_insert AFTER INSERT ON payout_accumulation
    REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT EXECUTE FUNCTION conversion_pool_totals_on_insert();
CREATE TRIGGER conversion_pool_totals_update AFTER UPDATE ON payout_accumulation
    REFERENCING OLD TABLE AS updated_old NEW TABLE AS updated_new
    FOR EACH STATEMENT EXECUTE FUNCTION conversion_pool_totals_on_update();
CREATE TRIGGER conversion_pool_totals_delete AFTER DELETE ON payout_accumulation
    REFERENCING OLD TABLE AS deleted FOR EACH STATEMENT EXECUTE FUNCTION conversion_pool_totals_on_delete();
