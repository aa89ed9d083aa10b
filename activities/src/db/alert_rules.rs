//! `db.evaluate_alert_rules`: the lasting conditions that call for an operator, checked every
//! minute by `AlertRulesWorkflow`. Each rule yields the conditions firing now; each firing
//! condition has one open alert (raised once, not once per evaluation), and a condition that
//! cleared closes its alert (`resolved_at`). Event alerts (a failed batch, a batch awaiting
//! approval) are closed here too once their batch has moved on. Rules fed by another system (the
//! stablecoin price from ChangeNow, the hot wallet's balances from the chain) are skipped, neither
//! raising nor closing, when that input could not be read.

use super::alerts::{self, AlertKind, NewAlert};
use crate::metrics::WorkerMetrics;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use sqlx::{PgPool, Postgres, Transaction};
use std::{sync::Arc, time::Instant};
use temporalio_common::error::ApplicationFailure;
use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};
use tracing::warn;
use workflows::activity_definitions::{AlertRulesInput, AlertRulesReport, EvaluateAlertRules, HotWalletBalances};

/// Beyond this distance from one US dollar the stablecoin counts as depegged (seed 000, risk 1).
pub const DEPEG_TOLERANCE: Decimal = dec!(0.02);
/// The over-threshold query must stay fast at 1,000,000 rows (issue 8's target).
pub const SLOW_QUERY_MS: u64 = 500;
/// Gas one piece of open work may still spend: an ERC-20 transfer with margin.
pub const GAS_PER_OPEN_TRANSFER: u64 = 100_000;

/// One condition firing now.
#[derive(Debug, Clone, PartialEq)]
pub struct Firing {
    pub key: String,
    pub subject: String,
    pub message: String,
}

/// `Some(firing)` when `usd_price` is more than [`DEPEG_TOLERANCE`] away from 1.
pub fn depeg(coin: &str, usd_price: Decimal) -> Option<Firing> {
    let distance = (usd_price - Decimal::ONE).abs();
    (distance > DEPEG_TOLERANCE).then(|| Firing {
        key: format!("stablecoin-depeg-{coin}"),
        subject: coin.to_owned(),
        message: format!(
            "{} trades at {} USD, {}% from the peg (tolerance {}%): unpaid balances held in it lose value; \
             the remedy is to settle new conversions in the other stablecoin (USDC): `starter stablecoin set usdc`",
            coin.to_uppercase(),
            usd_price.round_dp(4).normalize(),
            (distance * Decimal::ONE_HUNDRED).round_dp(2).normalize(),
            (DEPEG_TOLERANCE * Decimal::ONE_HUNDRED).normalize()
        ),
    })
}

/// Wei of ETH the open work needs: each open transfer at twice the current base fee (room for
/// the fee to rise before it lands), plus one conversion transfer when the pool is waiting.
pub fn gas_needed_wei(open_transfers: u64, pool_waiting: bool, base_fee_wei: Decimal) -> Decimal {
    let transfers = open_transfers + u64::from(pool_waiting);
    Decimal::from(transfers) * Decimal::from(GAS_PER_OPEN_TRANSFER) * base_fee_wei * Decimal::TWO
}

/// `Some(firing)` when the hot wallet's spare ETH is below what its open work needs. What a
/// conversion will send is not spare: the pending pool's ETH is owed to the exchange.
pub fn hot_wallet_low(eth_wei: Decimal, owed_eth_wei: Decimal, needed_wei: Decimal) -> Option<Firing> {
    let spare = eth_wei - owed_eth_wei;
    (needed_wei > Decimal::ZERO && spare < needed_wei).then(|| Firing {
        key: "hot-wallet-low".to_owned(),
        subject: "hot wallet".to_owned(),
        message: format!(
            "the hot wallet has {} ETH beyond what it owes to conversions; its open work needs about {} ETH of gas: fund it",
            (spare / dec!(1e18)).round_dp(6).normalize(),
            (needed_wei / dec!(1e18)).round_dp(6).normalize()
        ),
    })
}

