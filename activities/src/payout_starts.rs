//! `temporal.start_payouts`: the payout runs of the due groups, started with the worker's own
//! Temporal client (see `workflows::payout_starts` for why not as children).

use futures::{stream, StreamExt};
use std::{collections::HashSet, sync::Arc};
use temporalio_client::{errors::WorkflowStartError, WorkflowIdReusePolicy, WorkflowStartOptions};
use temporalio_common::error::ApplicationFailure;
use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};
use tracing::warn;
use workflows::{
    activity_definitions::{StartPayouts, StartPayoutsRequest},
    client_payout::client_payout_workflow_id,
    ClientPayoutInput, ClientPayoutWorkflow,
};

/// Starts in flight at once: enough to start a thousand in seconds without flooding the server.
const CONCURRENT_STARTS: usize = 32;

pub struct PayoutStartActivities;

#[activities]
impl PayoutStartActivities {
    #[activity(definition = StartPayouts)]
    pub async fn start_payouts(self: Arc<Self>, ctx: ActivityContext, request: StartPayoutsRequest) -> Result<u32, ActivityError> {
        let (client, queue) = (ctx.client(), ctx.info().task_queue.clone());
        // The runs an earlier attempt of this step already started (or found running): a run that
        // closed since must not be started again, it would claim rows that are not due.
        let mut handled: Vec<String> = ctx.heartbeat_details().deserialize().ok().flatten().unwrap_or_default();
        let already: HashSet<String> = handled.iter().cloned().collect();
        let pending: Vec<_> = request.groups.into_iter().filter(|group| !already.contains(&client_payout_workflow_id(group))).collect();
        let (mut started, mut failed) = (0u32, Vec::new());
        for chunk in pending.chunks(CONCURRENT_STARTS) {
            let outcomes: Vec<(String, Result<bool, String>)> = stream::iter(chunk.iter().cloned())
                .map(|group| {
                    let (client, queue) = (client.clone(), queue.clone());
                    async move {
                        let id = client_payout_workflow_id(&group);
                        // A closed run's id may be used again (new rows, a new payout); an open one's not.
                        let options =
                            WorkflowStartOptions::new(queue, id.clone()).id_reuse_policy(WorkflowIdReusePolicy::AllowDuplicate).build();
                        let input = ClientPayoutInput { group, resume_batch_id: None };
                        let outcome = match client.start_workflow(ClientPayoutWorkflow::run, input, options).await {
                            Ok(_) => Ok(true),
                            Err(WorkflowStartError::AlreadyStarted { .. }) => Ok(false),
                            Err(e) => Err(e.to_string()),
                        };
                        (id, outcome)
                    }
                })
                .buffer_unordered(CONCURRENT_STARTS)
                .collect()
                .await;
            for (id, outcome) in outcomes {
                match outcome {
                    Ok(now) => {
                        started += u32::from(now);
                        handled.push(id);
                    }
                    Err(e) => failed.push(format!("{id}: {e}")),
                }
            }
            // A lost heartbeat only risks starting a chunk's runs again, which finds them running.
            let _ = ctx.record_heartbeat(handled.clone()).await;
        }
        if !failed.is_empty() {
            warn!(failed = failed.len(), started, first = %failed[0], alert = true, "payout runs could not be started");
            // Nothing started at all: Temporal itself is away, worth a retry. Otherwise the groups
            // left out are due again at the next sweep; the ones started must not wait for them.
            if started == 0 && handled.is_empty() {
                return Err(ActivityError::application(ApplicationFailure::new(StartsFailed(format!(
                    "none of the {} due payout runs could be started (first: {})",
                    failed.len(),
                    failed[0]
                )))));
            }
        }
        Ok(started)
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct StartsFailed(String);
