//! `db.*` activities of `ClientPayoutWorkflow`: due groups, the payout batch claim, and its end.
//! Each is one transaction, idempotent on the batch id.

use super::{
    alerts::{self, AlertKind, NewAlert},
    batch_outcomes::{self, BatchKind, Outcome},
    conversion_ledger::stored_coin,
};
use rust_decimal::Decimal;
use sqlx::{PgPool, Row};
use std::sync::Arc;
use temporalio_common::error::ApplicationFailure;
use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};
use tracing::{error, info};
use uuid::Uuid;
use workflows::activity_definitions::{
    ClaimNextPayoutBatch, ClaimPayoutBatch, ClaimedBatch, ClaimedPayout, CompletePayoutBatch, DueQuery, FailPayoutBatch,
    FindDuePayoutGroups, FixPayoutParts, PayoutClaimRequest, PayoutCompletion, PayoutFailure, PayoutGroup, PayoutParts, ReopenPayoutBatch,
    ReopenedPayout,
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
    #[error("{0}")]
    Setting(String),
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

    #[activity(definition = ClaimNextPayoutBatch)]
    pub async fn claim_next_payout_batch(
        self: Arc<Self>,
        _ctx: ActivityContext,
        group: PayoutGroup,
    ) -> Result<Option<ClaimedBatch>, ActivityError> {
        claim_next(&self.pool, &group).await.map_err(PayoutLedgerError::into_activity_error)
    }

    #[activity(definition = CompletePayoutBatch)]
    pub async fn complete_payout_batch(self: Arc<Self>, _ctx: ActivityContext, completion: PayoutCompletion) -> Result<(), ActivityError> {
        complete(&self.pool, &completion).await.map_err(PayoutLedgerError::into_activity_error)
    }

    #[activity(definition = ReopenPayoutBatch)]
    pub async fn reopen_payout_batch(self: Arc<Self>, _ctx: ActivityContext, batch_id: String) -> Result<ReopenedPayout, ActivityError> {
        let batch_id = parse(&batch_id).map_err(PayoutLedgerError::into_activity_error)?;
        reopen(&self.pool, batch_id).await.map_err(PayoutLedgerError::into_activity_error)
    }

    #[activity(definition = FixPayoutParts)]
    pub async fn fix_payout_parts(self: Arc<Self>, _ctx: ActivityContext, parts: PayoutParts) -> Result<Vec<Decimal>, ActivityError> {
        fix_parts(&self.pool, &parts).await.map_err(PayoutLedgerError::into_activity_error)
    }

    #[activity(definition = FailPayoutBatch)]
    pub async fn fail_payout_batch(self: Arc<Self>, _ctx: ActivityContext, failure: PayoutFailure) -> Result<(), ActivityError> {
        fail(&self.pool, &failure).await.map_err(PayoutLedgerError::into_activity_error)
    }
}

/// Converted, unpaid rows not in an open batch, per group: at or over the client's threshold
/// (any amount once the client has switched to instant payouts), or holding a row older than
/// `max_age_days`, or every group of `only_client`. Reads the trigger-maintained
/// `payout_group_balances` (one row per group, with its threshold), not the rows themselves.
/// A group held below ChangeNow's minimum (`payout_group_holds`) is due again only once it has
/// reached it, unless an operator names its client.
pub async fn due_groups(pool: &PgPool, query: &DueQuery) -> Result<Vec<PayoutGroup>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT b.client_id, b.client_wallet_address, b.client_payout_currency, b.client_payout_network
         FROM payout_group_balances b
         LEFT JOIN payout_group_holds h
           USING (client_id, client_wallet_address, client_payout_currency, client_payout_network)
         WHERE b.unpaid_rows > 0 AND ($2::text IS NULL OR b.client_id = $2)
           AND ($2::text IS NOT NULL
                OR ((b.unpaid_usdt >= b.due_at_usdt
                     OR b.oldest_unpaid_at < now() - make_interval(days => COALESCE($1::int, 1000000)))
                    AND (h.minimum_usdt IS NULL OR b.unpaid_usdt >= h.minimum_usdt)))",
    )
    .bind(query.max_age_days.map(|d| d as i32))
    .bind(&query.only_client)
    .fetch_all(pool)
    .await?;
    rows.iter().map(group_of).collect()
}

/// The payout group of a row that has the four group columns.
fn group_of(row: &sqlx::postgres::PgRow) -> Result<PayoutGroup, sqlx::Error> {
    Ok(PayoutGroup {
        client_id: row.try_get("client_id")?,
        wallet_address: row.try_get("client_wallet_address")?,
        payout_currency: row.try_get("client_payout_currency")?,
        payout_network: row.try_get("client_payout_network")?,
    })
}

