-- The micro-batch threshold set by volume (seed 002, "Dynamic Threshold Algorithm"), off by
-- default: `starter threshold auto` stores its policy in settings.micro_batch_threshold_auto;
-- `starter threshold set` removes it. Every change of the threshold, automatic or manual, is
-- recorded here with what it was computed from.
CREATE TABLE threshold_changes (
    change_id     BIGSERIAL PRIMARY KEY,
    changed_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    source        TEXT NOT NULL CHECK (source IN ('auto', 'manual')),
    old_usd       NUMERIC(20, 2),
    new_usd       NUMERIC(20, 2) NOT NULL CHECK (new_usd > 0),
    -- The inputs of an automatic change.
    volume_7d_usd NUMERIC(30, 8),
    target_hours  INTEGER CHECK (target_hours BETWEEN 1 AND 168),
    min_usd       NUMERIC(20, 2),
    max_usd       NUMERIC(20, 2),
    CHECK (source = 'manual' OR (volume_7d_usd IS NOT NULL AND target_hours IS NOT NULL AND min_usd IS NOT NULL AND max_usd IS NOT NULL))
);
