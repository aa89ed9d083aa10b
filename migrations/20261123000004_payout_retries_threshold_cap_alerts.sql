-- Operator retries of payout batches, the configurable cap on client thresholds, and the
-- durable alert channel.

-- A retried batch keeps its id: its exchanges and transfers are found again under the same
-- purpose keys, and each retry allows one more attempt per exchange whose USDT came back.
-- The cut into exchanges is stored once, so a retry re-sends exactly the same parts.
ALTER TABLE payout_batches
    ADD COLUMN retries        INTEGER NOT NULL DEFAULT 0 CHECK (retries >= 0),
    ADD COLUMN rows_released  BOOLEAN NOT NULL DEFAULT false,
    ADD COLUMN exchange_parts NUMERIC(30, 6)[];

-- The largest threshold a client may pick (the seeds: $1,000-2,000; a higher one means
-- payouts large enough to hit ChangeNow's limits). Data, so it changes without a deploy:
-- `starter threshold set-client-max`.
INSERT INTO settings (key, value) VALUES ('max_client_threshold_usd', '2000.00');

CREATE FUNCTION max_client_threshold_usd() RETURNS NUMERIC LANGUAGE sql STABLE AS $$
    SELECT COALESCE((SELECT value::numeric FROM settings WHERE key = 'max_client_threshold_usd'), 2000)
$$;

-- A CHECK constraint cannot read another table, so the cap is a trigger on both sides: no
-- client above the cap, and no cap below an existing client.
CREATE FUNCTION clients_threshold_within_max() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.payout_strategy = 'threshold' AND NEW.payout_threshold_usd > max_client_threshold_usd() THEN
        RAISE EXCEPTION 'threshold % USD of client % is above the maximum of % USD',
            NEW.payout_threshold_usd, NEW.client_id, max_client_threshold_usd()
            USING ERRCODE = 'check_violation', CONSTRAINT = 'clients_threshold_within_max';
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER clients_threshold_within_max
    BEFORE INSERT OR UPDATE OF payout_threshold_usd, payout_strategy ON clients
    FOR EACH ROW EXECUTE FUNCTION clients_threshold_within_max();

CREATE FUNCTION settings_client_max_covers_clients() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    above INTEGER;
BEGIN
    IF NEW.key = 'max_client_threshold_usd' THEN
        IF NEW.value !~ '^[0-9]+(\.[0-9]{1,2})?$' OR NEW.value::numeric < 50 THEN
            RAISE EXCEPTION 'max_client_threshold_usd must be a USD amount of at least 50, got %', NEW.value
                USING ERRCODE = 'check_violation';
        END IF;
        SELECT count(*) INTO above FROM clients
            WHERE payout_strategy = 'threshold' AND payout_threshold_usd > NEW.value::numeric;
        IF above > 0 THEN
            RAISE EXCEPTION '% threshold clients are above % USD; lower their thresholds first', above, NEW.value
                USING ERRCODE = 'check_violation';
        END IF;
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER settings_client_max_covers_clients
    BEFORE INSERT OR UPDATE ON settings
    FOR EACH ROW EXECUTE FUNCTION settings_client_max_covers_clients();

-- Alerts are rows first (written in the same transaction as the state that caused them, so
-- none is lost or doubled), read with `starter alerts`, and acknowledged by an operator.
CREATE TABLE alerts (
    alert_id        BIGSERIAL PRIMARY KEY,
    -- One alert per event however often the step that raises it runs (e.g. a batch's failure
    -- on its nth attempt).
    dedupe_key      TEXT NOT NULL UNIQUE CHECK (dedupe_key <> ''),
    kind            TEXT NOT NULL CHECK (kind ~ '^[a-z_]{1,64}$'),
    subject         TEXT NOT NULL,          -- e.g. the batch id
    message         TEXT NOT NULL,
    raised_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    acknowledged_at TIMESTAMPTZ
);

CREATE INDEX alerts_open_idx ON alerts (raised_at) WHERE acknowledged_at IS NULL;
