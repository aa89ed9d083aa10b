//! `db.*` activities of `MicroBatchConversionWorkflow`: the pool claimed as one batch, and its end.
//! Each is one transaction, idempotent on the batch id.
//!
//! Retryable: the database away. Non-retryable: a stored threshold that is not a number, a batch
//! asked to end twice in different ways.

use super::alerts::{self, AlertKind, NewAlert};
use rust_decimal::Decimal;
use sqlx::{PgPool, Row};
use std::{str::FromStr, sync::Arc};
use temporalio_common::error::ApplicationFailure;
use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};
use tracing::{error, info};
use uuid::Uuid;
use workflows::activity_definitions::{
    ClaimConversionPool, ClaimedRow, CompleteConversion, ConversionClaim, ConvertedBatch, ReleaseConversion,
    ReleasedBatch,
};

pub const THRESHOLD_SETTING: &str = "micro_batch_threshold_usd";
/// The pending pool's value, actual ETH and size (an index-only scan of
/// `accumulation_pending_pool_idx`); `make bench-conversion` times it.
pub const PENDING_POOL_SQL: &str = "SELECT COALESCE(SUM(net_amount_usd), 0) AS usd, COALESCE(SUM(accumulated_eth), 0) AS eth,
        count(*) AS n FROM payout_accumulation WHERE conversion_status = 'pending'";
/// One claim at a time: the pool's sum and the rows claimed are the same rows.
const CLAIM_LOCK: &str = "micro-batch-conversion-claim";

#[derive(Debug, thiserror::Error)]
pub enum ConversionLedgerError {
    #[error("'{0}' is not a known batch id")]
    BadBatchId(String),
    #[error("settings.{THRESHOLD_SETTING} = '{0}' is not an amount; fix it with `starter threshold set`")]
    BadThreshold(String),
    #[error("batch {batch_id} is '{status}' and cannot become '{wanted}'")]
    InvalidTransition { batch_id: Uuid, status: String, wanted: &'static str },
    #[error("batch {batch_id}: {problem}; nothing was recorded")]
    Inconsistent { batch_id: Uuid, problem: String },
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

impl ConversionLedgerError {
    fn into_activity_error(self) -> ActivityError {
        ActivityError::application(match self {
            Self::Database(_) => ApplicationFailure::new(self),
            _ => ApplicationFailure::non_retryable(self),
        })
    }
}

pub struct ConversionLedgerActivities {
    pool: PgPool,
}

impl ConversionLedgerActivities {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

#[activities]
impl ConversionLedgerActivities {
    #[activity(definition = ClaimConversionPool)]
    pub async fn claim_conversion_pool(
        self: Arc<Self>,
        _ctx: ActivityContext,
        batch_id: String,
    ) -> Result<ConversionClaim, ActivityError> {
        claim(&self.pool, &batch_id).await.map_err(ConversionLedgerError::into_activity_error)
    }

    #[activity(definition = CompleteConversion)]
    pub async fn complete_conversion(
        self: Arc<Self>,
        _ctx: ActivityContext,
        batch: ConvertedBatch,
    ) -> Result<(), ActivityError> {
        complete(&self.pool, &batch).await.map_err(ConversionLedgerError::into_activity_error)
    }

    #[activity(definition = ReleaseConversion)]
    pub async fn release_conversion(
        self: Arc<Self>,
        _ctx: ActivityContext,
        batch: ReleasedBatch,
    ) -> Result<(), ActivityError> {
        release(&self.pool, &batch).await.map_err(ConversionLedgerError::into_activity_error)
    }
}

fn parse_batch_id(text: &str) -> Result<Uuid, ConversionLedgerError> {
    Uuid::parse_str(text).map_err(|_| ConversionLedgerError::BadBatchId(text.to_owned()))
}

/// The threshold in force, read on every run so a change applies from the next run.
pub async fn read_threshold(pool: &PgPool) -> Result<Decimal, ConversionLedgerError> {
    let text: String = sqlx::query_scalar("SELECT value FROM settings WHERE key = $1")
        .bind(THRESHOLD_SETTING)
        .fetch_one(pool)
        .await?;
    Decimal::from_str(text.trim()).map_err(|_| ConversionLedgerError::BadThreshold(text))
}

async fn claimed_rows(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    batch_id: Uuid,
) -> Result<Vec<ClaimedRow>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT id, net_amount_usd, accumulated_eth FROM payout_accumulation WHERE batch_conversion_id = $1 ORDER BY id",
    )
    .bind(batch_id)
    .fetch_all(&mut **tx)
    .await?;
    rows.iter()
        .map(|r| Ok(ClaimedRow { accumulation_id: r.try_get("id")?, net_usd: r.try_get("net_amount_usd")?, eth: r.try_get("accumulated_eth")? }))
        .collect()
}

async fn claim(pool: &PgPool, batch_id: &str) -> Result<ConversionClaim, ConversionLedgerError> {
    let batch_id = parse_batch_id(batch_id)?;
    let threshold = read_threshold(pool).await?;
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))").bind(CLAIM_LOCK).execute(&mut *tx).await?;

    // A retry of the same run: the batch exists, return what it claimed.
    if let Some(row) = sqlx::query(
        "SELECT threshold_at_creation, total_eth_usd, total_eth, conversion_status FROM batch_conversions
         WHERE batch_conversion_id = $1",
    )
    .bind(batch_id)
    .fetch_optional(&mut *tx)
    .await?
    {
        let status: String = row.try_get("conversion_status")?;
        if status != "swapping" {
            // Ended already (a reset or a reused workflow id): never start its exchange again.
            return Err(ConversionLedgerError::InvalidTransition { batch_id, status, wanted: "swapping" });
        }
        let rows = claimed_rows(&mut tx, batch_id).await?;
        tx.commit().await?;
        return Ok(ConversionClaim::Claimed {
            threshold_usd: row.try_get("threshold_at_creation")?,
            total_usd: row.try_get("total_eth_usd")?,
            total_eth: row.try_get("total_eth")?,
            rows,
        });
    }

    let pool_row = sqlx::query(PENDING_POOL_SQL)
    .fetch_one(&mut *tx)
    .await?;
    let (pool_usd, pool_eth, pending_rows): (Decimal, Decimal, i64) =
        (pool_row.try_get("usd")?, pool_row.try_get("eth")?, pool_row.try_get("n")?);
    if pending_rows == 0 || pool_usd < threshold {
        tx.commit().await?;
        info!(%pool_usd, %threshold, pending_rows, "pending pool below the micro-batch threshold");
        return Ok(ConversionClaim::BelowThreshold { pool_usd, pool_eth, pending_rows, threshold_usd: threshold });
    }

    // Under the claim lock no other claim runs, and new rows only ever arrive as `pending`: the
    // update below takes exactly the rows summed above, or more that arrived since (included
    // in the totals, which are recomputed from the claimed rows).
    sqlx::query(
        "INSERT INTO batch_conversions (batch_conversion_id, total_eth_usd, total_eth, threshold_at_creation,
             conversion_status, processing_started_at)
         VALUES ($1, $2, $3, $4, 'swapping', now())",
    )
    .bind(batch_id)
    .bind(pool_usd)
    .bind(pool_eth)
    .bind(threshold)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "UPDATE payout_accumulation SET conversion_status = 'swapping', batch_conversion_id = $1, updated_at = now()
         WHERE conversion_status = 'pending'",
    )
    .bind(batch_id)
    .execute(&mut *tx)
    .await?;
    let rows = claimed_rows(&mut tx, batch_id).await?;
    let total_usd: Decimal = rows.iter().map(|r| r.net_usd).sum();
    let total_eth: Decimal = rows.iter().map(|r| r.eth).sum();
    sqlx::query("UPDATE batch_conversions SET total_eth_usd = $2, total_eth = $3 WHERE batch_conversion_id = $1")
        .bind(batch_id)
        .bind(total_usd)
        .bind(total_eth)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    info!(batch_id = %batch_id, rows = rows.len(), %total_usd, %total_eth, %threshold, "micro-batch claimed");
    Ok(ConversionClaim::Claimed { threshold_usd: threshold, total_usd, total_eth, rows })
}

