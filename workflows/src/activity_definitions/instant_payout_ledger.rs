//! `db.*` steps of `InstantPayoutWorkflow`: the `instant_payouts` row and its transitions.
//! Retryable: the database away. Non-retryable: an unknown payment, a transition the state
//! machine forbids.
#![allow(unused_variables)]

use crate::{
    activity_definitions::ClientPayoutProfile,
    domain::InstantPayoutStatus,
};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use temporalio_macros::activity_definitions;
use temporalio_sdk::activities::ActivityError;

pub use self::instant_payout_ledger::{OpenInstantPayout, RecordInstantPayoutStep};

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
    Held { reason: String },
    ExchangeCreated { exchange_id: String },
    Sent { payin_tx_hash: String },
    Completed { amount_received: Decimal, payout_hash: Option<String> },
    Failed { reason: String },
    Refunded { reason: String, refund_hash: Option<String>, refund_amount: Option<Decimal> },
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
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstantPayoutTransition {
    pub payment_id: i64,
    pub step: InstantPayoutStep,
}

pub struct InstantPayoutLedger;

#[activity_definitions]
impl InstantPayoutLedger {
    /// Inserts the `pending` row once; returns the row's current status.
    #[activity(name = "db.open_instant_payout")]
    pub fn open_instant_payout(opening: InstantPayoutOpening) -> Result<InstantPayoutStatus, ActivityError> {
        unimplemented!()
    }

    /// Applies one step; repeating the step that was last applied is a no-op.
    #[activity(name = "db.record_instant_payout_step")]
    pub fn record_instant_payout_step(transition: InstantPayoutTransition) -> Result<InstantPayoutStatus, ActivityError> {
        unimplemented!()
    }
}
