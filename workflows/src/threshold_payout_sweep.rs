//! `ThresholdPayoutSweepWorkflow`: the safety net of threshold payouts.
//!
//! Trigger: the Temporal Schedule `threshold-payout-sweep` (every 5 minutes by default;
//! `starter schedules apply`), and `starter payout now <client_id>` for an early payout.
//!
//! Steps: `db.find_due_payout_groups` finds every group over its client's threshold that has no
//! payout running (one the conversion's own trigger missed), and every group holding a row
//! older than `max_age_days` (90 by default) whatever its total; each gets a
//! `ClientPayoutWorkflow` with the group's workflow id, so the sweep and the conversion's trigger
//! never run two payouts of one group at once. A group held below ChangeNow's minimum is left
//! alone until its unpaid USDT reaches it. Then `db.alert_stranded_batches` raises one alert per
//! payout batch left `processing` or conversion left `swapping` long past every deadline of the
//! run that claimed it (the run was terminated, reset or timed out, so none will move it again).
//!
//! Guarantees: a due group gets at most one new payout per sweep; a stranded batch gets one alert
//! however many sweeps see it.

use crate::{
    activity_definitions::{DueQuery, StrandedBatches, StrandedQuery},
    payout_starts::start_due_payouts,
    steps::step_options,
};
use serde::{Deserialize, Serialize};
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{WorkflowContext, WorkflowResult};

pub const SCHEDULE_ID: &str = "threshold-payout-sweep";
pub const DEFAULT_MAX_AGE_DAYS: u32 = 90;
/// The check for stranded batches was added while sweeps could be in flight.
const STRANDED_CHECK_PATCH: &str = "sweep-stranded-batches";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThresholdPayoutSweepInput {
    /// Groups with a row older than this are paid whatever their total.
    pub max_age_days: u32,
    /// An operator's early payout of one client, whatever its total.
    #[serde(default)]
    pub only_client: Option<String>,
}

impl Default for ThresholdPayoutSweepInput {
    fn default() -> Self {
        Self { max_age_days: DEFAULT_MAX_AGE_DAYS, only_client: None }
    }
}

#[workflow]
#[derive(Default)]
pub struct ThresholdPayoutSweepWorkflow;

#[workflow_methods]
impl ThresholdPayoutSweepWorkflow {
    #[run(name = "ThresholdPayoutSweepWorkflow")]
    pub async fn run(ctx: &mut WorkflowContext<Self>, input: ThresholdPayoutSweepInput) -> WorkflowResult<usize> {
        let query = DueQuery { max_age_days: Some(input.max_age_days), only_client: input.only_client };
        let started = start_due_payouts(ctx, query).await?;
        if ctx.patched(STRANDED_CHECK_PATCH) {
            ctx.execute_activity(StrandedBatches::alert_stranded_batches, StrandedQuery::default(), step_options()).await?;
        }
        Ok(started)
    }
}