async fn batch_status(tx: &mut sqlx::Transaction<'_, sqlx::Postgres>, batch_id: Uuid) -> Result<String, sqlx::Error> {
    sqlx::query_scalar("SELECT conversion_status FROM batch_conversions WHERE batch_conversion_id = $1 FOR UPDATE")
        .bind(batch_id)
        .fetch_one(&mut **tx)
        .await
}

async fn complete(pool: &PgPool, batch: &ConvertedBatch) -> Result<(), ConversionLedgerError> {
    let batch_id = parse_batch_id(&batch.batch_id)?;
    let mut tx = pool.begin().await?;
    match batch_status(&mut tx, batch_id).await?.as_str() {
        "completed" => return Ok(()),
        "swapping" => {}
        other => {
            return Err(ConversionLedgerError::InvalidTransition { batch_id, status: other.to_owned(), wanted: "completed" })
        }
    }
    let ids: Vec<i64> = batch.shares.iter().map(|s| s.accumulation_id).collect();
    let amounts: Vec<Decimal> = batch.shares.iter().map(|s| s.usdt).collect();
    let sum: Decimal = amounts.iter().sum();
    if sum != batch.usdt_received {
        let problem = format!("shares sum to {sum} but {} USDT was received", batch.usdt_received);
        return Err(ConversionLedgerError::Inconsistent { batch_id, problem });
    }
    let updated = sqlx::query(
        "UPDATE payout_accumulation a SET conversion_status = 'completed', accumulated_amount_usdt = s.usdt,
                eth_to_usdt_rate = CASE WHEN a.accumulated_eth > 0 THEN s.usdt / a.accumulated_eth END,
                conversion_tx_hash = $2, conversion_timestamp = now(), updated_at = now()
         FROM UNNEST($3::bigint[], $4::numeric[]) AS s(id, usdt)
         WHERE a.id = s.id AND a.batch_conversion_id = $1 AND a.conversion_status = 'swapping'",
    )
    .bind(batch_id)
    .bind(&batch.usdt_tx_hash)
    .bind(&ids)
    .bind(&amounts)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if updated != ids.len() as u64 {
        // Dropping the transaction rolls the update back.
        let problem = format!("{updated} of {} rows are still swapping in this batch", ids.len());
        return Err(ConversionLedgerError::Inconsistent { batch_id, problem });
    }
    sqlx::query(
        "UPDATE batch_conversions SET conversion_status = 'completed', actual_usdt_received = $2,
                conversion_tx_hash = $3, cn_api_id = $4, completed_at = now()
         WHERE batch_conversion_id = $1",
    )
    .bind(batch_id)
    .bind(batch.usdt_received)
    .bind(&batch.usdt_tx_hash)
    .bind(&batch.exchange_id)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    info!(batch_id = %batch_id, rows = ids.len(), usdt = %batch.usdt_received, "micro-batch converted and split");
    Ok(())
}

