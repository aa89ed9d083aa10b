//! `db.*` activities of `ClientPayoutWorkflow`: due groups, the payout batch claim, and its end.
//! Each is one transaction, idempotent on the batch id.

use rust_decimal::Decimal;
use sqlx::{PgPool, Row};
use std::sync::Arc;
use temporalio_common::error::ApplicationFailure;
use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};
use tracing::{error, info};
use uuid::Uuid;
use super::alerts::{self, AlertKind, NewAlert};
use workflows::activity_definitions::{
    ClaimPayoutBatch, ClaimedPayout, CompletePayoutBatch, DueQuery, FailPayoutBatch, FindDuePayoutGroups, FixPayoutParts,
    PayoutClaimRequest, PayoutCompletion, PayoutFailure, PayoutGroup, PayoutParts, ReopenPayoutBatch, ReopenedPayout,
};

#[derive(Debug, thiserror::Error)]
pub enum PayoutLedgerError {
    #[error("'{0}' is not a batch id")]
    BadBatchId(String),
    #[error("there is no payout batch {0}")]
    UnknownBatch(Uuid),
    #[error("the exchange parts of payout batch {batch_id} sum to {parts}, not its total {total}")]
    PartsDoNotSum { batch_id: Uuid, parts: Decimal, total: Decimal },
    #[error("payout batch {batch_id} is '{status}' and cannot become '{wanted}'")]
    InvalidTransition { batch_id: Uuid, status: String, wanted: &'static str },
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

impl PayoutLedgerError {
    fn into_activity_error(self) -> ActivityError {
        ActivityError::application(match self {
            Self::Database(_) => ApplicationFailure::new(self),
            _ => ApplicationFailure::non_retryable(self),
        })
    }
}

pub struct PayoutLedgerActivities {
    pool: PgPool,
}

impl PayoutLedgerActivities {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

#[activities]
impl PayoutLedgerActivities {
    #[activity(definition = FindDuePayoutGroups)]
    pub async fn find_due_payout_groups(
        self: Arc<Self>,
        _ctx: ActivityContext,
        query: DueQuery,
    ) -> Result<Vec<PayoutGroup>, ActivityError> {
        due_groups(&self.pool, &query).await.map_err(|e| PayoutLedgerError::from(e).into_activity_error())
    }

    #[activity(definition = ClaimPayoutBatch)]
    pub async fn claim_payout_batch(
        self: Arc<Self>,
        _ctx: ActivityContext,
        request: PayoutClaimRequest,
    ) -> Result<Option<ClaimedPayout>, ActivityError> {
        claim(&self.pool, &request).await.map_err(PayoutLedgerError::into_activity_error)
    }

    #[activity(definition = CompletePayoutBatch)]
    pub async fn complete_payout_batch(
        self: Arc<Self>,
        _ctx: ActivityContext,
        completion: PayoutCompletion,
    ) -> Result<(), ActivityError> {
        complete(&self.pool, &completion).await.map_err(PayoutLedgerError::into_activity_error)
    }

    #[activity(definition = ReopenPayoutBatch)]
    pub async fn reopen_payout_batch(
        self: Arc<Self>,
        _ctx: ActivityContext,
        batch_id: String,
    ) -> Result<ReopenedPayout, ActivityError> {
        let batch_id = parse(&batch_id).map_err(PayoutLedgerError::into_activity_error)?;
        reopen(&self.pool, batch_id).await.map_err(PayoutLedgerError::into_activity_error)
    }

    #[activity(definition = FixPayoutParts)]
    pub async fn fix_payout_parts(
        self: Arc<Self>,
        _ctx: ActivityContext,
        parts: PayoutParts,
    ) -> Result<Vec<Decimal>, ActivityError> {
        fix_parts(&self.pool, &parts).await.map_err(PayoutLedgerError::into_activity_error)
    }

    #[activity(definition = FailPayoutBatch)]
    pub async fn fail_payout_batch(
        self: Arc<Self>,
        _ctx: ActivityContext,
        failure: PayoutFailure,
    ) -> Result<(), ActivityError> {
        fail(&self.pool, &failure).await.map_err(PayoutLedgerError::into_activity_error)
    }
}

/// Converted, unpaid rows not in an open batch, per group: at or over the client's threshold
/// (any amount once the client has switched to instant payouts), or holding a row older than
/// `max_age_days`, or every group of `only_client`. Reads the trigger-maintained
/// `payout_group_balances` (one row per group, with its threshold), not the rows themselves.
pub async fn due_groups(pool: &PgPool, query: &DueQuery) -> Result<Vec<PayoutGroup>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT client_id, client_wallet_address, client_payout_currency, client_payout_network
         FROM payout_group_balances
         WHERE unpaid_rows > 0 AND ($2::text IS NULL OR client_id = $2)
           AND ($2::text IS NOT NULL
                OR unpaid_usdt >= due_at_usdt
                OR oldest_unpaid_at < now() - make_interval(days => COALESCE($1::int, 1000000)))",
    )
    .bind(query.max_age_days.map(|d| d as i32))
    .bind(&query.only_client)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(PayoutGroup {
                client_id: r.try_get("client_id")?,
                wallet_address: r.try_get("client_wallet_address")?,
                payout_currency: r.try_get("client_payout_currency")?,
                payout_network: r.try_get("client_payout_network")?,
            })
        })
        .collect()
}

