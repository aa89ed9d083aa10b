//! `db.*` steps of `InstantPayoutWorkflow`: the `instant_payouts` row and its transitions.
//! Retryable: the database away. Non-retryable: an unknown payment, a transition the state
//! machine forbids.
#![allow(unused_variables)]

use crate::{activity_definitions::ClientPayoutProfile, domain::InstantPayoutStatus};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use temporalio_macros::activity_definitions;
use temporalio_sdk::activities::ActivityError;

pub use self::instant_payout_ledger::{GateInstantPayout, OpenInstantPayout, RecordInstantPayoutStep};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstantPayoutOpening {
    pub payment_id: i64,
    pub client_id: String,
    pub amount_eth: Decimal,
    pub client: ClientPayoutProfile,
}

/// One step of the state machine, with what it learned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "step")]
pub enum InstantPayoutStep {
    Held {
        reason: String,
    },
    ExchangeCreated {
        exchange_id: String,
    },
    Sent {
        payin_tx_hash: String,
    },
    Completed {
        amount_received: Decimal,
        payout_hash: Option<String>,
    },
    Failed {
        reason: String,
    },
    Refunded {
        reason: String,
        refund_hash: Option<String>,
        refund_amount: Option<Decimal>,
    },
    /// An operator approved the payout held for approval: back to `pending`, never held again.
    Approved,
    /// An operator rejected it (or its run was cancelled while it waited): nothing is sent.
    Rejected {
        reason: String,
    },
}

impl InstantPayoutStep {
    pub fn target(&self) -> InstantPayoutStatus {
        match self {
            Self::Held { .. } => InstantPayoutStatus::Held,
            Self::ExchangeCreated { .. } => InstantPayoutStatus::ExchangeCreated,
            Self::Sent { .. } => InstantPayoutStatus::Sent,
            Self::Completed { .. } => InstantPayoutStatus::Completed,
            Self::Failed { .. } => InstantPayoutStatus::Failed,
            Self::Refunded { .. } => InstantPayoutStatus::Refunded,
            Self::Approved => InstantPayoutStatus::Pending,
            Self::Rejected { .. } => InstantPayoutStatus::Rejected,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstantPayoutTransition {
    pub payment_id: i64,
    pub step: InstantPayoutStep,
}

/// What the limits say about an instant payout before anything is sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "gate")]
pub enum InstantPayoutGate {
    /// Within the limits, or approved: send it.
    Clear,
    /// Held `awaiting_approval` (now or by an earlier run), and why.
    AwaitingApproval { reason: String },
    /// An operator rejected it in an earlier run.
    Rejected { reason: String },
}

pub struct InstantPayoutLedger;

#[activity_definitions]
impl InstantPayoutLedger {
    /// Inserts the `pending` row once; returns the row's current status.
    #[activity(name = "db.open_instant_payout")]
    pub fn open_instant_payout(opening: InstantPayoutOpening) -> Result<InstantPayoutStatus, ActivityError> {
        unimplemented!()
    }

    /// The limits (approval amount, the client's daily limit), once per payout: within them the
    /// payout is cleared; over one it becomes `awaiting_approval` with a `payout_awaiting_approval`
    /// alert in the same transaction. Asked again, answers from the stored state.
    #[activity(name = "db.gate_instant_payout")]
    pub fn gate_instant_payout(payment_id: i64) -> Result<InstantPayoutGate, ActivityError> {
        unimplemented!()
    }

    /// Applies one step; repeating the step that was last applied is a no-op.
    #[activity(name = "db.record_instant_payout_step")]
    pub fn record_instant_payout_step(transition: InstantPayoutTransition) -> Result<InstantPayoutStatus, ActivityError> {
        unimplemented!()
    }
}
