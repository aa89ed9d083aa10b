//! Typed declarations of every activity the workflows call. The `activities` crate implements
//! each one with `#[activity(definition = ...)]`, which makes the compiler check that both
//! sides agree on the name, the input and the output.
//!
//! Names are grouped by the system they touch: `db.*`, `changenow.*` and `ethereum.*`.
#![allow(unused_variables)]

mod alert_rules;
mod changenow;
mod conversion_ledger;
mod ethereum;
mod instant_payout_ledger;
mod payment_verification;
mod payout_ledger;
mod payout_starts;
mod reconciliation;
mod stranded_batches;

pub use alert_rules::*;
pub use changenow::*;
pub use conversion_ledger::*;
pub use ethereum::*;
pub use instant_payout_ledger::*;
pub use payment_verification::*;
pub use payout_ledger::*;
pub use payout_starts::*;
pub use reconciliation::*;
pub use stranded_batches::*;

use crate::domain::{FeeSplit, PaymentStatus, PayoutStrategy};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use temporalio_macros::activity_definitions;
use temporalio_sdk::activities::ActivityError;

/// A stored payment together with its client's payout settings, as read when processing starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentForProcessing {
    pub payment_id: i64,
    pub client_id: String,
    pub user_id: i64,
    pub status: PaymentStatus,
    pub price_amount: Decimal,
    pub price_currency: String,
    pub outcome_amount: Option<Decimal>,
    pub outcome_currency: Option<String>,
    pub client: ClientPayoutProfile,
}

/// Where and how a client wants to be paid (a snapshot: a later wallet change does not move
/// money already routed to the old one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientPayoutProfile {
    pub strategy: PayoutStrategy,
    pub wallet_address: String,
    pub payout_currency: String,
    pub payout_network: String,
    pub threshold_usd: Decimal,
}

/// What `PaymentWorkflow` decided for one payment, handed to the activity that records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoutedPayment {
    pub payment_id: i64,
    pub client_id: String,
    pub fee: FeeSplit,
    pub client: ClientPayoutProfile,
}

/// The stored result of routing: where the payment's net amount now sits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoutingReceipt {
    pub payment_id: i64,
    pub status: PaymentStatus,
    /// The `payout_accumulation` row, for threshold clients.
    pub accumulation_id: Option<i64>,
}

// The macro keeps its marker types in a private module; re-exported here so the `activities`
// crate can name them in `#[activity(definition = ...)]`.
pub use benchmark_activities::Noop;
pub use payment_ledger::{BeginPaymentProcessing, RecordInstantPayoutHandoff, RecordThresholdAccumulation};

/// Postgres side effects of payment intake.
pub struct PaymentLedger;

#[activity_definitions]
impl PaymentLedger {
    /// Moves the payment `received -> processing` (idempotent) and returns it with its client.
    /// Non-retryable when the payment is unknown or not `finished`.
    #[activity(name = "db.begin_payment_processing")]
    pub fn begin_payment_processing(payment_id: i64) -> Result<PaymentForProcessing, ActivityError> {
        unimplemented!()
    }

    /// Threshold clients: inserts the `payout_accumulation` row (`pending`) and marks the payment
    /// `accumulated`, in one transaction, idempotent on the payment id.
    #[activity(name = "db.record_threshold_accumulation")]
    pub fn record_threshold_accumulation(routed: RoutedPayment) -> Result<RoutingReceipt, ActivityError> {
        unimplemented!()
    }

    /// Instant clients: records the fee split and marks the payment `awaiting_instant_payout`,
    /// the hand-off point of the instant payout.
    #[activity(name = "db.record_instant_payout_handoff")]
    pub fn record_instant_payout_handoff(routed: RoutedPayment) -> Result<RoutingReceipt, ActivityError> {
        unimplemented!()
    }
}

/// The one activity of the intake benchmark's baseline workflow.
pub struct BenchmarkActivities;

#[activity_definitions]
impl BenchmarkActivities {
    #[activity(name = "bench.noop")]
    pub fn noop(value: i64) -> Result<i64, ActivityError> {
        unimplemented!()
    }
}
