//! `NoopBenchmarkWorkflow`: the baseline of `make bench-intake`.
//!
//! Trigger: only the benchmark starts it. Steps: one activity that returns its input.
//! It measures what this Temporal server and worker can do at best, so the payment intake
//! rate can be reported as a ratio of it.

use crate::activity_definitions::BenchmarkActivities;
use std::time::Duration;
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{ActivityOptions, WorkflowContext, WorkflowResult};

#[workflow]
#[derive(Default)]
pub struct NoopBenchmarkWorkflow;

#[workflow_methods]
impl NoopBenchmarkWorkflow {
    #[run(name = "NoopBenchmarkWorkflow")]
    pub async fn run(ctx: &mut WorkflowContext<Self>, value: i64) -> WorkflowResult<i64> {
        Ok(ctx.execute_activity(BenchmarkActivities::noop, value, ActivityOptions::start_to_close_timeout(Duration::from_secs(10))).await?)
    }
}
