//! `starter batch show|retry|cancel <batch_id>`: the operator's steps on a payout batch. They act
//! on the batch's `ClientPayoutWorkflow` exactly as the Temporal UI does (the `retry` signal, a
//! cancellation request), so either way has the same effect, and a retry pays once however often
//! it is asked for: the workflow id is the payout group's, and every exchange and transfer of a
//! batch is found again under its purpose key.

use activities::db::payout_ledger::{self, PayoutBatchSummary};
use sqlx::PgPool;
use temporalio_client::{
    errors::{WorkflowInteractionError, WorkflowQueryError, WorkflowStartError},
    Client, WorkflowCancelOptions, WorkflowDescribeOptions, WorkflowExecutionStatus, WorkflowQueryOptions,
    WorkflowSignalOptions, WorkflowStartOptions,
};
use uuid::Uuid;
use workflows::{client_payout_workflow_id, ClientPayoutInput, ClientPayoutWorkflow};

#[derive(Debug, thiserror::Error)]
pub enum BatchCommandError {
    #[error("there is no payout batch {0}")]
    UnknownBatch(Uuid),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("Temporal refused: {0}")]
    Temporal(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RetryOutcome {
    /// The batch is `completed`: nothing is sent again.
    AlreadyPaid,
    /// The group's run waits on this failed batch: it got the `retry` signal.
    Signalled { workflow_id: String },
    /// No run was open: a new one resumes the batch (or, when its rows were released, pays them
    /// in a new batch).
    Started { workflow_id: String },
    /// The group's run is paying this batch right now.
    InProgress { workflow_id: String },
    /// The group's run is busy with another batch; retry once it has ended.
    Busy { workflow_id: String, other_batch: Option<String> },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CancelOutcome {
    Requested { workflow_id: String },
    NotRunning { workflow_id: String },
}

async fn batch(pool: &PgPool, batch_id: Uuid) -> Result<PayoutBatchSummary, BatchCommandError> {
    payout_ledger::find_batch(pool, batch_id).await?.ok_or(BatchCommandError::UnknownBatch(batch_id))
}

pub async fn show(pool: &PgPool, batch_id: Uuid) -> Result<String, BatchCommandError> {
    let b = batch(pool, batch_id).await?;
    let mut text = format!(
        "payout batch {}: {} for client {} ({} USDT to {} {} on {}), retries {}",
        b.batch_id,
        b.status,
        b.group.client_id,
        b.total_usdt,
        b.group.payout_currency,
        b.group.wallet_address,
        b.group.payout_network,
        b.retries
    );
    if let Some(reason) = &b.failure_reason {
        let rows = if b.rows_released { "rows released" } else { "rows kept with the batch" };
        text.push_str(&format!("\n  failure: {reason} ({rows})"));
    }
    text.push_str(&format!("\n  workflow: {}", client_payout_workflow_id(&b.group)));
    Ok(text)
}

pub async fn retry(pool: &PgPool, client: &Client, task_queue: &str, batch_id: Uuid) -> Result<RetryOutcome, BatchCommandError> {
    let b = batch(pool, batch_id).await?;
    if b.status == "completed" {
        return Ok(RetryOutcome::AlreadyPaid);
    }
    let workflow_id = client_payout_workflow_id(&b.group);
    let handle = client.get_workflow_handle::<ClientPayoutWorkflow>(workflow_id.clone());
    let temporal = |e: &dyn std::fmt::Display| BatchCommandError::Temporal(e.to_string());
    let running = match handle.describe(WorkflowDescribeOptions::default()).await {
        Ok(description) => description.status() == WorkflowExecutionStatus::Running,
        Err(WorkflowInteractionError::NotFound(_)) => false,
        Err(e) => return Err(temporal(&e)),
    };
    if running {
        let state = match handle.query(ClientPayoutWorkflow::state, (), WorkflowQueryOptions::default()).await {
            Ok(state) => state,
            Err(WorkflowQueryError::NotFound(_)) => Default::default(),
            Err(e) => return Err(temporal(&e)),
        };
        let this_batch = batch_id.to_string();
        match (state.batch_id, state.awaiting_retry) {
            (Some(id), true) if id == this_batch => {
                match handle.signal(ClientPayoutWorkflow::retry, this_batch, WorkflowSignalOptions::default()).await {
                    Ok(()) => return Ok(RetryOutcome::Signalled { workflow_id }),
                    // It ended (its wait ran out) a moment ago: start a new run below.
                    Err(WorkflowInteractionError::NotFound(_)) => {}
                    Err(e) => return Err(temporal(&e)),
                }
            }
            (Some(id), false) if id == this_batch => return Ok(RetryOutcome::InProgress { workflow_id }),
            (other_batch, _) => return Ok(RetryOutcome::Busy { workflow_id, other_batch }),
        }
    }
    // A batch whose rows were released is not resumed: its rows are paid by a new batch.
    let resume_batch_id = (!b.rows_released).then(|| batch_id.to_string());
    let input = ClientPayoutInput { group: b.group, resume_batch_id };
    let options = WorkflowStartOptions::new(task_queue.to_owned(), workflow_id.clone())
        .static_summary(format!("operator retry of payout batch {batch_id}"))
        .build();
    match client.start_workflow(ClientPayoutWorkflow::run, input, options).await {
        Ok(_) => Ok(RetryOutcome::Started { workflow_id }),
        // Another retry (or a trigger) started the group's run a moment ago.
        Err(WorkflowStartError::AlreadyStarted { .. }) => Ok(RetryOutcome::InProgress { workflow_id }),
        Err(e) => Err(temporal(&e)),
    }
}

/// Requests cancellation of the batch's run: it marks the batch failed (releasing the rows if no
/// USDT left the wallet) and ends; `retry` pays it later.
pub async fn cancel(pool: &PgPool, client: &Client, batch_id: Uuid, reason: &str) -> Result<CancelOutcome, BatchCommandError> {
    let b = batch(pool, batch_id).await?;
    let workflow_id = client_payout_workflow_id(&b.group);
    let handle = client.get_workflow_handle::<ClientPayoutWorkflow>(workflow_id.clone());
    let options = WorkflowCancelOptions::builder().reason(reason.to_owned()).build();
    match handle.cancel(options).await {
        Ok(()) => Ok(CancelOutcome::Requested { workflow_id }),
        Err(WorkflowInteractionError::NotFound(_)) => Ok(CancelOutcome::NotRunning { workflow_id }),
        Err(e) => Err(BatchCommandError::Temporal(e.to_string())),
    }
}
