//! `reconciliation.run`: the ledger held against the chain and ChangeNow (reads only; raises one
//! alert per difference). Retryable: a node, ChangeNow or the database away.
#![allow(unused_variables)]

use serde::{Deserialize, Serialize};
use temporalio_macros::activity_definitions;
use temporalio_sdk::activities::ActivityError;

pub use self::reconciliation::Reconcile;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReconcileRequest {
    /// Intents, exchanges and batches created in this many seconds back are checked; the
    /// wallet's balances are always held against the whole ledger.
    pub window_secs: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReconcileSummary {
    pub intents_checked: u32,
    pub exchanges_checked: u32,
    pub batches_checked: u32,
    /// How many differences were found (each raised as an alert).
    #[serde(default)]
    pub differences_found: u32,
    /// The first differences, one line each as `starter reconcile` prints them.
    pub differences: Vec<String>,
    /// Alerts raised by this run (a difference already alerted and still open raises none).
    pub alerts_raised: u32,
}

pub struct Reconciliation;

#[activity_definitions]
impl Reconciliation {
    #[activity(name = "reconciliation.run")]
    pub fn reconcile(request: ReconcileRequest) -> Result<ReconcileSummary, ActivityError> {
        unimplemented!()
    }
}
