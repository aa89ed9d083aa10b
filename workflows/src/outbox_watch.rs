//! `OutboxWatchWorkflow`: keeps every open outbox intent moving until it ends, whether or not a
//! run still waits for it.
//!
//! Trigger: the Temporal Schedule `outbox-watch` (every minute, overlapping runs skipped;
//! `starter schedules apply`).
//!
//! Steps: one `ethereum.watch_open_transfers` over the open intents older than
//! [`DEFAULT_MIN_AGE_SECS`], lowest nonce first. Each is checked as its own run would check it:
//! receipts of every attempt recorded (`confirmed`, `reverted`, or `cancelled` when the outbox's
//! cancellation took the nonce), the latest attempt re-sent, and replaced with higher fees while
//! underpriced. One signed but never broadcast, whose run has ended, is cancelled with a 0-value
//! transfer to the hot wallet at its nonce, so the nonces after it are never blocked and what it
//! reserved is freed.
//!
//! Guarantees: idempotent like every outbox step (same bytes re-sent, one nonce per intent); an
//! intent still being sent by its own step is left to it; a transfer past its run's deadline
//! keeps being checked after that run gave up.

use crate::{
    activity_definitions::{Ethereum, OutboxWatchReport, OutboxWatchRequest},
    steps::step_retry_policy,
};
use serde::{Deserialize, Serialize};
use std::time::Duration;
use temporalio_common::ActivityCloseTimeouts;
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::ActivityOptions;
use temporalio_sdk::{WorkflowContext, WorkflowResult};

pub const SCHEDULE_ID: &str = "outbox-watch";
/// Younger intents are their own run's business (it polls within seconds).
pub const DEFAULT_MIN_AGE_SECS: u64 = 10 * 60;
/// Intents per pass: each costs a few node calls; a longer queue is worked off over the minutes.
const INTENTS_PER_PASS: i64 = 100;
/// A pass stops checking after this, well inside the schedule's minute and its own time limit.
const PASS_BUDGET: Duration = Duration::from_secs(40);
/// Each intent heartbeats, so a worker lost mid-pass is noticed in seconds, not at the limit.
const PASS_HEARTBEAT: Duration = Duration::from_secs(20);

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxWatchInput {
    /// [`DEFAULT_MIN_AGE_SECS`] when absent (the schedule's runs).
    #[serde(default)]
    pub min_age_secs: Option<u64>,
}

#[workflow]
#[derive(Default)]
pub struct OutboxWatchWorkflow;

#[workflow_methods]
impl OutboxWatchWorkflow {
    #[run(name = "OutboxWatchWorkflow")]
    pub async fn run(ctx: &mut WorkflowContext<Self>, input: OutboxWatchInput) -> WorkflowResult<OutboxWatchReport> {
        let request = OutboxWatchRequest {
            min_age_secs: input.min_age_secs.unwrap_or(DEFAULT_MIN_AGE_SECS),
            limit: INTENTS_PER_PASS,
            budget_secs: PASS_BUDGET.as_secs(),
        };
        Ok(ctx.execute_activity(Ethereum::watch_open_transfers, request, pass_options()).await?)
    }
}

/// One pass may take [`PASS_BUDGET`] plus the intent in hand; a pass that failed is retried for a
/// few minutes, after which the next scheduled pass takes over.
fn pass_options() -> ActivityOptions {
    ActivityOptions::with_close_timeouts(ActivityCloseTimeouts::ScheduleAndStartToClose {
        schedule_to_close: Duration::from_secs(5 * 60),
        start_to_close: PASS_BUDGET * 2,
    })
    .heartbeat_timeout(PASS_HEARTBEAT)
    .retry_policy(step_retry_policy())
    .build()
}
