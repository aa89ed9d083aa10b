//! `db.*` activities of `MicroBatchConversionWorkflow`: the pool claimed as one batch, and its end.
//! Each is one transaction, idempotent on the batch id.
//!
//! Retryable: the database away. Non-retryable: a stored threshold that is not a number, a batch
//! asked to end twice in different ways.

use super::{
    alerts::{self, AlertKind, NewAlert},
    batch_outcomes::{self, BatchKind, Outcome},
};
use rust_decimal::Decimal;
use sqlx::{PgPool, Row};
use std::{str::FromStr, sync::Arc};
use temporalio_common::error::ApplicationFailure;
use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};
use tracing::{error, info, warn};
use uuid::Uuid;
use workflows::{
    activity_definitions::{
        conversion_purpose_key, BatchLimit, BatchTotals, ClaimConversionPool, CompleteConversion, ConversionClaim, ConversionClaimRequest,
        ConvertedBatch, FailedBatch, LimitConversionBatch, ReleaseConversion, SeenRefund,
    },
    domain::{split_proportionally, ChainAsset, Stablecoin},
};

pub const THRESHOLD_SETTING: &str = "micro_batch_threshold_usd";
/// The pending pool's value, actual ETH and size: one row kept exact by triggers
/// (`conversion_pool_totals`, migration 0006), so its cost does not grow with the pool;
/// `make bench-conversion` times it.
pub const PENDING_POOL_SQL: &str = "SELECT pending_usd AS usd, pending_eth AS eth, pending_rows AS n FROM conversion_pool_totals";
/// One claim at a time: the pool's sum and the rows claimed are the same rows.
const CLAIM_LOCK: &str = "micro-batch-conversion-claim";

#[derive(Debug, thiserror::Error)]
pub enum ConversionLedgerError {
    #[error("'{0}' is not a known batch id")]
    BadBatchId(String),
    #[error("a batch holds at least one row, not {0}")]
    BadRowLimit(i64),
    #[error("settings.{THRESHOLD_SETTING} = '{0}' is not an amount; fix it with `starter threshold set`")]
    BadThreshold(String),
    #[error("batch {batch_id} is '{status}' and cannot become '{wanted}'")]
    InvalidTransition { batch_id: Uuid, status: String, wanted: &'static str },
    #[error("batch {batch_id}: its ETH transfer was already prepared, so its rows can no longer change")]
    AlreadySending { batch_id: Uuid },
    #[error("batch {batch_id}: {problem}; nothing was recorded")]
    Inconsistent { batch_id: Uuid, problem: String },
    #[error("batch {batch_id}: its rows stay with it: {reason} (`--force` returns them anyway)")]
    NotRecovered { batch_id: Uuid, reason: String },
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
        request: ConversionClaimRequest,
    ) -> Result<ConversionClaim, ActivityError> {
        claim(&self.pool, &request).await.map_err(ConversionLedgerError::into_activity_error)
    }

    #[activity(definition = LimitConversionBatch)]
    pub async fn limit_conversion_batch(self: Arc<Self>, _ctx: ActivityContext, limit: BatchLimit) -> Result<BatchTotals, ActivityError> {
        limit_to(&self.pool, &limit).await.map_err(ConversionLedgerError::into_activity_error)
    }

    #[activity(definition = CompleteConversion)]
    pub async fn complete_conversion(self: Arc<Self>, _ctx: ActivityContext, batch: ConvertedBatch) -> Result<(), ActivityError> {
        complete(&self.pool, &batch, "swapping").await.map_err(ConversionLedgerError::into_activity_error)
    }

    #[activity(definition = ReleaseConversion)]
    pub async fn release_conversion(self: Arc<Self>, _ctx: ActivityContext, batch: FailedBatch) -> Result<(), ActivityError> {
        record_failure(&self.pool, &batch).await.map_err(ConversionLedgerError::into_activity_error)
    }
}

fn parse_batch_id(text: &str) -> Result<Uuid, ConversionLedgerError> {
    Uuid::parse_str(text).map_err(|_| ConversionLedgerError::BadBatchId(text.to_owned()))
}

type Tx<'a> = sqlx::Transaction<'a, sqlx::Postgres>;

