//! Workflow definitions and the deterministic domain rules they use.
//!
//! Nothing in this crate performs I/O: side effects are declared in [`activity_definitions`]
//! and implemented by the `activities` crate, so the worker can register them and the
//! workflows stay replayable.

pub mod activity_definitions;
pub mod alert_rules;
pub mod client_payout;
pub mod daily_reconciliation;
pub mod domain;
pub mod instant_payout;
pub mod intake_benchmark;
pub mod micro_batch_conversion;
pub mod outbox_watch;
pub mod payment_processing;
pub mod payout_starts;
mod payout_steps;
pub mod steps;
pub mod threshold_payout_sweep;

pub use alert_rules::{AlertRulesOutcome, AlertRulesWorkflow, AlertRulesWorkflowInput};
pub use client_payout::{
    client_payout_workflow_id, payout_batch_workflow_id, ClientPayoutInput, ClientPayoutOutcome, ClientPayoutWorkflow,
};
pub use daily_reconciliation::{DailyReconciliationInput, DailyReconciliationWorkflow};
pub use instant_payout::{InstantPayoutInput, InstantPayoutOutcome, InstantPayoutWorkflow};
pub use intake_benchmark::NoopBenchmarkWorkflow;
pub use micro_batch_conversion::{MicroBatchConversionInput, MicroBatchConversionOutcome, MicroBatchConversionWorkflow};
pub use outbox_watch::{OutboxWatchInput, OutboxWatchWorkflow};
pub use payment_processing::{PaymentWorkflow, PaymentWorkflowInput, PaymentWorkflowOutcome};
pub use threshold_payout_sweep::{ThresholdPayoutSweepInput, ThresholdPayoutSweepWorkflow};

/// Search attribute keys operators use in the Temporal UI (registered on the dev server by
/// `make up`: `temporal server start-dev --search-attribute ClientId=Keyword ...`).
pub mod search_attributes {
    use temporalio_common::search_attributes::SearchAttributeKey;

    pub const CLIENT_ID: SearchAttributeKey<String> = SearchAttributeKey::keyword("ClientId");
    pub const PAYMENT_ID: SearchAttributeKey<String> = SearchAttributeKey::keyword("PaymentId");
}

/// The workflow id of a payment: the business id, so a duplicate IPN can never start a second
/// workflow for the same payment.
pub fn payment_workflow_id(payment_id: i64) -> String {
    format!("payment-{payment_id}")
}
