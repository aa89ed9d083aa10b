//! `db.*` steps of `MicroBatchConversionWorkflow`: claiming the pending pool as one batch, and
//! recording how it ended. Retryable: the database away. Non-retryable: a batch in a state the
//! step cannot leave.
#![allow(unused_variables)]

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use temporalio_macros::activity_definitions;
use temporalio_sdk::activities::ActivityError;

pub use self::conversion_ledger::{ClaimConversionPool, CompleteConversion, ReleaseConversion};

/// One `payout_accumulation` row in a batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimedRow {
    pub accumulation_id: i64,
    pub net_usd: Decimal,
    pub eth: Decimal,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "claim")]
pub enum ConversionClaim {
    /// The pool is below the threshold in force: nothing was claimed.
    BelowThreshold { pool_usd: Decimal, pool_eth: Decimal, pending_rows: i64, threshold_usd: Decimal },
    /// The batch and exactly these rows (in id order), now `swapping`.
    Claimed { threshold_usd: Decimal, total_usd: Decimal, total_eth: Decimal, rows: Vec<ClaimedRow> },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowShare {
    pub accumulation_id: i64,
    pub usdt: Decimal,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConvertedBatch {
    pub batch_id: String,
    pub exchange_id: String,
    /// The USDT transfer to the hot wallet the shares come from.
    pub usdt_tx_hash: String,
    pub usdt_received: Decimal,
    pub shares: Vec<RowShare>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleasedBatch {
    pub batch_id: String,
    pub exchange_id: Option<String>,
    pub reason: String,
    /// `true` only while the rows' ETH is provably in the hot wallet (nothing sent, or the
    /// refund seen on chain): then the rows go back to `pending`. Otherwise they stay
    /// `swapping` under the failed batch for an operator, so their ETH is never sent twice.
    pub return_rows: bool,
}

pub struct ConversionLedger;

#[activity_definitions]
impl ConversionLedger {
    /// Reads `settings.micro_batch_threshold_usd`; at or above it, creates the batch and moves
    /// every pending row to `swapping` in one statement. Idempotent on the batch id.
    #[activity(name = "db.claim_conversion_pool")]
    pub fn claim_conversion_pool(batch_id: String) -> Result<ConversionClaim, ActivityError> {
        unimplemented!()
    }

    /// Rows `completed` with their shares, the batch `completed`. Idempotent.
    #[activity(name = "db.complete_conversion")]
    pub fn complete_conversion(batch: ConvertedBatch) -> Result<(), ActivityError> {
        unimplemented!()
    }

    /// The batch `failed` with its reason; its rows back to `pending` for a later batch when
    /// `return_rows`, else left `swapping` for an operator. Idempotent.
    #[activity(name = "db.release_conversion")]
    pub fn release_conversion(batch: ReleasedBatch) -> Result<(), ActivityError> {
        unimplemented!()
    }
}