/// The threshold in force, read on every run so a change applies from the next run.
pub async fn read_threshold(pool: &PgPool) -> Result<Decimal, ConversionLedgerError> {
    let text: String = sqlx::query_scalar("SELECT value FROM settings WHERE key = $1").bind(THRESHOLD_SETTING).fetch_one(pool).await?;
    Decimal::from_str(text.trim()).map_err(|_| ConversionLedgerError::BadThreshold(text))
}

/// The outbox's state of the batch's ETH transfer (`signed`, `confirmed`, `reverted`), if one
/// was ever prepared: from then on its ETH may have left the hot wallet.
pub async fn transfer_state(tx: &mut Tx<'_>, batch_id: Uuid) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT status FROM transfer_intents WHERE purpose_key = $1")
        .bind(conversion_purpose_key(&batch_id.to_string()))
        .fetch_optional(&mut **tx)
        .await
}

/// Totals of the rows a batch holds, written to the batch.
async fn record_totals(tx: &mut Tx<'_>, batch_id: Uuid) -> Result<BatchTotals, sqlx::Error> {
    let row = sqlx::query(
        "UPDATE batch_conversions b SET total_eth_usd = t.usd, total_eth = t.eth, row_count = t.n
           FROM (SELECT COALESCE(sum(net_amount_usd), 0) AS usd, COALESCE(sum(accumulated_eth), 0) AS eth, count(*) AS n
                   FROM payout_accumulation WHERE batch_conversion_id = $1 AND conversion_status = 'swapping') t
          WHERE b.batch_conversion_id = $1
         RETURNING t.usd, t.eth, t.n",
    )
    .bind(batch_id)
    .fetch_one(&mut **tx)
    .await?;
    Ok(BatchTotals { total_usd: row.try_get("usd")?, total_eth: row.try_get("eth")?, row_count: row.try_get("n")? })
}

async fn claim(pool: &PgPool, request: &ConversionClaimRequest) -> Result<ConversionClaim, ConversionLedgerError> {
    let batch_id = parse_batch_id(&request.batch_id)?;
    if request.max_rows < 1 {
        return Err(ConversionLedgerError::BadRowLimit(request.max_rows));
    }
    // With the automatic threshold on, each claim starts from this week's volume.
    super::auto_threshold::adjust(pool).await?;
    let threshold = read_threshold(pool).await?;
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))").bind(CLAIM_LOCK).execute(&mut *tx).await?;

    // The batch exists: a retry of this step, or a run reset or restarted under the same
    // workflow id. It is returned as it is, never claimed afresh.
    if let Some(row) = sqlx::query(
        "SELECT threshold_at_creation, total_eth_usd, total_eth, row_count, conversion_status, settlement_coin FROM batch_conversions
         WHERE batch_conversion_id = $1",
    )
    .bind(batch_id)
    .fetch_optional(&mut *tx)
    .await?
    {
        let status: String = row.try_get("conversion_status")?;
        if status != "swapping" {
            tx.commit().await?;
            info!(batch_id = %batch_id, %status, "batch already ended; the run goes on with its next batch");
            return Ok(ConversionClaim::Ended { status });
        }
        let resumed = transfer_state(&mut tx, batch_id).await?.is_some();
        let row_count: Option<i32> = row.try_get("row_count")?;
        let claim = ConversionClaim::Claimed {
            threshold_usd: row.try_get("threshold_at_creation")?,
            total_usd: row.try_get("total_eth_usd")?,
            total_eth: row.try_get("total_eth")?,
            row_count: row_count.map(i64::from).unwrap_or_default(),
            resumed,
            coin: stored_coin(&row.try_get::<String, _>("settlement_coin")?),
        };
        tx.commit().await?;
        info!(batch_id = %batch_id, resumed, "batch already claimed; carrying it on");
        return Ok(claim);
    }

    let pool_row = sqlx::query(PENDING_POOL_SQL).fetch_one(&mut *tx).await?;
    let (pool_usd, pool_eth, pending_rows): (Decimal, Decimal, i64) =
        (pool_row.try_get("usd")?, pool_row.try_get("eth")?, pool_row.try_get("n")?);
    if pending_rows == 0 || pool_usd < threshold {
        tx.commit().await?;
        info!(%pool_usd, %threshold, pending_rows, "pending pool below the micro-batch threshold");
        return Ok(ConversionClaim::BelowThreshold { pool_usd, pool_eth, pending_rows, threshold_usd: threshold });
    }

    // Under the claim lock no other claim runs, and new rows only ever arrive as `pending`:
    // the oldest rows are taken, and the totals are those of the rows actually claimed. The
    // batch settles in the stablecoin in force now, whatever is switched later.
    let coin = settlement_coin(&mut *tx).await?;
    sqlx::query(
        "INSERT INTO batch_conversions (batch_conversion_id, total_eth_usd, total_eth, threshold_at_creation,
             conversion_status, processing_started_at, row_count, workflow_id, settlement_coin)
         VALUES ($1, 0, 0, $2, 'swapping', now(), 0, $3, $4)",
    )
    .bind(batch_id)
    .bind(threshold)
    .bind(&request.workflow_id)
    .bind(coin.as_str())
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "UPDATE payout_accumulation SET conversion_status = 'swapping', batch_conversion_id = $1, updated_at = now()
         WHERE id IN (SELECT id FROM payout_accumulation WHERE conversion_status = 'pending' ORDER BY id LIMIT $2)",
    )
    .bind(batch_id)
    .bind(request.max_rows)
    .execute(&mut *tx)
    .await?;
    let totals = record_totals(&mut tx, batch_id).await?;
    tx.commit().await?;
    info!(batch_id = %batch_id, rows = totals.row_count, total_usd = %totals.total_usd, total_eth = %totals.total_eth,
        %threshold, pending_rows, "micro-batch claimed");
    Ok(ConversionClaim::Claimed {
        threshold_usd: threshold,
        total_usd: totals.total_usd,
        total_eth: totals.total_eth,
        row_count: totals.row_count,
        resumed: false,
        coin,
    })
}

