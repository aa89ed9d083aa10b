//! Starting the payouts that are due: one `ClientPayoutWorkflow` per group, as its own run
//! that outlives the caller (the conversion that pushed groups over their threshold, or the
//! payout sweep). Three generations, each behind a patch so older runs replay: one child per
//! workflow task, then children in chunks, now one activity that starts the runs with the
//! worker's client.

use crate::{
    activity_definitions::{DueQuery, PayoutGroup, PayoutLedger, PayoutStarts, StartPayoutsRequest},
    client_payout::{client_payout_workflow_id, ClientPayoutInput, ClientPayoutWorkflow},
    steps::{step_options, step_retry_policy, STEP_GIVE_UP},
};
use std::time::Duration;
use temporalio_common::ActivityCloseTimeouts;
use temporalio_sdk::{ActivityOptions, ChildWorkflowOptions, ParentClosePolicy, WorkflowContext, WorkflowResult};

/// Starting payouts concurrently replaced one start per workflow task while runs could be in flight.
const CONCURRENT_STARTS_PATCH: &str = "payout-starts-concurrent";
/// Children started per workflow task: 1,000 due groups take 5 round trips, not 1,000, and no
/// single task carries thousands of commands.
const STARTS_PER_TASK: usize = 200;

/// Payouts are started by an activity with the worker's client instead of as children: every
/// child's start and end was an event on the one parent, whose state grew with each pending
/// child, and 1,000 due groups spent minutes there (the payout benchmark's bottleneck).
const STARTS_BY_ACTIVITY_PATCH: &str = "payout-starts-by-activity";

/// Starts a `ClientPayoutWorkflow` for every group `query` finds due, as a run of its own that
/// outlives the caller; a group whose payout is already running is skipped (its workflow id is
/// taken). Returns how many were started.
pub(crate) async fn start_due_payouts<W>(ctx: &mut WorkflowContext<W>, query: DueQuery) -> WorkflowResult<usize> {
    let due = ctx.execute_activity(PayoutLedger::find_due_payout_groups, query, step_options()).await?;
    let start = |group: PayoutGroup| {
        let options = ChildWorkflowOptions::builder()
            .workflow_id(client_payout_workflow_id(&group))
            .parent_close_policy(ParentClosePolicy::Abandon)
            .build();
        ctx.start_child_workflow(ClientPayoutWorkflow::run, ClientPayoutInput { group, resume_batch_id: None }, options)
    };
    if ctx.patched(STARTS_BY_ACTIVITY_PATCH) {
        if due.is_empty() {
            return Ok(0);
        }
        let request = StartPayoutsRequest { groups: due };
        return Ok(ctx.execute_activity(PayoutStarts::start_payouts, request, start_options()).await? as usize);
    }
    let mut started = 0;
    if !ctx.patched(CONCURRENT_STARTS_PATCH) {
        for group in due {
            started += usize::from(start(group).await.is_ok());
        }
        return Ok(started);
    }
    let mut due = due.into_iter().peekable();
    while due.peek().is_some() {
        let chunk: Vec<_> = due.by_ref().take(STARTS_PER_TASK).map(&start).collect();
        started += temporalio_sdk::workflows::join_all(chunk).await.iter().filter(|r| r.is_ok()).count();
    }
    Ok(started)
}

/// Starting a thousand runs takes seconds; the activity heartbeats as it goes.
fn start_options() -> ActivityOptions {
    ActivityOptions::with_close_timeouts(ActivityCloseTimeouts::ScheduleAndStartToClose {
        schedule_to_close: STEP_GIVE_UP,
        start_to_close: Duration::from_secs(5 * 60),
    })
    .heartbeat_timeout(Duration::from_secs(30))
    .retry_policy(step_retry_policy())
    .build()
}
