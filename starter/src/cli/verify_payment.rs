//! `starter payment verify <payment_id>`: asks NOWPayments again about a payment left
//! `unverified` (NOWPayments did not know it yet, its record was not finished within three days,
//! or it named a client registered since). The payment goes back to `received` and a new run of
//! its workflow verifies it from the start; only a payment whose every run failed can be run
//! again, so nothing routed is ever routed twice.

use crate::temporal_gateway::{StartError, Started, TemporalGateway};
use activities::db::{
    alerts::{self, AlertKind},
    payments,
};
use sqlx::PgPool;
use tracing::info;
use workflows::domain::PaymentStatus;

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("payment {0} is not stored")]
    Unknown(i64),
    #[error("payment {payment_id} is '{status}'; only unverified payments are verified again")]
    NotUnverified { payment_id: i64, status: String },
    #[error(
        "Temporal did not start the new run of payment {payment_id}: {source}; the payment is back to received, run the command again"
    )]
    NotStarted { payment_id: i64, source: StartError },
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Back to `received`, the alerts about it settled, then a new run (the workflow's verdict is the
/// new one: the run raises a fresh alert if NOWPayments still does not confirm the payment).
pub async fn verify_again(pool: &PgPool, gateway: &TemporalGateway, payment_id: i64) -> Result<Started, VerifyError> {
    let mut tx = pool.begin().await?;
    let row: Option<(String, String)> = sqlx::query_as("SELECT status, client_id FROM payments WHERE payment_id = $1 FOR UPDATE")
        .bind(payment_id)
        .fetch_optional(&mut *tx)
        .await?;
    let (status, client_id) = row.ok_or(VerifyError::Unknown(payment_id))?;
    let was_unverified = status == PaymentStatus::Unverified.as_str();
    // `received` with every run failed: an earlier `verify` whose start Temporal did not take.
    if !was_unverified && status != PaymentStatus::Received.as_str() {
        return Err(VerifyError::NotUnverified { payment_id, status });
    }
    if was_unverified {
        sqlx::query("UPDATE payments SET status = $2, unverified_reason = NULL, updated_at = now() WHERE payment_id = $1")
            .bind(payment_id)
            .bind(PaymentStatus::Received.as_str())
            .execute(&mut *tx)
            .await?;
        // Settled: the new run raises a fresh one if NOWPayments still does not confirm it.
        for kind in [AlertKind::PaymentUnverified, AlertKind::PaymentMismatch] {
            alerts::settle_condition(&mut tx, &format!("{}:{payment_id}", kind.as_str())).await?;
        }
    }
    tx.commit().await?;
    info!(payment_id, "payment back to received; verifying with NOWPayments again");
    let started = gateway
        .restart_failed_payment_workflow(payment_id, &client_id)
        .await
        .map_err(|source| VerifyError::NotStarted { payment_id, source })?;
    payments::mark_workflow_started(pool, payment_id).await?;
    Ok(started)
}
