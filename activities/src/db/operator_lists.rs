//! What operators list: payout batches and conversion batches, newest first.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use sqlx::PgPool;
use uuid::Uuid;

/// The most rows one list returns.
pub const LIST_LIMIT: i64 = 200;

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PayoutBatchRow {
    pub batch_id: Uuid,
    pub client_id: String,
    pub status: String,
    pub total_amount_usdt: Decimal,
    pub total_payments_count: i32,
    pub client_payout_currency: String,
    pub client_wallet_address: String,
    pub failure_reason: Option<String>,
    pub tx_hash: Option<String>,
    pub created_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ConversionRow {
    pub batch_conversion_id: Uuid,
    pub conversion_status: String,
    pub total_eth: Decimal,
    pub total_eth_usd: Decimal,
    pub row_count: Option<i32>,
    pub actual_usdt_received: Option<Decimal>,
    pub cn_api_id: Option<String>,
    pub failure_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    /// The run that converted it (batches from before migration 0015 have none).
    pub workflow_id: Option<String>,
}

/// Payout batches, all or in one `status`.
pub async fn payout_batches(pool: &PgPool, status: Option<&str>) -> Result<Vec<PayoutBatchRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT batch_id, client_id, status, total_amount_usdt, total_payments_count, client_payout_currency,
                client_wallet_address, failure_reason, tx_hash, created_at, completed_at
         FROM payout_batches WHERE ($1::text IS NULL OR status = $1) ORDER BY created_at DESC LIMIT $2",
    )
    .bind(status)
    .bind(LIST_LIMIT)
    .fetch_all(pool)
    .await
}

pub async fn conversions(pool: &PgPool) -> Result<Vec<ConversionRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT batch_conversion_id, conversion_status, total_eth, total_eth_usd, row_count, actual_usdt_received,
                cn_api_id, failure_reason, created_at, completed_at, workflow_id
         FROM batch_conversions ORDER BY created_at DESC LIMIT $1",
    )
    .bind(LIST_LIMIT)
    .fetch_all(pool)
    .await
}
