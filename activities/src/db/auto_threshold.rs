//! The automatic micro-batch threshold (seed 002, "Dynamic Threshold Algorithm"): at each
//! conversion run, the average daily volume of threshold payments over the trailing 7 days,
//! divided by the runs wanted per day (`24 / target_hours`), rounded to 10 USD as the seed does
//! (half to even) and bounded by the policy's minimum and maximum. Off by default; a manual
//! `threshold set` turns it off. Every change is recorded in `threshold_changes` with its inputs.

use super::conversion_ledger::THRESHOLD_SETTING;
use rust_decimal::{Decimal, RoundingStrategy};
use rust_decimal_macros::dec;
use serde::{Deserialize, Serialize};
use sqlx::{PgPool, Postgres, Transaction};

pub const AUTO_SETTING: &str = "micro_batch_threshold_auto";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AutoThresholdPolicy {
    /// How often a conversion should run, in hours (1 to 168).
    pub target_hours: u32,
    pub min_usd: Decimal,
    pub max_usd: Decimal,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PolicyError {
    #[error("--target-hours must be between 1 and 168, got {0}")]
    TargetHours(u32),
    #[error("--min must be above 0 and at most --max (got min {min}, max {max})")]
    Bounds { min: Decimal, max: Decimal },
}

impl AutoThresholdPolicy {
    pub fn new(target_hours: u32, min_usd: Decimal, max_usd: Decimal) -> Result<Self, PolicyError> {
        if !(1..=168).contains(&target_hours) {
            return Err(PolicyError::TargetHours(target_hours));
        }
        if min_usd <= Decimal::ZERO || min_usd > max_usd {
            return Err(PolicyError::Bounds { min: min_usd, max: max_usd });
        }
        Ok(Self { target_hours, min_usd, max_usd })
    }

    /// The threshold for a trailing 7-day volume of `volume_7d_usd`.
    pub fn threshold_for(&self, volume_7d_usd: Decimal) -> Decimal {
        let runs_per_day = Decimal::from(24) / Decimal::from(self.target_hours);
        let per_run = volume_7d_usd / Decimal::from(7) / runs_per_day;
        let rounded = (per_run / dec!(10)).round_dp_with_strategy(0, RoundingStrategy::MidpointNearestEven) * dec!(10);
        rounded.clamp(self.min_usd, self.max_usd).round_dp(2)
    }
}

/// Turns the automatic threshold on (or changes its policy); it applies from the next run.
pub async fn enable(pool: &PgPool, policy: &AutoThresholdPolicy) -> Result<(), sqlx::Error> {
    let text = serde_json::to_string(policy).expect("a policy serializes");
    super::settings::put(pool, AUTO_SETTING, &text).await
}

pub async fn policy(pool: &PgPool) -> Result<Option<AutoThresholdPolicy>, sqlx::Error> {
    let text: Option<String> =
        sqlx::query_scalar("SELECT value FROM settings WHERE key = $1").bind(AUTO_SETTING).fetch_optional(pool).await?;
    // A policy that no longer parses is treated as off (and `threshold show` says so).
    Ok(text.and_then(|t| serde_json::from_str(&t).ok()))
}

/// An operator's threshold: stored, recorded, and the automatic threshold turned off.
pub async fn set_manually(pool: &PgPool, usd: Decimal) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    let old = current(&mut tx).await?;
    write(&mut tx, usd).await?;
    sqlx::query("DELETE FROM settings WHERE key = $1").bind(AUTO_SETTING).execute(&mut *tx).await?;
    sqlx::query("INSERT INTO threshold_changes (source, old_usd, new_usd) VALUES ('manual', $1, $2)")
        .bind(old)
        .bind(usd)
        .execute(&mut *tx)
        .await?;
    tx.commit().await
}

