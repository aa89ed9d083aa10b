//! `DailyReconciliationWorkflow`: the ledger held against the chain and ChangeNow once a day.
//!
//! Trigger: the Temporal Schedule `reconciliation` (daily, overlapping runs skipped;
//! `starter schedules apply`). `starter reconcile` runs the same check by hand.
//!
//! Steps: one activity, `reconciliation.run`, over the last two days (a day's work and the day
//! before, so nothing falls between two runs): every outbox intent against its transaction on
//! chain, every exchange against its deposit, every completed batch against what left the
//! wallet, and the wallet's balances against what it owes.
//!
//! Guarantees: reads only; each difference is one `reconciliation_difference` alert, raised once
//! while it stays open, and delivered by the alert schedule.

use crate::activity_definitions::{ReconcileRequest, ReconcileSummary, Reconciliation};
use crate::steps::step_retry_policy;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use temporalio_common::ActivityCloseTimeouts;
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{ActivityOptions, WorkflowContext, WorkflowResult};

pub const SCHEDULE_ID: &str = "reconciliation";
pub const EVERY: Duration = Duration::from_secs(24 * 60 * 60);
const WINDOW: Duration = Duration::from_secs(2 * 24 * 60 * 60);

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DailyReconciliationInput {
    /// Two days when absent (the schedule's runs).
    #[serde(default)]
    pub window_secs: Option<u64>,
}

#[workflow]
#[derive(Default)]
pub struct DailyReconciliationWorkflow;

#[workflow_methods]
impl DailyReconciliationWorkflow {
    #[run(name = "DailyReconciliationWorkflow")]
    pub async fn run(ctx: &mut WorkflowContext<Self>, input: DailyReconciliationInput) -> WorkflowResult<ReconcileSummary> {
        let options = ActivityOptions::with_close_timeouts(ActivityCloseTimeouts::ScheduleAndStartToClose {
            schedule_to_close: Duration::from_secs(2 * 60 * 60),
            // One RPC or ChangeNow call per intent and exchange of two days.
            start_to_close: Duration::from_secs(20 * 60),
        })
        .retry_policy(step_retry_policy())
        .build();
        let request = ReconcileRequest { window_secs: input.window_secs.unwrap_or(WINDOW.as_secs()) };
        Ok(ctx.execute_activity(Reconciliation::reconcile, request, options).await?)
    }
}
