//! What the admin console shows at a glance: money waiting, clients near their threshold, and
//! how the last day's payout batches went.

use rust_decimal::Decimal;
use sqlx::PgPool;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Totals {
    /// Converted USDT not paid out yet.
    pub unpaid_usdt: Decimal,
    /// Net USD waiting for a conversion (the pool the micro-batch threshold is held against).
    pub pending_pool_usd: Decimal,
    pub batches_24h: i64,
    pub completed_24h: i64,
    pub failed_24h: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct NearThreshold {
    pub client_id: String,
    pub threshold_usd: Decimal,
    /// Converted, unpaid USDT plus USD still converting.
    pub have_usd: Decimal,
}

pub async fn totals(pool: &PgPool) -> Result<Totals, sqlx::Error> {
    let (unpaid_usdt,): (Decimal,) = sqlx::query_as(
        "SELECT COALESCE(SUM(accumulated_amount_usdt), 0) FROM payout_accumulation
         WHERE conversion_status = 'completed' AND NOT is_paid_out",
    )
    .fetch_one(pool)
    .await?;
    let (pending_pool_usd,): (Decimal,) =
        sqlx::query_as("SELECT COALESCE(SUM(pending_usd), 0) FROM conversion_pool_totals").fetch_one(pool).await?;
    let (batches_24h, completed_24h, failed_24h): (i64, i64, i64) = sqlx::query_as(
        "SELECT count(*), count(*) FILTER (WHERE status = 'completed'), count(*) FILTER (WHERE status = 'failed')
         FROM payout_batches WHERE created_at > now() - interval '24 hours'",
    )
    .fetch_one(pool)
    .await?;
    Ok(Totals { unpaid_usdt, pending_pool_usd, batches_24h, completed_24h, failed_24h })
}

/// Threshold clients holding at least `share` (0.8 = 80 %; 0: any unpaid money) of their threshold, fullest first.
pub async fn clients_near_threshold(pool: &PgPool, share: Decimal) -> Result<Vec<NearThreshold>, sqlx::Error> {
    sqlx::query_as(
        "WITH held AS (
             SELECT c.client_id, c.payout_threshold_usd AS threshold_usd,
                    SUM(CASE WHEN a.conversion_status = 'completed' THEN a.accumulated_amount_usdt
                             ELSE a.net_amount_usd END) AS have_usd
             FROM clients c JOIN payout_accumulation a ON a.client_id = c.client_id AND NOT a.is_paid_out
             WHERE c.payout_strategy = 'threshold'
             GROUP BY c.client_id, c.payout_threshold_usd)
         SELECT client_id, threshold_usd, have_usd FROM held
         WHERE have_usd >= threshold_usd * $1
         ORDER BY have_usd / threshold_usd DESC, client_id
         LIMIT 100",
    )
    .bind(share)
    .fetch_all(pool)
    .await
}