/// When the automatic threshold is on: recomputes it from the trailing week and stores it if it
/// changed. Returns the new threshold when it changed.
pub async fn adjust(pool: &PgPool) -> Result<Option<Decimal>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    // One adjuster at a time, and never against a manual change made meanwhile.
    let text: Option<String> =
        sqlx::query_scalar("SELECT value FROM settings WHERE key = $1 FOR UPDATE").bind(AUTO_SETTING).fetch_optional(&mut *tx).await?;
    let Some(policy) = text.and_then(|t| serde_json::from_str::<AutoThresholdPolicy>(&t).ok()) else {
        return Ok(None);
    };
    let volume: Decimal =
        sqlx::query_scalar("SELECT COALESCE(sum(net_amount_usd), 0) FROM payout_accumulation WHERE created_at > now() - interval '7 days'")
            .fetch_one(&mut *tx)
            .await?;
    let new = policy.threshold_for(volume);
    let old = current(&mut tx).await?;
    if old == Some(new) {
        return Ok(None);
    }
    write(&mut tx, new).await?;
    sqlx::query(
        "INSERT INTO threshold_changes (source, old_usd, new_usd, volume_7d_usd, target_hours, min_usd, max_usd)
         VALUES ('auto', $1, $2, $3, $4, $5, $6)",
    )
    .bind(old)
    .bind(new)
    .bind(volume)
    .bind(policy.target_hours as i32)
    .bind(policy.min_usd)
    .bind(policy.max_usd)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    tracing::info!(old = ?old, new = %new, volume_7d_usd = %volume, target_hours = policy.target_hours, "micro-batch threshold set by volume");
    Ok(Some(new))
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ThresholdChange {
    pub changed_at: chrono::DateTime<chrono::Utc>,
    pub source: String,
    pub old_usd: Option<Decimal>,
    pub new_usd: Decimal,
    pub volume_7d_usd: Option<Decimal>,
    pub target_hours: Option<i32>,
    pub min_usd: Option<Decimal>,
    pub max_usd: Option<Decimal>,
}

pub async fn recent_changes(pool: &PgPool, limit: i64) -> Result<Vec<ThresholdChange>, sqlx::Error> {
    sqlx::query_as(
        "SELECT changed_at, source, old_usd, new_usd, volume_7d_usd, target_hours, min_usd, max_usd
         FROM threshold_changes ORDER BY change_id DESC LIMIT $1",
    )
    .bind(limit)
    .fetch_all(pool)
    .await
}

async fn current(tx: &mut Transaction<'_, Postgres>) -> Result<Option<Decimal>, sqlx::Error> {
    let text: Option<String> = sqlx::query_scalar("SELECT value FROM settings WHERE key = $1 FOR UPDATE")
        .bind(THRESHOLD_SETTING)
        .fetch_optional(&mut **tx)
        .await?;
    Ok(text.and_then(|t| t.trim().parse().ok()))
}

async fn write(tx: &mut Transaction<'_, Postgres>, usd: Decimal) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO settings (key, value, updated_at) VALUES ($1, $2, now())
         ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = now()",
    )
    .bind(THRESHOLD_SETTING)
    .bind(format!("{usd:.2}"))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> AutoThresholdPolicy {
        AutoThresholdPolicy::new(6, dec!(20), dec!(1000)).unwrap()
    }

    #[test]
    fn the_seeds_example_500_a_day_in_four_runs_is_120_rounded_half_to_even() {
        // 500 USD a day, 4 runs a day: 125, rounded to tens as Python's quantize does (12.5 -> 12).
        assert_eq!(policy().threshold_for(dec!(3500)), dec!(120));
        // 135 -> 140 (13.5 -> 14), 126 -> 130.
        assert_eq!(policy().threshold_for(dec!(135) * dec!(28)), dec!(140));
        assert_eq!(policy().threshold_for(dec!(126) * dec!(28)), dec!(130));
    }

    #[test]
    fn the_threshold_stays_within_the_policys_bounds() {
        assert_eq!(policy().threshold_for(Decimal::ZERO), dec!(20));
        assert_eq!(policy().threshold_for(dec!(1_000_000)), dec!(1000));
        let hourly = AutoThresholdPolicy::new(1, dec!(20), dec!(1000)).unwrap();
        assert_eq!(hourly.threshold_for(dec!(3500)), dec!(20), "500 a day in 24 runs is ~21, rounded to 20");
    }

    #[test]
    fn a_policy_out_of_range_is_refused_with_a_reason() {
        assert_eq!(AutoThresholdPolicy::new(0, dec!(20), dec!(1000)), Err(PolicyError::TargetHours(0)));
        assert_eq!(AutoThresholdPolicy::new(169, dec!(20), dec!(1000)), Err(PolicyError::TargetHours(169)));
        assert!(matches!(AutoThresholdPolicy::new(6, dec!(100), dec!(50)), Err(PolicyError::Bounds { .. })));
        assert!(matches!(AutoThresholdPolicy::new(6, dec!(0), dec!(50)), Err(PolicyError::Bounds { .. })));
    }
}