async fn release(pool: &PgPool, batch: &ReleasedBatch) -> Result<(), ConversionLedgerError> {
    let batch_id = parse_batch_id(&batch.batch_id)?;
    let mut tx = pool.begin().await?;
    match batch_status(&mut tx, batch_id).await?.as_str() {
        "failed" => return Ok(()),
        "swapping" | "pending" => {}
        other => return Err(ConversionLedgerError::InvalidTransition { batch_id, status: other.to_owned(), wanted: "failed" }),
    }
    let released = if batch.return_rows {
        sqlx::query(
            "UPDATE payout_accumulation SET conversion_status = 'pending', batch_conversion_id = NULL, updated_at = now()
             WHERE batch_conversion_id = $1 AND conversion_status = 'swapping'",
        )
        .bind(batch_id)
        .execute(&mut *tx)
        .await?
        .rows_affected()
    } else {
        0
    };
    sqlx::query(
        "UPDATE batch_conversions SET conversion_status = 'failed', failure_reason = $2, cn_api_id = COALESCE($3, cn_api_id),
                completed_at = now()
         WHERE batch_conversion_id = $1",
    )
    .bind(batch_id)
    .bind(&batch.reason)
    .bind(&batch.exchange_id)
    .execute(&mut *tx)
    .await?;
    let message = match batch.return_rows {
        true => format!("micro-batch failed; {released} rows wait for the next batch: {}", batch.reason),
        false => format!(
            "micro-batch failed after its ETH left the wallet; rows stay swapping until `starter conversion return-rows {batch_id}`: {}",
            batch.reason
        ),
    };
    let alert = NewAlert {
        dedupe_key: format!("conversion-failed-{batch_id}"),
        kind: AlertKind::ConversionBatchFailed,
        subject: batch_id.to_string(),
        message: &message,
    };
    alerts::raise(&mut tx, &alert).await?;
    tx.commit().await?;
    if batch.return_rows {
        error!(batch_id = %batch_id, released, reason = %batch.reason, alert = true, "micro-batch failed; its rows wait for the next batch");
    } else {
        error!(batch_id = %batch_id, reason = %batch.reason, alert = true,
            "micro-batch failed after its ETH left the wallet; rows stay swapping until an operator recovers it");
    }
    Ok(())
}

/// Operator step, once the ETH of a batch that failed after its deposit is back in the hot
/// wallet (recovered through ChangeNow's support): its rows return to `pending` for the next
/// batch. Refuses any batch that is not `failed`. Returns how many rows were returned.
pub async fn return_recovered_rows(pool: &PgPool, batch_id: Uuid) -> Result<u64, ConversionLedgerError> {
    let mut tx = pool.begin().await?;
    let status: Option<String> =
        sqlx::query_scalar("SELECT conversion_status FROM batch_conversions WHERE batch_conversion_id = $1 FOR UPDATE")
            .bind(batch_id)
            .fetch_optional(&mut *tx)
            .await?;
    match status.as_deref() {
        Some("failed") => {}
        Some(other) => {
            return Err(ConversionLedgerError::InvalidTransition { batch_id, status: other.to_owned(), wanted: "released" })
        }
        None => return Err(ConversionLedgerError::BadBatchId(batch_id.to_string())),
    }
    let returned = sqlx::query(
        "UPDATE payout_accumulation SET conversion_status = 'pending', batch_conversion_id = NULL, updated_at = now()
         WHERE batch_conversion_id = $1 AND conversion_status = 'swapping'",
    )
    .bind(batch_id)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    sqlx::query(
        "UPDATE batch_conversions SET failure_reason = failure_reason || ' | rows returned by an operator at ' || now()
         WHERE batch_conversion_id = $1",
    )
    .bind(batch_id)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    info!(batch_id = %batch_id, returned, "operator returned a failed batch's rows to the pool");
    Ok(returned)
}
