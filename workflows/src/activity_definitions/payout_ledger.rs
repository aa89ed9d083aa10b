//! `db.*` steps of `ClientPayoutWorkflow`: which payout groups are due, claiming one group's rows
//! as a payout batch, and recording how the batch ended. Retryable: the database away.
#![allow(unused_variables)]

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use temporalio_macros::activity_definitions;
use temporalio_sdk::activities::ActivityError;

pub use self::payout_ledger::{
    ClaimPayoutBatch, CompletePayoutBatch, FailPayoutBatch, FindDuePayoutGroups, FixPayoutParts, ReopenPayoutBatch,
};

/// Rows are paid per (client, wallet, currency, network): a wallet change never mixes addresses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayoutGroup {
    pub client_id: String,
    pub wallet_address: String,
    pub payout_currency: String,
    pub payout_network: String,
}

/// Which groups are due: over the client's threshold, or (when set) holding a row older than
/// `max_age_days`, or (when set) every group of one client whatever its total.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DueQuery {
    pub max_age_days: Option<u32>,
    pub only_client: Option<String>,
}

/// A batch an operator retries: the stored group and total, and how many retries it has had
/// (each allows one more attempt per exchange whose USDT came back).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum ReopenedPayout {
    /// `processing` again (or still, when its run was reset or terminated).
    /// `parts`: the cut into exchanges an earlier attempt stored, if any.
    Open { group: PayoutGroup, total_usdt: Decimal, retries: u32, parts: Option<Vec<Decimal>> },
    /// Already `completed`: a retry pays nothing.
    AlreadyCompleted,
    /// `failed` before any USDT left the wallet: its rows were released, and a new batch pays them.
    RowsReleased,
}

/// The batch's cut into exchanges, decided once: a retry sends exactly the same parts under the
/// same purpose keys even if ChangeNow's maximum has changed since.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayoutParts {
    pub batch_id: String,
    pub parts: Vec<Decimal>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayoutClaimRequest {
    pub batch_id: String,
    pub group: PayoutGroup,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimedPayout {
    pub total_usdt: Decimal,
    pub rows: i64,
}

/// One exchange of a payout, as it finished.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayoutLeg {
    pub exchange_id: String,
    pub usdt_sent: Decimal,
    pub usdt_tx_hash: String,
    pub amount_received: Decimal,
    pub payout_hash: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayoutCompletion {
    pub batch_id: String,
    pub legs: Vec<PayoutLeg>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayoutFailure {
    pub batch_id: String,
    pub reason: String,
    /// Only while no USDT of the batch left the hot wallet: the rows become payable again.
    pub release_rows: bool,
}

pub struct PayoutLedger;

#[activity_definitions]
impl PayoutLedger {
    /// Groups with converted, unpaid USDT (not in an open batch) that are due (see [`DueQuery`]).
    #[activity(name = "db.find_due_payout_groups")]
    pub fn find_due_payout_groups(query: DueQuery) -> Result<Vec<PayoutGroup>, ActivityError> {
        unimplemented!()
    }

    /// Creates the `payout_batches` row (`processing`) and claims exactly the group's unpaid
    /// rows in one statement; `None` when there is nothing to pay. Idempotent on the batch id.
    #[activity(name = "db.claim_payout_batch")]
    pub fn claim_payout_batch(request: PayoutClaimRequest) -> Result<Option<ClaimedPayout>, ActivityError> {
        unimplemented!()
    }

    /// Every exchange finished: rows `is_paid_out`, the batch `completed`. Idempotent.
    #[activity(name = "db.complete_payout_batch")]
    pub fn complete_payout_batch(completion: PayoutCompletion) -> Result<(), ActivityError> {
        unimplemented!()
    }

    /// An operator's retry: `failed` (rows kept) -> `processing`, counting the retry; an orphaned
    /// `processing` batch stays so. Idempotent per retry.
    #[activity(name = "db.reopen_payout_batch")]
    pub fn reopen_payout_batch(batch_id: String) -> Result<ReopenedPayout, ActivityError> {
        unimplemented!()
    }

    /// Stores the batch's exchange parts unless it has some; returns the stored ones.
    #[activity(name = "db.fix_payout_parts")]
    pub fn fix_payout_parts(parts: PayoutParts) -> Result<Vec<Decimal>, ActivityError> {
        unimplemented!()
    }

    /// The batch `failed`; its rows unpaid again when `release_rows`; an alert. Idempotent.
    #[activity(name = "db.fail_payout_batch")]
    pub fn fail_payout_batch(failure: PayoutFailure) -> Result<(), ActivityError> {
        unimplemented!()
    }
}