/// `settings.settlement_stablecoin` (`starter stablecoin set`).
pub const SETTLEMENT_COIN_SETTING: &str = "settlement_stablecoin";

/// The stablecoin new conversions settle in.
pub async fn settlement_coin<'e>(db: impl sqlx::PgExecutor<'e>) -> Result<Stablecoin, sqlx::Error> {
    let text: Option<String> =
        sqlx::query_scalar("SELECT value FROM settings WHERE key = $1").bind(SETTLEMENT_COIN_SETTING).fetch_optional(db).await?;
    Ok(text.as_deref().and_then(Stablecoin::parse).unwrap_or_default())
}

/// Switches the stablecoin new conversions settle in; batches and rows already converted keep
/// theirs.
pub async fn set_settlement_coin(pool: &PgPool, coin: Stablecoin) -> Result<(), sqlx::Error> {
    super::settings::put(pool, SETTLEMENT_COIN_SETTING, coin.as_str()).await
}

/// A coin as stored (the column's CHECK allows only the two).
pub fn stored_coin(text: &str) -> Stablecoin {
    Stablecoin::parse(text).unwrap_or_default()
}

async fn batch_status(tx: &mut Tx<'_>, batch_id: Uuid) -> Result<String, ConversionLedgerError> {
    sqlx::query_scalar("SELECT conversion_status FROM batch_conversions WHERE batch_conversion_id = $1 FOR UPDATE")
        .bind(batch_id)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or_else(|| ConversionLedgerError::BadBatchId(batch_id.to_string()))
}

async fn limit_to(pool: &PgPool, limit: &BatchLimit) -> Result<BatchTotals, ConversionLedgerError> {
    let batch_id = parse_batch_id(&limit.batch_id)?;
    let mut tx = pool.begin().await?;
    let status = batch_status(&mut tx, batch_id).await?;
    if status != "swapping" {
        return Err(ConversionLedgerError::InvalidTransition { batch_id, status, wanted: "swapping" });
    }
    if transfer_state(&mut tx, batch_id).await?.is_some() {
        return Err(ConversionLedgerError::AlreadySending { batch_id });
    }
    // The oldest rows whose ETH fits stay; the rest wait for the next batch.
    let returned = sqlx::query(
        "UPDATE payout_accumulation SET conversion_status = 'pending', batch_conversion_id = NULL, updated_at = now()
         WHERE id IN (SELECT id FROM (SELECT id, sum(accumulated_eth) OVER (ORDER BY id) AS running
                                        FROM payout_accumulation
                                       WHERE batch_conversion_id = $1 AND conversion_status = 'swapping') r
                       WHERE r.running > $2)",
    )
    .bind(batch_id)
    .bind(limit.max_eth)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    let totals = record_totals(&mut tx, batch_id).await?;
    tx.commit().await?;
    info!(batch_id = %batch_id, returned, rows = totals.row_count, total_eth = %totals.total_eth, max_eth = %limit.max_eth,
        "micro-batch limited to ChangeNow's maximum");
    Ok(totals)
}