fn parse(batch_id: &str) -> Result<Uuid, PayoutLedgerError> {
    Uuid::parse_str(batch_id).map_err(|_| PayoutLedgerError::BadBatchId(batch_id.to_owned()))
}

async fn claim(pool: &PgPool, request: &PayoutClaimRequest) -> Result<Option<ClaimedPayout>, PayoutLedgerError> {
    let batch_id = parse(&request.batch_id)?;
    let mut tx = pool.begin().await?;
    if let Some(row) =
        sqlx::query("SELECT status, total_amount_usdt, total_payments_count, settlement_coin FROM payout_batches WHERE batch_id = $1")
            .bind(batch_id)
            .fetch_optional(&mut *tx)
            .await?
    {
        let status: String = row.try_get("status")?;
        if status != "processing" {
            return Err(PayoutLedgerError::InvalidTransition { batch_id, status, wanted: "processing" });
        }
        let rows: i32 = row.try_get("total_payments_count")?;
        let coin = stored_coin(&row.try_get::<String, _>("settlement_coin")?);
        return Ok(Some(ClaimedPayout { total_usdt: row.try_get("total_amount_usdt")?, rows: i64::from(rows), coin }));
    }
    let claimed = claim_rows(&mut tx, request, None).await?;
    if claimed.is_some() {
        tx.commit().await?;
    }
    Ok(claimed)
}

/// Inserts the batch (`processing`, numbered `sequence` in its group when given) and claims exactly
/// the group's unpaid rows into it; `None` (roll the transaction back) when there are none.
async fn claim_rows(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    request: &PayoutClaimRequest,
    sequence: Option<i32>,
) -> Result<Option<ClaimedPayout>, PayoutLedgerError> {
    let batch_id = parse(&request.batch_id)?;
    let group = &request.group;
    // A batch never mixes stablecoins. It takes the coin the group holds most of (the older one on
    // a tie); the other coin's rows wait for the group's next batch. Not the oldest row's coin: a
    // small remainder left in the old coin after a switch could be below ChangeNow's minimum, fail,
    // and be claimed again at every payout while the bulk in the new coin waited behind it.
    let coin: Option<String> = sqlx::query_scalar(
        "SELECT settlement_coin FROM payout_accumulation
         WHERE client_id = $1 AND client_wallet_address = $2 AND client_payout_currency = $3
           AND client_payout_network = $4 AND conversion_status = 'completed' AND NOT is_paid_out
           AND payout_batch_id IS NULL
         GROUP BY settlement_coin ORDER BY sum(accumulated_amount_usdt) DESC, min(id) LIMIT 1",
    )
    .bind(&group.client_id)
    .bind(&group.wallet_address)
    .bind(&group.payout_currency)
    .bind(&group.payout_network)
    .fetch_optional(&mut **tx)
    .await?;
    let Some(coin) = coin.as_deref().map(stored_coin) else { return Ok(None) };
    sqlx::query(
        "INSERT INTO payout_batches (batch_id, client_id, client_wallet_address, client_payout_currency,
             client_payout_network, total_amount_usdt, total_payments_count, status, processing_started_at, group_sequence,
             settlement_coin)
         VALUES ($1, $2, $3, $4, $5, 0, 0, 'processing', now(), $6, $7)",
    )
    .bind(batch_id)
    .bind(&group.client_id)
    .bind(&group.wallet_address)
    .bind(&group.payout_currency)
    .bind(&group.payout_network)
    .bind(sequence)
    .bind(coin.as_str())
    .execute(&mut **tx)
    .await?;
    // One statement: rows claimed by a concurrent batch are re-checked after their lock and skipped.
    let claimed: Vec<Decimal> = sqlx::query_scalar(
        "UPDATE payout_accumulation SET payout_batch_id = $1, updated_at = now()
         WHERE client_id = $2 AND client_wallet_address = $3 AND client_payout_currency = $4
           AND client_payout_network = $5 AND conversion_status = 'completed' AND NOT is_paid_out
           AND payout_batch_id IS NULL AND settlement_coin = $6
         RETURNING accumulated_amount_usdt",
    )
    .bind(batch_id)
    .bind(&group.client_id)
    .bind(&group.wallet_address)
    .bind(&group.payout_currency)
    .bind(&group.payout_network)
    .bind(coin.as_str())
    .fetch_all(&mut **tx)
    .await?;
    if claimed.is_empty() {
        return Ok(None);
    }
    let total: Decimal = claimed.iter().sum();
    sqlx::query("UPDATE payout_batches SET total_amount_usdt = $2, total_payments_count = $3 WHERE batch_id = $1")
        .bind(batch_id)
        .bind(total)
        .bind(claimed.len() as i32)
        .execute(&mut **tx)
        .await?;
    info!(batch_id = %batch_id, client_id = %group.client_id, sequence, rows = claimed.len(), usdt = %total, "payout batch claimed");
    Ok(Some(ClaimedPayout { total_usdt: total, rows: claimed.len() as i64, coin }))
}