#[derive(Debug, thiserror::Error)]
pub enum AlertRulesError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

pub struct AlertRuleActivities {
    pool: PgPool,
    metrics: Option<WorkerMetrics>,
}

impl AlertRuleActivities {
    pub fn new(pool: PgPool, metrics: Option<WorkerMetrics>) -> Self {
        Self { pool, metrics }
    }
}

#[activities]
impl AlertRuleActivities {
    #[activity(definition = EvaluateAlertRules)]
    pub async fn evaluate_alert_rules(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: AlertRulesInput,
    ) -> Result<AlertRulesReport, ActivityError> {
        let report = evaluate(&self.pool, &input)
            .await
            .map_err(|e| ActivityError::application(ApplicationFailure::new(AlertRulesError::from(e))))?;
        if let Some(metrics) = &self.metrics {
            metrics.record_over_threshold_query(report.over_threshold_query_ms);
            if let Some(balances) = &input.hot_wallet {
                metrics.record_hot_wallet(balances);
            }
        }
        Ok(report)
    }
}

/// Runs every rule; one transaction per rule, so one that fails leaves the others' alerts.
pub async fn evaluate(pool: &PgPool, input: &AlertRulesInput) -> Result<AlertRulesReport, sqlx::Error> {
    let mut report = AlertRulesReport::default();

    let started = Instant::now();
    super::payout_ledger::due_groups(pool, &Default::default()).await?;
    report.over_threshold_query_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let slow = (report.over_threshold_query_ms > SLOW_QUERY_MS).then(|| Firing {
        key: "over-threshold-query-slow".to_owned(),
        subject: "payout sweep".to_owned(),
        message: format!(
            "the over-threshold query took {} ms (limit {SLOW_QUERY_MS} ms): check payout_group_balances and the database's load",
            report.over_threshold_query_ms
        ),
    });
    apply(pool, AlertKind::OverThresholdQuerySlow, slow.into_iter().collect(), &mut report).await?;

    if let Some(price) = &input.stablecoin_price {
        apply(pool, AlertKind::StablecoinDepeg, depeg(&price.coin, price.usd_price).into_iter().collect(), &mut report).await?;
    }
    apply(pool, AlertKind::ClientOverThreshold7d, clients_over_threshold(pool, input.over_threshold_days).await?, &mut report).await?;
    let pool_waiting = pool_waiting(pool, input.pool_max_wait_minutes).await?;
    let waiting = pool_waiting.clone().into_iter().collect();
    apply(pool, AlertKind::ConversionPoolWaiting, waiting, &mut report).await?;
    if let Some(wallet) = &input.hot_wallet {
        let firing = wallet_low(pool, wallet, pool_waiting.is_some()).await?;
        apply(pool, AlertKind::HotWalletLow, firing.into_iter().collect(), &mut report).await?;
    }
    report.resolved += close_settled_event_alerts(pool).await?;
    report.digest_raised = raise_daily_digest(pool).await?;
    Ok(report)
}

/// One open alert per firing condition; the open alerts of `kind` no longer firing are closed.
async fn apply(pool: &PgPool, kind: AlertKind, firing: Vec<Firing>, report: &mut AlertRulesReport) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    for condition in &firing {
        let alert = NewAlert { dedupe_key: condition.key.clone(), kind, subject: condition.subject.clone(), message: &condition.message };
        if alerts::raise_unless_open(&mut tx, &alert).await? {
            warn!(kind = kind.as_str(), subject = %condition.subject, alert = true, "{}", condition.message);
            report.raised += 1;
        }
    }
    let keys: Vec<String> = firing.into_iter().map(|f| f.key).collect();
    report.resolved += alerts::resolve_cleared(&mut tx, kind, &keys).await? as u32;
    tx.commit().await
}