/// Operator step (`starter conversion resume`): the exchange of a batch that failed with its
/// rows kept finished late, and its USDT is on chain: the batch completes as
/// `db.complete_conversion` would have completed it.
pub async fn complete_late(pool: &PgPool, batch: &ConvertedBatch) -> Result<(), ConversionLedgerError> {
    complete(pool, batch, "failed").await
}

/// Splits and records a batch that is `from` (or already `completed`: nothing to do): the USDT
/// received over its rows by the ETH each brought.
async fn complete(pool: &PgPool, batch: &ConvertedBatch, from: &'static str) -> Result<(), ConversionLedgerError> {
    let batch_id = parse_batch_id(&batch.batch_id)?;
    let mut tx = pool.begin().await?;
    match batch_status(&mut tx, batch_id).await?.as_str() {
        "completed" => return Ok(()),
        status if status == from => {}
        other => return Err(ConversionLedgerError::InvalidTransition { batch_id, status: other.to_owned(), wanted: "completed" }),
    }
    // Each row's share is weighted by the ETH it brought (`accumulated_eth`): the USDT came from
    // that ETH. Its USD value (priced at payment time) is what thresholds count, not what is split.
    let rows: Vec<(i64, Decimal)> = sqlx::query_as(
        "SELECT id, accumulated_eth FROM payout_accumulation
         WHERE batch_conversion_id = $1 AND conversion_status = 'swapping' ORDER BY id",
    )
    .bind(batch_id)
    .fetch_all(&mut *tx)
    .await?;
    let expected: Option<i32> = sqlx::query_scalar("SELECT row_count FROM batch_conversions WHERE batch_conversion_id = $1")
        .bind(batch_id)
        .fetch_one(&mut *tx)
        .await?;
    if let Some(expected) = expected.filter(|n| *n as usize != rows.len()) {
        let problem = format!("{} rows are swapping but the batch claimed {expected}", rows.len());
        return Err(ConversionLedgerError::Inconsistent { batch_id, problem });
    }
    let weights: Vec<Decimal> = rows.iter().map(|(_, eth)| *eth).collect();
    let amounts = split_proportionally(batch.usdt_received, &weights, ChainAsset::Usdt.decimals())
        .map_err(|e| ConversionLedgerError::Inconsistent { batch_id, problem: format!("cannot split: {e}") })?;
    let sum: Decimal = amounts.iter().sum();
    if sum != batch.usdt_received {
        let problem = format!("shares sum to {sum} but {} USDT was received", batch.usdt_received);
        return Err(ConversionLedgerError::Inconsistent { batch_id, problem });
    }
    let ids: Vec<i64> = rows.iter().map(|(id, _)| *id).collect();
    let updated = sqlx::query(
        "UPDATE payout_accumulation a SET conversion_status = 'completed', accumulated_amount_usdt = s.usdt,
                eth_to_usdt_rate = CASE WHEN a.accumulated_eth > 0 THEN s.usdt / a.accumulated_eth END,
                conversion_tx_hash = $2, conversion_timestamp = now(), updated_at = now(),
                settlement_coin = (SELECT settlement_coin FROM batch_conversions WHERE batch_conversion_id = $1)
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
    .await
    .map_err(|e| match &e {
        // One payout transaction credits one batch (migration 0008): another batch already
        // counted this hash, so this one must not; the failure step keeps its rows.
        sqlx::Error::Database(d) if d.constraint() == Some("batch_conversions_payout_credited_once") => {
            let problem = format!("payout {} already completed another batch", batch.usdt_tx_hash);
            ConversionLedgerError::Inconsistent { batch_id, problem }
        }
        _ => ConversionLedgerError::Database(e),
    })?;
    batch_outcomes::record(&mut tx, BatchKind::Conversion, batch_id, Outcome::Completed).await?;
    tx.commit().await?;
    info!(batch_id = %batch_id, rows = ids.len(), usdt = %batch.usdt_received, weighted_by = "accumulated_eth",
        "micro-batch converted and split");
    Ok(())
}

/// Whether a failed batch's rows may go back to the pool: only while their ETH is provably in
/// the hot wallet. `Err` says why they stay.
pub fn rows_may_return(transfer: Option<&str>, batch_eth: Decimal, refund: Option<&SeenRefund>) -> Result<(), String> {
    match (transfer, refund) {
        (None, _) => Ok(()),
        // Mined and reverted, or its nonce taken by the outbox's cancellation: the value never
        // moved (only gas was spent).
        (Some("reverted" | "cancelled"), _) => Ok(()),
        (Some(_), Some(refund)) if refund.amount_eth >= batch_eth => Ok(()),
        (Some(_), Some(refund)) => Err(format!(
            "refund {} returned {} of {} ETH, {} ETH short; the rows stay swapping until the rest is recovered",
            refund.tx_hash,
            refund.amount_eth.normalize(),
            batch_eth.normalize(),
            (batch_eth - refund.amount_eth).normalize()
        )),
        (Some(_), None) => Err("its ETH transfer was prepared and may have left the hot wallet; no refund was seen".to_owned()),
    }
}

/// The failure step (`db.release_conversion`): the batch `failed` with its reason and an alert,
/// its rows returned only by [`rows_may_return`]. Idempotent.
pub async fn record_failure(pool: &PgPool, batch: &FailedBatch) -> Result<(), ConversionLedgerError> {
    let batch_id = parse_batch_id(&batch.batch_id)?;
    let mut tx = pool.begin().await?;
    match batch_status(&mut tx, batch_id).await?.as_str() {
        "failed" => return Ok(()),
        "swapping" | "pending" => {}
        other => return Err(ConversionLedgerError::InvalidTransition { batch_id, status: other.to_owned(), wanted: "failed" }),
    }
    let transfer = transfer_state(&mut tx, batch_id).await?;
    let batch_eth: Decimal = sqlx::query_scalar("SELECT total_eth FROM batch_conversions WHERE batch_conversion_id = $1")
        .bind(batch_id)
        .fetch_one(&mut *tx)
        .await?;
    let verdict = rows_may_return(transfer.as_deref(), batch_eth, batch.refund.as_ref());
    let released = match verdict {
        Ok(()) => return_rows(&mut tx, batch_id).await?,
        Err(_) => 0,
    };
    let reason = match &verdict {
        Ok(()) => batch.reason.clone(),
        Err(kept) => format!("{}; {kept}", batch.reason),
    };
    sqlx::query(
        "UPDATE batch_conversions SET conversion_status = 'failed', failure_reason = $2, cn_api_id = COALESCE($3, cn_api_id),
                refund_tx_hash = $4, refund_amount_eth = $5, rows_released = $6, completed_at = now()
         WHERE batch_conversion_id = $1",
    )
    .bind(batch_id)
    .bind(&reason)
    .bind(&batch.exchange_id)
    .bind(batch.refund.as_ref().map(|r| &r.tx_hash))
    .bind(batch.refund.as_ref().map(|r| r.amount_eth))
    .bind(verdict.is_ok())
    .execute(&mut *tx)
    .await?;
    let message = match verdict {
        Ok(()) => format!("micro-batch failed; {released} rows wait for the next batch: {reason}"),
        Err(_) => format!(
            "micro-batch failed after its ETH left the wallet; rows stay swapping until `starter conversion resume {batch_id}` \
             or `starter conversion return-rows {batch_id}`: {reason}"
        ),
    };
    let alert = NewAlert {
        dedupe_key: format!("conversion-failed-{batch_id}"),
        kind: AlertKind::ConversionBatchFailed,
        subject: batch_id.to_string(),
        message: &message,
    };
    alerts::raise(&mut tx, &alert).await?;
    batch_outcomes::record(&mut tx, BatchKind::Conversion, batch_id, Outcome::Failed).await?;
    tx.commit().await?;
    error!(batch_id = %batch_id, released, reason = %reason, alert = true, "micro-batch failed");
    Ok(())
}

/// The batch's `swapping` rows back to `pending`, for a later batch.
async fn return_rows(tx: &mut Tx<'_>, batch_id: Uuid) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query(
        "UPDATE payout_accumulation SET conversion_status = 'pending', batch_conversion_id = NULL, updated_at = now()
         WHERE batch_conversion_id = $1 AND conversion_status = 'swapping'",
    )
    .bind(batch_id)
    .execute(&mut **tx)
    .await?
    .rows_affected())
}

