//! `temporal.start_payouts`: starts a `ClientPayoutWorkflow` per due group from an activity,
//! with the worker's own Temporal client. Retryable: Temporal away.
#![allow(unused_variables)]

use super::PayoutGroup;
use serde::{Deserialize, Serialize};
use temporalio_macros::activity_definitions;
use temporalio_sdk::activities::ActivityError;

pub use self::payout_starts::StartPayouts;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StartPayoutsRequest {
    pub groups: Vec<PayoutGroup>,
}

pub struct PayoutStarts;

#[activity_definitions]
impl PayoutStarts {
    /// Starts each group's payout run under its workflow id on this worker's task queue; a group
    /// whose run is open is skipped (its id is taken). Returns how many were started. Safe to
    /// run again: what the first attempt started is skipped by the second.
    #[activity(name = "temporal.start_payouts")]
    pub fn start_payouts(request: StartPayoutsRequest) -> Result<u32, ActivityError> {
        unimplemented!()
    }
}
