//! `starter batch show|retry|cancel|approve|reject <batch_id>`: the operator's steps on a payout batch. They act
//! on the batch's `ClientPayoutWorkflow` run exactly as the Temporal UI does (the `retry` signal, a
//! cancellation request), so either way has the same effect, and a retry pays once however often
//! it is asked for. A failed batch whose rows it kept is retried in its own run,
//! `payout-batch-{batch_id}` (signalled, or signalled-with-start when its wait has ended); one
//! whose rows were released is paid by a new batch in the group's run, `client-payout-{group}`.
//! Every exchange and transfer of a batch is found again under its purpose key.

use activities::db::payout_ledger::{self, PayoutBatchSummary};
use sqlx::PgPool;
use temporalio_client::{
    errors::{WorkflowInteractionError, WorkflowQueryError, WorkflowStartError},
    Client, WorkflowCancelOptions, WorkflowDescribeOptions, WorkflowExecutionStatus, WorkflowQueryOptions, WorkflowSignalOptions,
    WorkflowStartOptions,
};
use uuid::Uuid;
use workflows::{
    client_payout::{PayoutRunState, Rejection},
    client_payout_workflow_id, payout_batch_workflow_id, ClientPayoutInput, ClientPayoutWorkflow,
};

#[derive(Debug, thiserror::Error)]
pub enum BatchCommandError {
    #[error("there is no payout batch {0}")]
    UnknownBatch(Uuid),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("Temporal refused: {0}")]
    Temporal(String),
    #[error("payout batch {batch_id} is '{status}', not awaiting approval")]
    NotAwaitingApproval { batch_id: Uuid, status: String },
    #[error("payout batch {0} awaits approval: approve or reject it (`starter batch approve|reject`); a retry cannot pay it")]
    AwaitingApproval(Uuid),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RetryOutcome {
    /// The batch is `completed`: nothing is sent again.
    AlreadyPaid,
    /// The run waiting on this failed batch got the `retry` signal.
    Signalled { workflow_id: String },
    /// No run was open: a new one resumes the batch (or, when its rows were released, pays them
    /// in a new batch).
    Started { workflow_id: String },
    /// A run is paying this batch right now.
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

/// The run that acts on the batch: its own once it failed with its rows kept, else its group's.
fn workflow_of(b: &PayoutBatchSummary) -> String {
    match b.status.as_str() {
        "failed" if !b.rows_released => payout_batch_workflow_id(&b.batch_id.to_string()),
        _ => client_payout_workflow_id(&b.group),
    }
}

/// The workflow id of the run that acts on the batch (for links into the Temporal UI).
pub async fn workflow_of_batch(pool: &PgPool, batch_id: Uuid) -> Result<String, BatchCommandError> {
    Ok(workflow_of(&batch(pool, batch_id).await?))
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
    text.push_str(&format!("\n  workflow: {}", workflow_of(&b)));
    Ok(text)
}

fn temporal(e: &dyn std::fmt::Display) -> BatchCommandError {
    BatchCommandError::Temporal(e.to_string())
}

/// What the run with `workflow_id` is doing, when it is running (`Some(default)` when it is
/// running but cannot answer yet: it has not finished its first task).
async fn running_state(client: &Client, workflow_id: &str) -> Result<Option<PayoutRunState>, BatchCommandError> {
    let handle = client.get_workflow_handle::<ClientPayoutWorkflow>(workflow_id.to_owned());
    match handle.describe(WorkflowDescribeOptions::default()).await {
        Ok(description) if description.status() == WorkflowExecutionStatus::Running => {}
        Ok(_) | Err(WorkflowInteractionError::NotFound(_)) => return Ok(None),
        Err(e) => return Err(temporal(&e)),
    }
    match handle.query(ClientPayoutWorkflow::state, (), WorkflowQueryOptions::default()).await {
        Ok(state) => Ok(Some(state)),
        Err(WorkflowQueryError::NotFound(_)) => Ok(None),
        Err(_) => Ok(Some(PayoutRunState::default())),
    }
}

pub async fn retry(pool: &PgPool, client: &Client, task_queue: &str, batch_id: Uuid) -> Result<RetryOutcome, BatchCommandError> {
    let b = batch(pool, batch_id).await?;
    if b.status == "completed" {
        return Ok(RetryOutcome::AlreadyPaid);
    }
    if b.status == "awaiting_approval" {
        return Err(BatchCommandError::AwaitingApproval(batch_id));
    }
    let this_batch = batch_id.to_string();
    let group_workflow = client_payout_workflow_id(&b.group);
    match running_state(client, &group_workflow).await? {
        // A run from before failed batches waited in runs of their own waits in the group's.
        Some(state) if state.batch_id.as_deref() == Some(&this_batch) && state.awaiting_retry => {
            let handle = client.get_workflow_handle::<ClientPayoutWorkflow>(group_workflow.clone());
            match handle.signal(ClientPayoutWorkflow::retry, this_batch.clone(), WorkflowSignalOptions::default()).await {
                Ok(()) => return Ok(RetryOutcome::Signalled { workflow_id: group_workflow }),
                // It ended (its wait ran out) a moment ago: go on below.
                Err(WorkflowInteractionError::NotFound(_)) => {}
                Err(e) => return Err(temporal(&e)),
            }
        }
        // Still paying it (once it is `failed`, the run is only handing it over to its own run).
        Some(state) if state.batch_id.as_deref() == Some(&this_batch) && b.status == "processing" => {
            return Ok(RetryOutcome::InProgress { workflow_id: group_workflow });
        }
        Some(state) if b.rows_released => {
            return Ok(RetryOutcome::Busy { workflow_id: group_workflow, other_batch: state.batch_id });
        }
        _ => {}
    }
    if b.rows_released {
        // Its rows are paid by a new batch, in the group's run.
        let input = ClientPayoutInput { group: b.group, resume_batch_id: None };
        let options = WorkflowStartOptions::new(task_queue.to_owned(), group_workflow.clone())
            .static_summary(format!("operator retry of payout batch {batch_id}"))
            .build();
        return match client.start_workflow(ClientPayoutWorkflow::run, input, options).await {
            Ok(_) => Ok(RetryOutcome::Started { workflow_id: group_workflow }),
            // Another retry (or a trigger) started the group's run a moment ago.
            Err(WorkflowStartError::AlreadyStarted { .. }) => Ok(RetryOutcome::InProgress { workflow_id: group_workflow }),
            Err(e) => Err(temporal(&e)),
        };
    }
    // Its rows are kept: the batch's own run resumes it. Signal-with-start reaches the run waiting
    // for the retry, or starts one (its wait ended, or the batch was left `processing` by a run
    // that ended) that finds the signal at once.
    let workflow_id = payout_batch_workflow_id(&this_batch);
    let running = running_state(client, &workflow_id).await?;
    if let Some(state) = &running {
        if state.batch_id.as_deref() == Some(&this_batch) && !state.awaiting_retry {
            return Ok(RetryOutcome::InProgress { workflow_id });
        }
    }
    let input = ClientPayoutInput { group: b.group, resume_batch_id: Some(this_batch.clone()) };
    let options = WorkflowStartOptions::new(task_queue.to_owned(), workflow_id.clone())
        .static_summary(format!("operator retry of payout batch {batch_id}"))
        .build();
    client
        .signal_with_start_workflow(ClientPayoutWorkflow::run, input, ClientPayoutWorkflow::retry, this_batch, options)
        .await
        .map_err(|e| temporal(&e))?;
    Ok(match running {
        Some(_) => RetryOutcome::Signalled { workflow_id },
        None => RetryOutcome::Started { workflow_id },
    })
}

/// Requests cancellation of the run acting on the batch: a paying run marks the batch failed
/// (releasing the rows if no USDT left the wallet) and ends; a run waiting for `retry` just ends.
/// `retry` pays it later.
pub async fn cancel(pool: &PgPool, client: &Client, batch_id: Uuid, reason: &str) -> Result<CancelOutcome, BatchCommandError> {
    let b = batch(pool, batch_id).await?;
    let this_batch = batch_id.to_string();
    let own = payout_batch_workflow_id(&this_batch);
    let workflow_id = match running_state(client, &own).await? {
        Some(_) => own,
        // The group's run pays one batch at a time; once this one has ended, the run may be
        // paying the group's next batch, which is not the one named.
        None if !group_run_may_hold(&b.status) => {
            return Ok(CancelOutcome::NotRunning { workflow_id: client_payout_workflow_id(&b.group) })
        }
        None => client_payout_workflow_id(&b.group),
    };
    let handle = client.get_workflow_handle::<ClientPayoutWorkflow>(workflow_id.clone());
    let options = WorkflowCancelOptions::builder().reason(reason.to_owned()).build();
    match handle.cancel(options).await {
        Ok(()) => Ok(CancelOutcome::Requested { workflow_id }),
        Err(WorkflowInteractionError::NotFound(_)) => Ok(CancelOutcome::NotRunning { workflow_id }),
        Err(e) => Err(BatchCommandError::Temporal(e.to_string())),
    }
}

/// Whether the group's run can be the one acting on a batch in `status`: only while the batch is
/// open. (A failed batch waits in its own run, `payout-batch-{id}`.)
pub fn group_run_may_hold(status: &str) -> bool {
    matches!(status, "pending" | "processing" | "awaiting_approval")
}

/// An operator's answer to a batch awaiting approval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Approval {
    Approve,
    Reject { reason: String },
}