/// Operator step (`starter conversion return-rows`), once the ETH of a batch that failed after
/// its deposit is back in the hot wallet: its rows return to `pending` for the next batch. Only
/// when the rule holds (no transfer, or `refund` seen on chain for the batch's full amount),
/// unless `force` (an operator who recovered the ETH another way). Refuses any batch that is
/// not `failed`. Returns how many rows were returned.
pub async fn return_recovered_rows(
    pool: &PgPool,
    batch_id: Uuid,
    refund: Option<&SeenRefund>,
    force: bool,
) -> Result<u64, ConversionLedgerError> {
    let mut tx = pool.begin().await?;
    let row: Option<(String, Decimal)> =
        sqlx::query_as("SELECT conversion_status, total_eth FROM batch_conversions WHERE batch_conversion_id = $1 FOR UPDATE")
            .bind(batch_id)
            .fetch_optional(&mut *tx)
            .await?;
    let batch_eth = match row {
        Some((status, eth)) if status == "failed" => eth,
        Some((status, _)) => return Err(ConversionLedgerError::InvalidTransition { batch_id, status, wanted: "released" }),
        None => return Err(ConversionLedgerError::BadBatchId(batch_id.to_string())),
    };
    let transfer = transfer_state(&mut tx, batch_id).await?;
    if let Err(reason) = rows_may_return(transfer.as_deref(), batch_eth, refund) {
        if !force {
            return Err(ConversionLedgerError::NotRecovered { batch_id, reason });
        }
        warn!(batch_id = %batch_id, %reason, "an operator forced a failed batch's rows back to the pool");
    }
    let returned = return_rows(&mut tx, batch_id).await?;
    sqlx::query(
        "UPDATE batch_conversions SET rows_released = true,
                failure_reason = failure_reason || ' | rows returned by an operator at ' || now()
         WHERE batch_conversion_id = $1",
    )
    .bind(batch_id)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    info!(batch_id = %batch_id, returned, force, "operator returned a failed batch's rows to the pool");
    Ok(returned)
}

