//! `db.*` steps of `MicroBatchConversionWorkflow`: claiming the pending pool as one batch, and
//! recording how it ended. Retryable: the database away. Non-retryable: a batch in a state the
//! step cannot leave.
#![allow(unused_variables)]

use crate::domain::Stablecoin;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use temporalio_macros::activity_definitions;
use temporalio_sdk::activities::ActivityError;

pub use self::conversion_ledger::{ClaimConversionPool, CompleteConversion, LimitConversionBatch, ReleaseConversion};

/// The purpose key of a conversion batch's exchange and ETH transfer: what the outbox and the
/// exchanges table know the batch by.
pub fn conversion_purpose_key(batch_id: &str) -> String {
    format!("conversion-{batch_id}")
}

/// Claim the next batch: at most `max_rows` of the oldest pending rows. Rows never travel
/// through workflow history (a 40,000-row pool would exceed Temporal's payload limit): the batch
/// is its id, its totals and its row count, and the rows stay in Postgres.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversionClaimRequest {
    pub batch_id: String,
    pub max_rows: i64,
    /// The claiming run's workflow id, stored with the batch for the operators' links (absent in
    /// histories recorded before it existed).
    #[serde(default)]
    pub workflow_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "claim")]
pub enum ConversionClaim {
    /// The pool is below the threshold in force: nothing was claimed.
    BelowThreshold { pool_usd: Decimal, pool_eth: Decimal, pending_rows: i64, threshold_usd: Decimal },
    /// The batch holds `row_count` rows, now `swapping`. `resumed`: the batch was claimed before
    /// (by this run before a crash, or by an earlier run of the same workflow id that was reset
    /// or restarted); it is carried on, never treated as fresh, since its ETH may have left.
    Claimed {
        threshold_usd: Decimal,
        total_usd: Decimal,
        total_eth: Decimal,
        #[serde(default)]
        row_count: i64,
        #[serde(default)]
        resumed: bool,
        /// What the batch converts into (absent in histories from before USDC: USDT).
        #[serde(default)]
        coin: Stablecoin,
    },
    /// A batch of this id exists and has ended (`completed` or `failed`): it is never started
    /// again; the run goes on with its next batch.
    Ended { status: String },
}

/// What a batch holds after [`ConversionLedger::limit_conversion_batch`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchTotals {
    pub total_usd: Decimal,
    pub total_eth: Decimal,
    pub row_count: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchLimit {
    pub batch_id: String,
    /// ChangeNow's maximum for the pair: the newest rows go back to `pending` until the batch's
    /// ETH is at most this.
    pub max_eth: Decimal,
}

/// The exchange's USDT, as seen on chain; the step splits it over the batch's rows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConvertedBatch {
    pub batch_id: String,
    pub exchange_id: String,
    /// The USDT transfer to the hot wallet the shares come from.
    pub usdt_tx_hash: String,
    pub usdt_received: Decimal,
}

/// A refund ChangeNow reported, with what that transaction paid the hot wallet on chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeenRefund {
    pub tx_hash: String,
    pub amount_eth: Decimal,
}

/// A batch that failed. The step, not the workflow, decides whether its rows go back to the
/// pool, from what Postgres holds: only while their ETH is provably in the hot wallet (no
/// outbox intent for the batch's purpose key, or `refund` returned the batch's full amount).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedBatch {
    pub batch_id: String,
    pub exchange_id: Option<String>,
    pub reason: String,
    #[serde(default)]
    pub refund: Option<SeenRefund>,
}

pub struct ConversionLedger;

#[activity_definitions]
impl ConversionLedger {
    /// Reads `settings.micro_batch_threshold_usd` and the pool's totals; at or above the
    /// threshold, creates the batch and moves the oldest pending rows (at most `max_rows`) to
    /// `swapping`. Idempotent on the batch id: a batch that exists is returned as it is.
    #[activity(name = "db.claim_conversion_pool")]
    pub fn claim_conversion_pool(request: ConversionClaimRequest) -> Result<ConversionClaim, ActivityError> {
        unimplemented!()
    }

    /// Returns the newest rows of a fresh batch to `pending` until its ETH is within
    /// ChangeNow's maximum. Idempotent.
    #[activity(name = "db.limit_conversion_batch")]
    pub fn limit_conversion_batch(limit: BatchLimit) -> Result<BatchTotals, ActivityError> {
        unimplemented!()
    }

    /// Splits the USDT received over the batch's rows in proportion to the ETH each brought
    /// (rounded down to USDT's 6 decimals, the rest to the last row; exact), rows `completed`
    /// with their shares, the batch `completed`. Idempotent.
    #[activity(name = "db.complete_conversion")]
    pub fn complete_conversion(batch: ConvertedBatch) -> Result<(), ActivityError> {
        unimplemented!()
    }

    /// The batch `failed` with its reason and an alert; its rows back to `pending` only while
    /// their ETH is provably in the hot wallet, else kept `swapping` under the failed batch for
    /// `starter conversion resume` or `return-rows`. Idempotent.
    #[activity(name = "db.release_conversion")]
    pub fn release_conversion(batch: FailedBatch) -> Result<(), ActivityError> {
        unimplemented!()
    }
}
