//! The approval gate of payouts (BTCPay's AwaitingApproval): a new payout batch above
//! `settings.payout_approval_above_usd` (or over its client's daily limit, see
//! [`payout_limits`](super::payout_limits), which holds it) is claimed `awaiting_approval`, with one
//! alert, and its run waits for an operator's `approve` or `reject` (the admin console, the API,
//! `starter batch approve|reject` or the Temporal UI: the same signal). `db.record_payout_approval`
//! records the answer: approved -> `processing`; rejected -> `rejected` with the reason and the
//! rows released. Instant payouts above the amount wait the same way (`db.gate_instant_payout`).

use super::batch_outcomes::{self, BatchKind, Outcome};
use rust_decimal::Decimal;
use sqlx::PgPool;
use std::{str::FromStr, sync::Arc};
use temporalio_common::error::ApplicationFailure;
use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};
use tracing::info;
use uuid::Uuid;
use workflows::activity_definitions::{ApprovalDecision, RecordPayoutApproval};

/// Where the approval amount lives; absent: no approval needed.
pub const APPROVAL_SETTING: &str = "payout_approval_above_usd";

#[derive(Debug, thiserror::Error)]
pub enum PayoutApprovalError {
    #[error("'{0}' is not a payout batch id")]
    BadBatchId(String),
    #[error("payout batch {batch_id} is '{status}', not awaiting approval")]
    NotAwaiting { batch_id: Uuid, status: String },
    #[error("there is no payout batch {0}")]
    UnknownBatch(Uuid),
    #[error("settings.{APPROVAL_SETTING} = '{0}' is not an amount; fix it with the settings API or the admin console")]
    BadSetting(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

pub(crate) fn approval_alert_key(batch_id: Uuid) -> String {
    format!("payout-awaiting-approval:{batch_id}")
}

/// The approval amount in force, if any.
pub async fn approval_amount<'e>(db: impl sqlx::PgExecutor<'e>) -> Result<Option<Decimal>, PayoutApprovalError> {
    let value: Option<String> =
        sqlx::query_scalar("SELECT value FROM settings WHERE key = $1").bind(APPROVAL_SETTING).fetch_optional(db).await?;
    value.map(|v| Decimal::from_str(v.trim()).map_err(|_| PayoutApprovalError::BadSetting(v))).transpose()
}

/// Sets the approval amount (`None`: off).
pub async fn set_approval_amount(pool: &PgPool, usd: Option<Decimal>) -> Result<(), sqlx::Error> {
    match usd {
        Some(usd) => super::settings::put(pool, APPROVAL_SETTING, &format!("{usd:.2}")).await,
        None => sqlx::query("DELETE FROM settings WHERE key = $1").bind(APPROVAL_SETTING).execute(pool).await.map(|_| ()),
    }
}

/// At worker start: applies `PAYOUT_APPROVAL_ABOVE_USD` only when it differs from what the
/// environment gave last time, so an amount an operator changed at run time survives restarts
/// while a changed environment still takes effect. Returns whether it applied.
pub async fn apply_configured_amount(pool: &PgPool, configured: Option<Decimal>) -> Result<bool, sqlx::Error> {
    super::settings::apply_configured_amount(pool, APPROVAL_SETTING, configured).await
}

/// See `db.record_payout_approval`.
pub async fn record(pool: &PgPool, decision: &ApprovalDecision) -> Result<(), PayoutApprovalError> {
    let batch_id = Uuid::parse_str(&decision.batch_id).map_err(|_| PayoutApprovalError::BadBatchId(decision.batch_id.clone()))?;
    let mut tx = pool.begin().await?;
    let status: String = sqlx::query_scalar("SELECT status FROM payout_batches WHERE batch_id = $1 FOR UPDATE")
        .bind(batch_id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(PayoutApprovalError::UnknownBatch(batch_id))?;
    match (status.as_str(), decision.approved) {
        ("awaiting_approval", true) => {
            sqlx::query(
                "UPDATE payout_batches SET status = 'processing', approved_at = now(), processing_started_at = now() WHERE batch_id = $1",
            )
            .bind(batch_id)
            .execute(&mut *tx)
            .await?;
            info!(batch_id = %batch_id, "payout batch approved");
        }
        ("awaiting_approval", false) => {
            let reason = format!("rejected by an operator: {}", decision.reason.as_deref().unwrap_or("no reason given"));
            sqlx::query(
                "UPDATE payout_accumulation SET payout_batch_id = NULL, updated_at = now() WHERE payout_batch_id = $1 AND NOT is_paid_out",
            )
            .bind(batch_id)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "UPDATE payout_batches SET status = 'rejected', failure_reason = $2, rows_released = true, completed_at = now()
                 WHERE batch_id = $1",
            )
            .bind(batch_id)
            .bind(&reason)
            .execute(&mut *tx)
            .await?;
            batch_outcomes::record(&mut tx, BatchKind::Payout, batch_id, Outcome::Rejected).await?;
            info!(batch_id = %batch_id, %reason, "payout batch rejected; its rows are released");
        }
        // Recorded already (a retried step).
        ("processing" | "completed" | "failed", true) | ("rejected", false) => {}
        (other, _) => return Err(PayoutApprovalError::NotAwaiting { batch_id, status: other.to_owned() }),
    }
    super::alerts::settle(&mut tx, &approval_alert_key(batch_id)).await?;
    tx.commit().await?;
    Ok(())
}

pub struct PayoutApprovalActivities {
    pool: PgPool,
}

impl PayoutApprovalActivities {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

#[activities]
impl PayoutApprovalActivities {
    #[activity(definition = RecordPayoutApproval)]
    pub async fn record_payout_approval(self: Arc<Self>, _ctx: ActivityContext, decision: ApprovalDecision) -> Result<(), ActivityError> {
        record(&self.pool, &decision).await.map_err(|e| {
            let retryable = matches!(e, PayoutApprovalError::Database(_));
            ActivityError::application(if retryable { ApplicationFailure::new(e) } else { ApplicationFailure::non_retryable(e) })
        })
    }
}
