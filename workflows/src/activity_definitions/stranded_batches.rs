//! `db.alert_stranded_batches`, the sweep's check for batches a run left behind: a payout batch
//! still `processing`, or a conversion still `swapping`, long after every deadline of the run that
//! claimed it (the run was terminated, reset or timed out). Retryable: the database away.
#![allow(unused_variables)]

use serde::{Deserialize, Serialize};
use temporalio_macros::activity_definitions;
use temporalio_sdk::activities::ActivityError;

pub use self::stranded_batches::AlertStrandedBatches;

/// A run polls an exchange for at most 6 h and a transfer for at most 2 h (`steps`); a batch open
/// this much longer than that has no run left paying it.
pub const STRANDED_AFTER_HOURS: u32 = 12;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StrandedQuery {
    /// A conversion (one exchange) is stranded this long after it started; a payout batch after
    /// this much per exchange attempt it may make (its parts, times one more per retry).
    pub stranded_after_hours: u32,
}

impl Default for StrandedQuery {
    fn default() -> Self {
        Self { stranded_after_hours: STRANDED_AFTER_HOURS }
    }
}

/// Stranded batches found, and how many of them got their alert in this call (the others had one).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StrandedReport {
    pub payout_batches: u32,
    pub conversion_batches: u32,
    pub newly_alerted: u32,
}

pub struct StrandedBatches;

#[activity_definitions]
impl StrandedBatches {
    /// Finds every stranded batch and raises one alert per batch (deduplicated: a second sweep
    /// raises nothing new). Changes no batch: only an operator knows whether its money moved.
    #[activity(name = "db.alert_stranded_batches")]
    pub fn alert_stranded_batches(query: StrandedQuery) -> Result<StrandedReport, ActivityError> {
        unimplemented!()
    }
}
