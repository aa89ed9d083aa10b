-- USDC as the alternative settlement stablecoin (seed 000, risk 1: a USDT depeg). New
-- conversions settle in settings.settlement_stablecoin; each conversion batch, each row and each
-- payout batch records the coin it holds, so a switch never touches what was converted before
-- and a payout batch never mixes coins. Amount columns keep their seed names (`..._usdt`): they
-- hold the recorded coin, 6 decimals either way.
ALTER TABLE batch_conversions
    ADD COLUMN settlement_coin TEXT NOT NULL DEFAULT 'usdt' CHECK (settlement_coin IN ('usdt', 'usdc'));
ALTER TABLE payout_accumulation
    ADD COLUMN settlement_coin TEXT NOT NULL DEFAULT 'usdt' CHECK (settlement_coin IN ('usdt', 'usdc'));
ALTER TABLE payout_batches
    ADD COLUMN settlement_coin TEXT NOT NULL DEFAULT 'usdt' CHECK (settlement_coin IN ('usdt', 'usdc'));

INSERT INTO settings (key, value) VALUES ('settlement_stablecoin', 'usdt') ON CONFLICT (key) DO NOTHING;
