//! `temporal.start_payouts`: the payout runs of the due groups, started with the worker's own
//! Temporal client (see `workflows::payout_starts` for why not as children).

use futures::{stream, StreamExt};
use std::sync::Arc;
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
        let ctx = &ctx;
        let outcomes: Vec<Result<bool, String>> = stream::iter(request.groups)
            .map(|group| {
                let (client, queue) = (client.clone(), queue.clone());
                async move {
                    let id = client_payout_workflow_id(&group);
                    // A closed run's id may be used again (new rows, a new payout); an open one's not.
                    let options = WorkflowStartOptions::new(queue, id.clone()).id_reuse_policy(WorkflowIdReusePolicy::AllowDuplicate).build();
                    let started = client.start_workflow(ClientPayoutWorkflow::run, ClientPayoutInput { group, resume_batch_id: None }, options).await;
                    // A lost heartbeat only risks the starts being tried again, which skips what started.
                    let _ = ctx.record_heartbeat(()).await;
                    match started {
                        Ok(_) => Ok(true),
                        Err(WorkflowStartError::AlreadyStarted { .. }) => Ok(false),
                        Err(e) => Err(format!("{id}: {e}")),
                    }
                }
            })
            .buffer_unordered(CONCURRENT_STARTS)
            .collect()
            .await;
        let started = outcomes.iter().filter(|o| matches!(o, Ok(true))).count() as u32;
        let failed: Vec<&String> = outcomes.iter().filter_map(|o| o.as_ref().err()).collect();
        if let Some(first) = failed.first() {
            warn!(failed = failed.len(), started, "some payout runs could not be started; retrying");
            return Err(ActivityError::application(ApplicationFailure::new(StartsFailed(format!(
                "{} of the due payout runs could not be started (first: {first})",
                failed.len()
            )))));
        }
        Ok(started)
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct StartsFailed(String);