/// See `db.claim_next_payout_batch`. The group's balance row is locked first, so two claims of one
/// group (two runs cannot, but a retried call and a late one can) take turns.
async fn claim_next(pool: &PgPool, group: &PayoutGroup) -> Result<Option<ClaimedBatch>, PayoutLedgerError> {
    let mut tx = pool.begin().await?;
    sqlx::query(
        "SELECT 1 FROM payout_group_balances
         WHERE client_id = $1 AND client_wallet_address = $2 AND client_payout_currency = $3 AND client_payout_network = $4
         FOR UPDATE",
    )
    .bind(&group.client_id)
    .bind(&group.wallet_address)
    .bind(&group.payout_currency)
    .bind(&group.payout_network)
    .execute(&mut *tx)
    .await?;
    // The batch a run of the group claimed and left open (this call retried, or the run ended
    // mid-payout). One an operator reopened belongs to its own run, not the group's.
    let open = sqlx::query(
        "SELECT batch_id, group_sequence, total_amount_usdt, total_payments_count, retries, exchange_parts, status, settlement_coin
         FROM payout_batches
         WHERE client_id = $1 AND client_wallet_address = $2 AND client_payout_currency = $3 AND client_payout_network = $4
           AND status IN ('processing', 'awaiting_approval') AND group_sequence IS NOT NULL AND reopened_at IS NULL
         ORDER BY group_sequence LIMIT 1",
    )
    .bind(&group.client_id)
    .bind(&group.wallet_address)
    .bind(&group.payout_currency)
    .bind(&group.payout_network)
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(row) = open {
        let batch_id: Uuid = row.try_get("batch_id")?;
        let (sequence, rows, retries): (i32, i32, i32) =
            (row.try_get("group_sequence")?, row.try_get("total_payments_count")?, row.try_get("retries")?);
        info!(batch_id = %batch_id, client_id = %group.client_id, sequence, "open payout batch taken over");
        return Ok(Some(ClaimedBatch {
            batch_id: batch_id.to_string(),
            sequence: sequence.unsigned_abs(),
            total_usdt: row.try_get("total_amount_usdt")?,
            rows: i64::from(rows),
            retries: retries.unsigned_abs(),
            parts: row.try_get("exchange_parts")?,
            taken_over: true,
            coin: stored_coin(&row.try_get::<String, _>("settlement_coin")?),
            awaiting_approval: row.try_get::<String, _>("status")? == "awaiting_approval",
        }));
    }
    let sequence: i32 = sqlx::query_scalar(
        "SELECT COALESCE(max(group_sequence), 0) + 1 FROM payout_batches
         WHERE client_id = $1 AND client_wallet_address = $2 AND client_payout_currency = $3 AND client_payout_network = $4",
    )
    .bind(&group.client_id)
    .bind(&group.wallet_address)
    .bind(&group.payout_currency)
    .bind(&group.payout_network)
    .fetch_one(&mut *tx)
    .await?;
    let batch_id = group.batch_id(sequence.unsigned_abs());
    let request = PayoutClaimRequest { batch_id: batch_id.clone(), group: group.clone() };
    let Some(claimed) = claim_rows(&mut tx, &request, Some(sequence)).await? else {
        // Dropping the transaction removes the empty batch; its sequence number is not used up.
        return Ok(None);
    };
    let awaiting_approval = super::payout_limits::hold_batch_if_over(&mut tx, parse(&batch_id)?, &group.client_id, claimed.total_usdt)
        .await
        .map_err(|e| match e {
            super::payout_limits::PayoutLimitError::Database(e)
            | super::payout_limits::PayoutLimitError::Approval(super::payout_approval::PayoutApprovalError::Database(e)) => {
                PayoutLedgerError::Database(e)
            }
            other => PayoutLedgerError::Setting(other.to_string()),
        })?;
    tx.commit().await?;
    Ok(Some(ClaimedBatch {
        batch_id,
        sequence: sequence.unsigned_abs(),
        total_usdt: claimed.total_usdt,
        rows: claimed.rows,
        retries: 0,
        parts: None,
        taken_over: false,
        coin: claimed.coin,
        awaiting_approval,
    }))
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
                client_payout_currency, client_payout_network, settlement_coin
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
        ("failed" | "rejected", true) => return Ok(ReopenedPayout::RowsReleased),
        // Only an operator's approval moves it on; a retry must never pay it.
        ("awaiting_approval" | "rejected", _) => {
            return Err(PayoutLedgerError::InvalidTransition { batch_id, status, wanted: "processing" });
        }
        ("failed", false) => {
            retries = sqlx::query_scalar(
                "UPDATE payout_batches SET status = 'processing', retries = retries + 1, processing_started_at = now(),
                        completed_at = NULL, reopened_at = now()
                 WHERE batch_id = $1 RETURNING retries",
            )
            .bind(batch_id)
            .fetch_one(&mut *tx)
            .await?;
            info!(batch_id = %batch_id, retries, "payout batch reopened for a retry");
        }
        // Left `processing` by a run that ended: from now on its own run pays it, and the group's
        // next run must not take it over as well.
        _ => {
            sqlx::query("UPDATE payout_batches SET reopened_at = now() WHERE batch_id = $1").bind(batch_id).execute(&mut *tx).await?;
        }
    }
    let group = group_of(&row)?;
    let total_usdt = row.try_get("total_amount_usdt")?;
    let parts = row.try_get("exchange_parts")?;
    let coin = stored_coin(&row.try_get::<String, _>("settlement_coin")?);
    tx.commit().await?;
    Ok(ReopenedPayout::Open { group, total_usdt, retries: retries.unsigned_abs(), parts, coin })
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
    let join =
        |f: &dyn Fn(&workflows::activity_definitions::PayoutLeg) -> String| completion.legs.iter().map(f).collect::<Vec<_>>().join(",");
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
    // The group was paid: whatever held it below ChangeNow's minimum is over.
    sqlx::query(
        "DELETE FROM payout_group_holds h USING payout_batches b
         WHERE b.batch_id = $1 AND (h.client_id, h.client_wallet_address, h.client_payout_currency, h.client_payout_network)
             = (b.client_id, b.client_wallet_address, b.client_payout_currency, b.client_payout_network)",
    )
    .bind(batch_id)
    .execute(&mut *tx)
    .await?;
    batch_outcomes::record(&mut tx, BatchKind::Payout, batch_id, Outcome::Completed).await?;
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
        sqlx::query(
            "UPDATE payout_accumulation SET payout_batch_id = NULL, updated_at = now() WHERE payout_batch_id = $1 AND NOT is_paid_out",
        )
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
    match failure.below_minimum_usdt.filter(|_| failure.release_rows) {
        Some(minimum) => hold_group(&mut tx, batch_id, minimum, &failure.reason).await?,
        None => {
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
        }
    }
    batch_outcomes::record(&mut tx, BatchKind::Payout, batch_id, Outcome::Failed).await?;
    tx.commit().await?;
    error!(batch_id = %batch_id, reason = %failure.reason, released = failure.release_rows, retries, alert = true, "payout batch failed");
    Ok(())
}