/// Clients whose converted, unpaid USDT reached their threshold more than `days` ago: the row
/// that took the running total (oldest first) to the threshold was converted before then.
async fn clients_over_threshold(pool: &PgPool, days: u32) -> Result<Vec<Firing>, sqlx::Error> {
    let rows: Vec<(String, Decimal, Decimal, chrono::DateTime<chrono::Utc>)> = sqlx::query_as(
        "WITH due AS (
             SELECT client_id, client_wallet_address, client_payout_currency, client_payout_network, due_at_usdt, unpaid_usdt
             FROM payout_group_balances WHERE unpaid_rows > 0 AND unpaid_usdt >= due_at_usdt
         ), running AS (
             SELECT d.client_id, d.due_at_usdt, d.unpaid_usdt, COALESCE(a.conversion_timestamp, a.created_at) AS converted_at,
                    sum(a.accumulated_amount_usdt) OVER (
                        PARTITION BY d.client_id, d.client_wallet_address, d.client_payout_currency, d.client_payout_network
                        ORDER BY COALESCE(a.conversion_timestamp, a.created_at), a.id) AS reached
             FROM due d JOIN payout_accumulation a
               ON (a.client_id, a.client_wallet_address, a.client_payout_currency, a.client_payout_network)
                = (d.client_id, d.client_wallet_address, d.client_payout_currency, d.client_payout_network)
             WHERE a.conversion_status = 'completed' AND NOT a.is_paid_out AND a.payout_batch_id IS NULL
         )
         SELECT client_id, max(unpaid_usdt), max(due_at_usdt), min(converted_at) FILTER (WHERE reached >= due_at_usdt) AS since
         FROM running GROUP BY client_id
         HAVING min(converted_at) FILTER (WHERE reached >= due_at_usdt) < now() - make_interval(days => $1)
         ORDER BY client_id",
    )
    .bind(i32::try_from(days).unwrap_or(i32::MAX))
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(client_id, unpaid, due_at, since)| Firing {
            key: format!("client-over-threshold-{client_id}"),
            message: format!(
                "client {client_id} has {} USDT unpaid, at or above its {} USDT threshold since {}, more than {days} days: \
                 look for a failed or held payout (`starter batch list`)",
                unpaid.normalize(),
                due_at.normalize(),
                since.format("%Y-%m-%d %H:%M UTC")
            ),
            subject: client_id,
        })
        .collect())
}

/// The pending pool when its oldest payment has waited more than `minutes` for a conversion.
async fn pool_waiting(pool: &PgPool, minutes: u32) -> Result<Option<Firing>, sqlx::Error> {
    let oldest: Option<(chrono::DateTime<chrono::Utc>, i64, Decimal)> = sqlx::query_as(
        "SELECT min(created_at), count(*), COALESCE(sum(net_amount_usd), 0) FROM payout_accumulation
         WHERE conversion_status = 'pending' HAVING min(created_at) < now() - make_interval(mins => $1)",
    )
    .bind(i32::try_from(minutes).unwrap_or(i32::MAX))
    .fetch_optional(pool)
    .await?;
    Ok(oldest.map(|(since, rows, usd)| Firing {
        key: "conversion-pool-waiting".to_owned(),
        subject: "pending pool".to_owned(),
        message: format!(
            "{rows} payments ({} USD) wait for a conversion, the oldest since {}: more than {minutes} minutes; \
             check the micro-batch schedule and ChangeNow's minimum, or lower the threshold (`starter threshold set`)",
            usd.round_dp(2).normalize(),
            since.format("%Y-%m-%d %H:%M UTC")
        ),
    }))
}

async fn wallet_low(pool: &PgPool, wallet: &HotWalletBalances, pool_waiting: bool) -> Result<Option<Firing>, sqlx::Error> {
    let (open_transfers, owed_eth): (i64, Decimal) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM transfer_intents WHERE status = 'signed'),
                COALESCE((SELECT pending_eth FROM conversion_pool_totals), 0)",
    )
    .fetch_one(pool)
    .await?;
    let needed = gas_needed_wei(open_transfers.max(0) as u64, pool_waiting, wallet.base_fee_wei);
    Ok(hot_wallet_low(wallet.eth_wei, owed_eth * dec!(1e18), needed))
}