fn parse(batch_id: &str) -> Result<Uuid, PayoutLedgerError> {
    Uuid::parse_str(batch_id).map_err(|_| PayoutLedgerError::BadBatchId(batch_id.to_owned()))
}

async fn claim(pool: &PgPool, request: &PayoutClaimRequest) -> Result<Option<ClaimedPayout>, PayoutLedgerError> {
    let batch_id = parse(&request.batch_id)?;
    let group = &request.group;
    let mut tx = pool.begin().await?;
    if let Some(row) =
        sqlx::query("SELECT status, total_amount_usdt, total_payments_count FROM payout_batches WHERE batch_id = $1")
            .bind(batch_id)
            .fetch_optional(&mut *tx)
            .await?
    {
        let status: String = row.try_get("status")?;
        if status != "processing" {
            return Err(PayoutLedgerError::InvalidTransition { batch_id, status, wanted: "processing" });
        }
        let rows: i32 = row.try_get("total_payments_count")?;
        return Ok(Some(ClaimedPayout { total_usdt: row.try_get("total_amount_usdt")?, rows: i64::from(rows) }));
    }
    sqlx::query(
        "INSERT INTO payout_batches (batch_id, client_id, client_wallet_address, client_payout_currency,
             client_payout_network, total_amount_usdt, total_payments_count, status, processing_started_at)
         VALUES ($1, $2, $3, $4, $5, 0, 0, 'processing', now())",
    )
    .bind(batch_id)
    .bind(&group.client_id)
    .bind(&group.wallet_address)
    .bind(&group.payout_currency)
    .bind(&group.payout_network)
    .execute(&mut *tx)
    .await?;
    // One statement: rows claimed by a concurrent batch are re-checked after their lock and skipped.
    let claimed: Vec<Decimal> = sqlx::query_scalar(
        "UPDATE payout_accumulation SET payout_batch_id = $1, updated_at = now()
         WHERE client_id = $2 AND client_wallet_address = $3 AND client_payout_currency = $4
           AND client_payout_network = $5 AND conversion_status = 'completed' AND NOT is_paid_out
           AND payout_batch_id IS NULL
         RETURNING accumulated_amount_usdt",
    )
    .bind(batch_id)
    .bind(&group.client_id)
    .bind(&group.wallet_address)
    .bind(&group.payout_currency)
    .bind(&group.payout_network)
    .fetch_all(&mut *tx)
    .await?;
    if claimed.is_empty() {
        // Dropping the transaction removes the empty batch too.
        return Ok(None);
    }
    let total: Decimal = claimed.iter().sum();
    sqlx::query("UPDATE payout_batches SET total_amount_usdt = $2, total_payments_count = $3 WHERE batch_id = $1")
        .bind(batch_id)
        .bind(total)
        .bind(claimed.len() as i32)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    info!(batch_id = %batch_id, client_id = %group.client_id, rows = claimed.len(), usdt = %total, "payout batch claimed");
    Ok(Some(ClaimedPayout { total_usdt: total, rows: claimed.len() as i64 }))
}

