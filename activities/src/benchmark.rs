//! The baseline activity of `make bench-intake`: no side effect at all.

use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};
use workflows::activity_definitions::Noop;

pub struct BenchmarkActivitiesImpl;

#[activities]
impl BenchmarkActivitiesImpl {
    #[activity(definition = Noop)]
    pub async fn noop(_ctx: ActivityContext, value: i64) -> Result<i64, ActivityError> {
        Ok(value)
    }
}