/// Sends `approve` or `reject` to the group's run holding the batch: the same signal the Temporal
/// UI sends. Returns the workflow signalled.
///
/// When no run holds it (the group's run was terminated or reset), signal-with-start starts the
/// group's run, which takes the waiting batch over and finds the decision at once.
pub async fn decide(
    pool: &PgPool,
    client: &Client,
    task_queue: &str,
    batch_id: Uuid,
    approval: Approval,
) -> Result<String, BatchCommandError> {
    let b = batch(pool, batch_id).await?;
    if b.status != "awaiting_approval" {
        return Err(BatchCommandError::NotAwaitingApproval { batch_id, status: b.status });
    }
    let workflow_id = client_payout_workflow_id(&b.group);
    let input = ClientPayoutInput { group: b.group, resume_batch_id: None };
    let options = WorkflowStartOptions::new(task_queue.to_owned(), workflow_id.clone())
        .static_summary(format!("operator decision on payout batch {batch_id}"))
        .build();
    let sent = match approval {
        Approval::Approve => {
            client
                .signal_with_start_workflow(ClientPayoutWorkflow::run, input, ClientPayoutWorkflow::approve, batch_id.to_string(), options)
                .await
        }
        Approval::Reject { reason } => {
            let rejection = Rejection { batch_id: batch_id.to_string(), reason };
            client.signal_with_start_workflow(ClientPayoutWorkflow::run, input, ClientPayoutWorkflow::reject, rejection, options).await
        }
    };
    sent.map(|_| workflow_id).map_err(|e| temporal(&e))
}
