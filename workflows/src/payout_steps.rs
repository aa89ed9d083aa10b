//! How a payout's steps run: its ledger steps and its ChangeNow calls as local activities (one
//! workflow task for several steps), or, in runs from before the patches that made them local,
//! as regular activities.

use crate::{
    client_payout::ClientPayoutWorkflow,
    steps::{step_options, step_retry_policy, STEP_GIVE_UP, STEP_TIMEOUT},
};
use temporalio_common::{data_converters::TemporalDeserializable, ActivityDefinition};
use temporalio_sdk::{ActivityExecutionError, LocalActivityOptions, WorkflowCancellationToken, WorkflowContext};

/// How the `db.*` steps run: local activities, or (in runs from before [`LOCAL_LEDGER_PATCH`](crate::client_payout))
/// regular ones. Either way they run even while the workflow is being cancelled: a claim that
/// happened must be recorded as failed, and a payout whose exchanges all finished as paid.
#[derive(Clone, Copy)]
pub(crate) struct Ledger {
    pub(crate) local: bool,
}

impl Ledger {
    pub(crate) async fn step<AD>(
        self,
        ctx: &WorkflowContext<ClientPayoutWorkflow>,
        activity: AD,
        input: AD::Input,
    ) -> Result<AD::Output, ActivityExecutionError>
    where
        AD: ActivityDefinition,
        AD::Output: TemporalDeserializable,
    {
        if !self.local {
            let mut options = step_options();
            options.cancellation_token = Some(WorkflowCancellationToken::new());
            return ctx.execute_activity(activity, input, options).await;
        }
        let options = LocalActivityOptions::builder()
            .start_to_close_timeout(STEP_TIMEOUT)
            .retry_policy(step_retry_policy())
            .cancellation_token(WorkflowCancellationToken::new())
            .build();
        ctx.execute_local_activity(activity, input, options).await
    }
}

/// The payout's ChangeNow calls (the range, the exchange's creation) run as local activities
/// from this patch on: each is one short, idempotent HTTP call, and as a regular activity each
/// cost a workflow task of its own, which bounded how many payouts a worker paid per second.
const LOCAL_EXCHANGE_STEPS_PATCH: &str = "payout-exchange-steps-local";

pub(crate) async fn exchange_step<AD>(
    ctx: &WorkflowContext<ClientPayoutWorkflow>,
    activity: AD,
    input: AD::Input,
) -> Result<AD::Output, ActivityExecutionError>
where
    AD: ActivityDefinition,
    AD::Output: TemporalDeserializable,
{
    if !ctx.patched(LOCAL_EXCHANGE_STEPS_PATCH) {
        return ctx.execute_activity(activity, input, step_options()).await;
    }
    let options = LocalActivityOptions::builder()
        .start_to_close_timeout(STEP_TIMEOUT)
        .schedule_to_close_timeout(STEP_GIVE_UP)
        .retry_policy(step_retry_policy())
        .build();
    ctx.execute_local_activity(activity, input, options).await
}
