//! `starter instant-payout approve|reject <payment_id>`: an operator's answer to an instant payout
//! held for approval (above the approval amount, or over its client's daily limit). Sent as the
//! `approve` or `reject` signal to the payout's `InstantPayoutWorkflow`, as the Temporal UI sends
//! it, so every way has the same effect. The API's routes call the same code.

use crate::cli::payout_batches::Approval;
use activities::db::instant_payout_ledger::{self, InstantPayoutSummary};
use sqlx::PgPool;
use temporalio_client::{Client, WorkflowStartOptions};
use workflows::{
    activity_definitions::ClientPayoutProfile,
    domain::PayoutStrategy,
    instant_payout::{instant_payout_workflow_id, InstantRejection},
    InstantPayoutInput, InstantPayoutWorkflow,
};

#[derive(Debug, thiserror::Error)]
pub enum InstantPayoutCommandError {
    #[error("there is no instant payout of payment {0}")]
    UnknownPayout(i64),
    #[error("the instant payout of payment {payment_id} is '{status}', not awaiting approval")]
    NotAwaitingApproval { payment_id: i64, status: String },
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("Temporal refused: {0}")]
    Temporal(String),
}

/// Sends `approve` or `reject` to the run holding the payout. Returns the workflow signalled.
///
/// When no run holds it (terminated, reset), signal-with-start starts the payout's workflow again
/// from what is stored; the new run finds the payout `awaiting_approval` and the decision at once.
pub async fn decide(
    pool: &PgPool,
    client: &Client,
    task_queue: &str,
    payment_id: i64,
    approval: Approval,
) -> Result<String, InstantPayoutCommandError> {
    let held = instant_payout_ledger::find(pool, payment_id).await?.ok_or(InstantPayoutCommandError::UnknownPayout(payment_id))?;
    if held.status != "awaiting_approval" {
        return Err(InstantPayoutCommandError::NotAwaitingApproval { payment_id, status: held.status });
    }
    let workflow_id = instant_payout_workflow_id(payment_id);
    let options = WorkflowStartOptions::new(task_queue.to_owned(), workflow_id.clone())
        .static_summary(format!("operator decision on the instant payout of payment {payment_id}"))
        .build();
    let input = rerun_input(held);
    let sent = match approval {
        Approval::Approve => {
            client.signal_with_start_workflow(InstantPayoutWorkflow::run, input, InstantPayoutWorkflow::approve, payment_id, options).await
        }
        Approval::Reject { reason } => {
            let rejection = InstantRejection { payment_id, reason };
            client.signal_with_start_workflow(InstantPayoutWorkflow::run, input, InstantPayoutWorkflow::reject, rejection, options).await
        }
    };
    sent.map(|_| workflow_id).map_err(|e| InstantPayoutCommandError::Temporal(e.to_string()))
}

/// The input a new run of the payout starts from: what its row stored when it opened, so a
/// wallet changed since is not paid by it.
fn rerun_input(held: InstantPayoutSummary) -> InstantPayoutInput {
    InstantPayoutInput {
        payment_id: held.payment_id,
        client_id: held.client_id,
        amount_eth: held.amount_eth,
        client: ClientPayoutProfile {
            strategy: PayoutStrategy::Instant,
            wallet_address: held.wallet_address,
            payout_currency: held.payout_currency,
            payout_network: held.payout_network,
            threshold_usd: held.threshold_usd,
        },
    }
}