async fn locked_status(tx: &mut sqlx::Transaction<'_, sqlx::Postgres>, batch_id: Uuid) -> Result<String, PayoutLedgerError> {
    sqlx::query_scalar("SELECT status FROM payout_batches WHERE batch_id = $1 FOR UPDATE")
        .bind(batch_id)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or(PayoutLedgerError::UnknownBatch(batch_id))
}

/// The operator's retry (see [`ReopenedPayout`]); also what `starter batch retry` reads to decide.
pub async fn reopen(pool: &PgPool, batch_id: Uuid) -> Result<ReopenedPayout, PayoutLedgerError> {
    let mut tx = pool.begin().await?;
    let row = sqlx::query(
        "SELECT status, rows_released, retries, total_amount_usdt, exchange_parts, client_id, client_wallet_address,
                client_payout_currency, client_payout_network
         FROM payout_batches WHERE batch_id = $1 FOR UPDATE",
    )
    .bind(batch_id)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(PayoutLedgerError::UnknownBatch(batch_id))?;
    let status: String = row.try_get("status")?;
    let mut retries: i32 = row.try_get("retries")?;
    match (status.as_str(), row.try_get::<bool, _>("rows_released")?) {
        ("completed", _) => return Ok(ReopenedPayout::AlreadyCompleted),
        ("failed", true) => return Ok(ReopenedPayout::RowsReleased),
        ("failed", false) => {
            retries = sqlx::query_scalar(
                "UPDATE payout_batches SET status = 'processing', retries = retries + 1, processing_started_at = now(),
                        completed_at = NULL
                 WHERE batch_id = $1 RETURNING retries",
            )
            .bind(batch_id)
            .fetch_one(&mut *tx)
            .await?;
            info!(batch_id = %batch_id, retries, "payout batch reopened for a retry");
        }
        _ => {}
    }
    let group = PayoutGroup {
        client_id: row.try_get("client_id")?,
        wallet_address: row.try_get("client_wallet_address")?,
        payout_currency: row.try_get("client_payout_currency")?,
        payout_network: row.try_get("client_payout_network")?,
    };
    let total_usdt = row.try_get("total_amount_usdt")?;
    let parts = row.try_get("exchange_parts")?;
    tx.commit().await?;
    Ok(ReopenedPayout::Open { group, total_usdt, retries: retries.unsigned_abs(), parts })
}

async fn fix_parts(pool: &PgPool, parts: &PayoutParts) -> Result<Vec<Decimal>, PayoutLedgerError> {
    let batch_id = parse(&parts.batch_id)?;
    let (stored, total): (Option<Vec<Decimal>>, Decimal) = sqlx::query_as(
        "UPDATE payout_batches SET exchange_parts = COALESCE(exchange_parts, $2)
         WHERE batch_id = $1 RETURNING exchange_parts, total_amount_usdt",
    )
    .bind(batch_id)
    .bind(&parts.parts)
    .fetch_optional(pool)
    .await?
    .ok_or(PayoutLedgerError::UnknownBatch(batch_id))?;
    let stored = stored.unwrap_or_default();
    let sum: Decimal = stored.iter().sum();
    if sum != total {
        return Err(PayoutLedgerError::PartsDoNotSum { batch_id, parts: sum, total });
    }
    Ok(stored)
}

async fn complete(pool: &PgPool, completion: &PayoutCompletion) -> Result<(), PayoutLedgerError> {
    let batch_id = parse(&completion.batch_id)?;
    let mut tx = pool.begin().await?;
    match locked_status(&mut tx, batch_id).await?.as_str() {
        "completed" => return Ok(()),
        "processing" => {}
        other => return Err(PayoutLedgerError::InvalidTransition { batch_id, status: other.to_owned(), wanted: "completed" }),
    }
    sqlx::query(
        "UPDATE payout_accumulation SET is_paid_out = true, paid_out_at = now(), updated_at = now()
         WHERE payout_batch_id = $1 AND NOT is_paid_out",
    )
    .bind(batch_id)
    .execute(&mut *tx)
    .await?;
    let received: Decimal = completion.legs.iter().map(|l| l.amount_received).sum();
    let sent: Decimal = completion.legs.iter().map(|l| l.usdt_sent).sum();
    let join = |f: &dyn Fn(&workflows::activity_definitions::PayoutLeg) -> String| {
        completion.legs.iter().map(f).collect::<Vec<_>>().join(",")
    };
    sqlx::query(
        "UPDATE payout_batches SET status = 'completed', payout_amount_crypto = $2,
                usdt_to_crypto_rate = CASE WHEN $3 > 0 THEN $2 / $3 END, cn_api_id = $4, tx_hash = $5,
                tx_status = 'confirmed', completed_at = now()
         WHERE batch_id = $1",
    )
    .bind(batch_id)
    .bind(received)
    .bind(sent)
    .bind(join(&|l| l.exchange_id.clone()))
    .bind(join(&|l| l.usdt_tx_hash.clone()))
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    info!(batch_id = %batch_id, exchanges = completion.legs.len(), %received, "payout batch completed");
    Ok(())
}

