//! Verifying a payment with NOWPayments before it is routed: `nowpayments.get_payment` reads
//! NOWPayments' own record, `db.begin_verified_payment_processing` holds the stored IPN against it
//! and, only when NOWPayments confirms a finished payment, takes it for processing.
#![allow(unused_variables)]

use super::PaymentForProcessing;
use crate::domain::PaymentFacts;
use serde::{Deserialize, Serialize};
use temporalio_macros::activity_definitions;
use temporalio_sdk::activities::ActivityError;

pub use self::now_payments::GetPayment;
pub use self::payment_verification_ledger::BeginVerifiedPaymentProcessing;

/// What NOWPayments answered about a payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RecordLookup {
    Found(PaymentFacts),
    /// 404: NOWPayments does not know the payment.
    Unknown,
    /// An answer that is not this payment's record (unreadable, or another payment's): kept
    /// as the reason, never guessed at.
    Unreadable(String),
}

/// What NOWPayments said about a payment, handed to the ledger step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentVerification {
    pub payment_id: i64,
    pub lookup: RecordLookup,
    /// The record is still in progress after the workflow's last look: give up waiting.
    pub stop_waiting: bool,
}

/// The ledger's verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum VerifiedPayment {
    /// NOWPayments confirms a finished payment: taken for processing on the record's facts.
    Confirmed(PaymentForProcessing),
    /// NOWPayments' record is still moving; ask again later.
    StillInProgress { payment_status: String },
    /// Never paid: the payment is `unverified`, with an alert saying why.
    Refused { reason: String },
}

pub struct NowPayments;

#[activity_definitions]
impl NowPayments {
    /// `GET /v1/payment/{payment_id}`. Retryable, always: NOWPayments away, slow, rate-limiting,
    /// or refusing the API key (a configuration an operator fixes). An answer that is not the
    /// payment's record is not an error but [`RecordLookup::Unreadable`], which the ledger refuses.
    #[activity(name = "nowpayments.get_payment")]
    pub fn get_payment(payment_id: i64) -> Result<RecordLookup, ActivityError> {
        unimplemented!()
    }
}

pub struct PaymentVerificationLedger;

#[activity_definitions]
impl PaymentVerificationLedger {
    /// In one transaction: compares the stored IPN with NOWPayments' record (a difference raises
    /// `payment_mismatch` and the record's facts replace the IPN's), refuses what NOWPayments does
    /// not confirm as finished (`unverified`, `payment_unverified` or `payment_mismatch`), and
    /// moves a confirmed payment `received -> processing`. Idempotent on the payment id.
    #[activity(name = "db.begin_verified_payment_processing")]
    pub fn begin_verified_payment_processing(verification: PaymentVerification) -> Result<VerifiedPayment, ActivityError> {
        unimplemented!()
    }
}
