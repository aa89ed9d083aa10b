//! `starter payout now <client_id>` and the admin console's early-payout button: one run of the
//! payout sweep for one client, which pays each of its wallet groups its converted, unpaid USDT
//! whatever the total.

use activities::db::clients;
use sqlx::PgPool;
use temporalio_client::{Client, WorkflowStartOptions};
use workflows::{threshold_payout_sweep::DEFAULT_MAX_AGE_DAYS, ThresholdPayoutSweepInput, ThresholdPayoutSweepWorkflow};

#[derive(Debug, thiserror::Error)]
pub enum EarlyPayoutError {
    #[error("unknown client '{0}'")]
    UnknownClient(String),
    #[error(transparent)]
    Store(#[from] clients::ClientStoreError),
    #[error("Temporal refused: {0}")]
    Temporal(String),
}

/// Starts the run; returns its workflow id.
pub async fn payout_now(pool: &PgPool, client: &Client, task_queue: &str, client_id: &str) -> Result<String, EarlyPayoutError> {
    if clients::find(pool, client_id).await?.is_none() {
        return Err(EarlyPayoutError::UnknownClient(client_id.to_owned()));
    }
    let id = format!("payout-now-{client_id}-{}", chrono::Utc::now().timestamp_millis());
    let input = ThresholdPayoutSweepInput { max_age_days: DEFAULT_MAX_AGE_DAYS, only_client: Some(client_id.to_owned()) };
    let options = WorkflowStartOptions::new(task_queue.to_owned(), id.clone()).build();
    client
        .start_workflow(ThresholdPayoutSweepWorkflow::run, input, options)
        .await
        .map_err(|e| EarlyPayoutError::Temporal(e.to_string()))?;
    tracing::info!(client_id, workflow_id = %id, "early payout started");
    Ok(id)
}
