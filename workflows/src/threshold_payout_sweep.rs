//! `ThresholdPayoutSweepWorkflow`: the safety net of threshold payouts.
//!
//! Trigger: the Temporal Schedule `threshold-payout-sweep` (every 5 minutes by default;
//! `starter schedules apply`), and `starter payout now <client_id>` for an early payout.
//!
//! Steps: `db.find_due_payout_groups` finds every group over its client's threshold that has no
//! payout running (one the conversion's own trigger missed), and every group holding a row
//! older than `max_age_days` (90 by default) whatever its total; each gets a
//! `ClientPayoutWorkflow` with the group's workflow id, so the sweep and the conversion's trigger
//! never run two payouts of one group at once.

use crate::{activity_definitions::DueQuery, client_payout::start_due_payouts};
use serde::{Deserialize, Serialize};
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{WorkflowContext, WorkflowResult};

pub const SCHEDULE_ID: &str = "threshold-payout-sweep";
pub const DEFAULT_MAX_AGE_DAYS: u32 = 90;

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
        start_due_payouts(ctx, query).await
    }
}