/// The failed batch's group cannot be paid until its unpaid USDT reaches ChangeNow's `minimum`:
/// the sweep leaves it until then (`due_groups`), and one alert per group stays open meanwhile,
/// however often an operator's early payout or retry finds it below again.
async fn hold_group(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    batch_id: Uuid,
    minimum: Decimal,
    reason: &str,
) -> Result<(), PayoutLedgerError> {
    let row = sqlx::query(
        "INSERT INTO payout_group_holds (client_id, client_wallet_address, client_payout_currency, client_payout_network,
                                         minimum_usdt, batch_id, reason)
         SELECT client_id, client_wallet_address, client_payout_currency, client_payout_network, $2, batch_id, $3
           FROM payout_batches WHERE batch_id = $1
         ON CONFLICT (client_id, client_wallet_address, client_payout_currency, client_payout_network) DO UPDATE
             SET minimum_usdt = EXCLUDED.minimum_usdt, batch_id = EXCLUDED.batch_id, reason = EXCLUDED.reason, held_at = now()
         RETURNING client_id, client_wallet_address, client_payout_currency, client_payout_network",
    )
    .bind(batch_id)
    .bind(minimum)
    .bind(reason)
    .fetch_one(&mut **tx)
    .await?;
    let group = group_of(&row)?;
    let client_id = &group.client_id;
    let message = format!(
        "{reason}; payout group {} cannot be paid until its unpaid USDT reaches {minimum}: its rows stay unpaid and the \
         sweep leaves the group until then (`starter payout now {client_id}` tries it earlier)",
        group.key()
    );
    let alert = NewAlert {
        dedupe_key: format!("payout-group-below-minimum-{}", group.key()),
        kind: AlertKind::PayoutBatchFailed,
        subject: batch_id.to_string(),
        message: &message,
    };
    let raised = alerts::raise_unless_open(tx, &alert).await?;
    info!(batch_id = %batch_id, client_id = %client_id, %minimum, alert = raised, "payout group held below ChangeNow's minimum");
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
        group: group_of(&row)?,
        status: row.try_get("status")?,
        total_usdt: row.try_get("total_amount_usdt")?,
        rows_released: row.try_get("rows_released")?,
        retries: row.try_get("retries")?,
        failure_reason: row.try_get("failure_reason")?,
    }))
}