/// What an operator needs to recover a failed batch.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct FailedBatchView {
    pub conversion_status: String,
    pub cn_api_id: Option<String>,
    pub total_eth: Decimal,
    pub row_count: Option<i32>,
    pub rows_released: bool,
    pub failure_reason: Option<String>,
}

pub async fn find_batch(pool: &PgPool, batch_id: Uuid) -> Result<Option<FailedBatchView>, sqlx::Error> {
    sqlx::query_as(
        "SELECT conversion_status, cn_api_id, total_eth, row_count, rows_released, failure_reason
         FROM batch_conversions WHERE batch_conversion_id = $1",
    )
    .bind(batch_id)
    .fetch_optional(pool)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    fn refund(amount_eth: Decimal) -> SeenRefund {
        SeenRefund { tx_hash: "0xabc".into(), amount_eth }
    }

    #[test]
    fn rows_return_only_while_their_eth_is_provably_in_the_hot_wallet() {
        assert!(rows_may_return(None, dec!(1), None).is_ok(), "nothing was signed");
        assert!(rows_may_return(Some("reverted"), dec!(1), None).is_ok(), "the value never moved");
        assert!(rows_may_return(Some("cancelled"), dec!(1), None).is_ok(), "cancelled at its nonce: the value never moved");
        assert!(rows_may_return(Some("confirmed"), dec!(1), None).is_err(), "sent, no refund");
        assert!(rows_may_return(Some("signed"), dec!(1), None).is_err(), "signed: it may be mined any moment");
        assert!(rows_may_return(Some("confirmed"), dec!(1), Some(&refund(dec!(1)))).is_ok(), "full refund");
    }

    #[test]
    fn a_partial_refund_keeps_the_rows_and_names_the_shortfall() {
        let kept = rows_may_return(Some("confirmed"), dec!(0.014550000000000000), Some(&refund(dec!(0.013095)))).unwrap_err();
        assert!(kept.contains("0.001455 ETH short"), "{kept}");
        assert!(rows_may_return(Some("confirmed"), dec!(1), Some(&refund(Decimal::ZERO))).is_err());
    }
}