async fn fail(pool: &PgPool, failure: &PayoutFailure) -> Result<(), PayoutLedgerError> {
    let batch_id = parse(&failure.batch_id)?;
    let mut tx = pool.begin().await?;
    match locked_status(&mut tx, batch_id).await?.as_str() {
        "failed" => return Ok(()),
        "processing" | "pending" => {}
        other => return Err(PayoutLedgerError::InvalidTransition { batch_id, status: other.to_owned(), wanted: "failed" }),
    }
    if failure.release_rows {
        sqlx::query("UPDATE payout_accumulation SET payout_batch_id = NULL, updated_at = now() WHERE payout_batch_id = $1 AND NOT is_paid_out")
            .bind(batch_id)
            .execute(&mut *tx)
            .await?;
    }
    let retries: i32 = sqlx::query_scalar(
        "UPDATE payout_batches SET status = 'failed', failure_reason = $2, rows_released = $3, completed_at = now()
         WHERE batch_id = $1 RETURNING retries",
    )
    .bind(batch_id)
    .bind(&failure.reason)
    .bind(failure.release_rows)
    .fetch_one(&mut *tx)
    .await?;
    let next_step = match failure.release_rows {
        true => "its rows are unpaid again",
        false => "USDT left the hot wallet, so its rows stay with it",
    };
    let message = format!("{}; {next_step}; `starter batch retry {batch_id}` pays it once", failure.reason);
    let alert = NewAlert {
        dedupe_key: format!("payout-failed-{batch_id}-{retries}"),
        kind: AlertKind::PayoutBatchFailed,
        subject: batch_id.to_string(),
        message: &message,
    };
    alerts::raise(&mut tx, &alert).await?;
    tx.commit().await?;
    error!(batch_id = %batch_id, reason = %failure.reason, released = failure.release_rows, retries, alert = true, "payout batch failed");
    Ok(())
}

/// A payout batch as an operator sees it.
#[derive(Debug, Clone)]
pub struct PayoutBatchSummary {
    pub batch_id: Uuid,
    pub group: PayoutGroup,
    pub status: String,
    pub total_usdt: Decimal,
    pub rows_released: bool,
    pub retries: i32,
    pub failure_reason: Option<String>,
}

pub async fn find_batch(pool: &PgPool, batch_id: Uuid) -> Result<Option<PayoutBatchSummary>, sqlx::Error> {
    let Some(row) = sqlx::query(
        "SELECT status, rows_released, retries, total_amount_usdt, failure_reason, client_id, client_wallet_address,
                client_payout_currency, client_payout_network
         FROM payout_batches WHERE batch_id = $1",
    )
    .bind(batch_id)
    .fetch_optional(pool)
    .await?
    else {
        return Ok(None);
    };
    Ok(Some(PayoutBatchSummary {
        batch_id,
        group: PayoutGroup {
            client_id: row.try_get("client_id")?,
            wallet_address: row.try_get("client_wallet_address")?,
            payout_currency: row.try_get("client_payout_currency")?,
            payout_network: row.try_get("client_payout_network")?,
        },
        status: row.try_get("status")?,
        total_usdt: row.try_get("total_amount_usdt")?,
        rows_released: row.try_get("rows_released")?,
        retries: row.try_get("retries")?,
        failure_reason: row.try_get("failure_reason")?,
    }))
}