/// A failed batch that was retried and paid, or a batch no longer awaiting approval: its alert
/// is news no longer.
async fn close_settled_event_alerts(pool: &PgPool) -> Result<u32, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE alerts a SET acknowledged_at = now(), resolved_at = now()
         WHERE a.acknowledged_at IS NULL AND (
             (a.kind = 'payout_batch_failed' AND EXISTS (
                 SELECT 1 FROM payout_batches b WHERE b.batch_id::text = a.subject AND b.status = 'completed'))
          OR (a.kind = 'conversion_batch_failed' AND EXISTS (
                 SELECT 1 FROM batch_conversions c WHERE c.batch_conversion_id::text = a.subject AND c.conversion_status = 'completed'))
          OR (a.kind = 'payout_awaiting_approval' AND EXISTS (
                 SELECT 1 FROM payout_batches b WHERE b.batch_id::text = a.subject AND b.status <> 'awaiting_approval')))",
    )
    .execute(pool)
    .await?;
    Ok(done.rows_affected() as u32)
}

/// Once per UTC day, when warnings are open: one `daily_digest` listing them, delivered like any
/// alert and closed at once (it is news, not a condition).
async fn raise_daily_digest(pool: &PgPool) -> Result<bool, sqlx::Error> {
    let mut tx: Transaction<'_, Postgres> = pool.begin().await?;
    let open: Vec<(i64, String, String, String)> = sqlx::query_as(
        "SELECT alert_id, kind, subject, message FROM alerts
         WHERE acknowledged_at IS NULL AND severity = 'warning' ORDER BY alert_id LIMIT 200",
    )
    .fetch_all(&mut *tx)
    .await?;
    if open.is_empty() {
        return Ok(false);
    }
    let lines: Vec<serde_json::Value> = open
        .iter()
        .map(|(id, kind, subject, message)| serde_json::json!({"alert_id": id, "kind": kind, "subject": subject, "message": message}))
        .collect();
    let message = format!("{} warnings are open", open.len());
    let inserted = sqlx::query(
        "INSERT INTO alerts (dedupe_key, kind, subject, message, severity, details, acknowledged_at)
         VALUES ('daily-digest-' || to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD'), $1, 'daily digest', $2, $3, $4, now())
         ON CONFLICT (dedupe_key) DO NOTHING",
    )
    .bind(AlertKind::DailyDigest.as_str())
    .bind(&message)
    .bind(AlertKind::DailyDigest.severity().as_str())
    .bind(serde_json::json!({ "open_warnings": lines }))
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    tx.commit().await?;
    Ok(inserted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_price_more_than_two_percent_off_the_dollar_is_a_depeg() {
        assert!(depeg("usdt", dec!(0.97)).is_some());
        assert!(depeg("usdt", dec!(1.0201)).is_some());
        assert!(depeg("usdt", dec!(0.98)).is_none(), "exactly 2 % is within tolerance");
        assert!(depeg("usdt", dec!(1.02)).is_none());
        assert!(depeg("usdt", dec!(0.9995)).is_none());
        let firing = depeg("usdt", dec!(0.97)).unwrap();
        assert!(firing.message.contains("USDC"), "names the remedy: {}", firing.message);
        assert!(firing.message.contains("3%"), "{}", firing.message);
    }

    #[test]
    fn the_wallet_is_low_when_its_spare_eth_cannot_pay_the_open_works_gas() {
        let base_fee = dec!(1_000_000_000); // 1 gwei
                                            // 3 open transfers + a conversion: 4 x 100,000 gas x 2 gwei = 0.0008 ETH
        let needed = gas_needed_wei(3, true, base_fee);
        assert_eq!(needed, dec!(800_000_000_000_000));
        let owed = dec!(1e18); // 1 ETH of pending payments belongs to the next conversion
        assert!(hot_wallet_low(dec!(1.0007e18), owed, needed).is_some());
        assert!(hot_wallet_low(dec!(1.0008e18), owed, needed).is_none());
        assert!(hot_wallet_low(Decimal::ZERO, Decimal::ZERO, Decimal::ZERO).is_none(), "no open work needs nothing");
    }
}
