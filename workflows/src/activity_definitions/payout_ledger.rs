//! `db.*` steps of `ClientPayoutWorkflow`: which payout groups are due, claiming one group's rows
//! as a payout batch, and recording how the batch ended. Retryable: the database away.
#![allow(unused_variables)]

use crate::domain::Stablecoin;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use temporalio_macros::activity_definitions;
use temporalio_sdk::activities::ActivityError;

pub use self::payout_ledger::{
    ClaimNextPayoutBatch, ClaimPayoutBatch, CompletePayoutBatch, FailPayoutBatch, FindDuePayoutGroups, FixPayoutParts,
    RecordPayoutApproval, ReopenPayoutBatch,
};

/// Rows are paid per (client, wallet, currency, network): a wallet change never mixes addresses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayoutGroup {
    pub client_id: String,
    pub wallet_address: String,
    pub payout_currency: String,
    pub payout_network: String,
}

impl PayoutGroup {
    /// The group as one string: the same group, the same key, whatever asks.
    pub fn key(&self) -> String {
        format!("{}|{}|{}|{}", self.client_id, self.wallet_address, self.payout_currency, self.payout_network)
    }

    /// The id of the group's batch number `sequence` (1, 2, ...): a business id, the same for
    /// every run and every retry that claims that batch, so a run that is reset or restarted finds
    /// its batch (and its exchanges and transfers, keyed by it) again instead of starting another.
    pub fn batch_id(&self, sequence: u32) -> String {
        let name = format!("payout-batch|{}|{sequence}", self.key());
        uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, name.as_bytes()).to_string()
    }
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
    Open {
        group: PayoutGroup,
        total_usdt: Decimal,
        retries: u32,
        parts: Option<Vec<Decimal>>,
        /// The stablecoin its rows hold (absent in histories from before USDC: USDT).
        #[serde(default)]
        coin: Stablecoin,
    },
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
    #[serde(default)]
    pub coin: Stablecoin,
}

/// The batch `db.claim_next_payout_batch` gives a group's run to pay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimedBatch {
    pub batch_id: String,
    /// Its number in the group (its id is [`PayoutGroup::batch_id`] of it).
    pub sequence: u32,
    pub total_usdt: Decimal,
    pub rows: i64,
    pub retries: u32,
    /// The cut into exchanges, stored when an earlier run got that far.
    pub parts: Option<Vec<Decimal>>,
    /// Claimed by an earlier run of the group that ended mid-payout (terminated, reset): taken
    /// over, not fresh. With `parts` stored, USDT may have left the wallet.
    pub taken_over: bool,
    /// The stablecoin its rows hold: a batch never mixes coins (absent before USDC: USDT).
    #[serde(default)]
    pub coin: Stablecoin,
    /// Above `settings.payout_approval_above_usd`: nothing is sent before an operator approves.
    /// Absent from results recorded before the approval gate.
    #[serde(default)]
    pub awaiting_approval: bool,
}

/// An operator's answer to a batch awaiting approval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalDecision {
    pub batch_id: String,
    pub approved: bool,
    /// Why it was rejected (recorded as the batch's reason).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
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
    /// The payout is below ChangeNow's minimum (this, in USDT) for the pair: the group is held
    /// (the sweep leaves it) until its unpaid USDT reaches it, with one alert per group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub below_minimum_usdt: Option<Decimal>,
}

pub struct PayoutLedger;

#[activity_definitions]
impl PayoutLedger {
    /// Groups with converted, unpaid USDT (not in an open batch) that are due (see [`DueQuery`]);
    /// a group held below ChangeNow's minimum is due again only once its USDT reaches it (or when
    /// an operator names its client).
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

    /// The group's next batch: the group's batch a run of it claimed and left `processing` (the
    /// run ended), taken over; else a new batch, numbered with the group's next sequence and
    /// holding exactly the group's unpaid rows, in one transaction. `None` when there is nothing
    /// to pay. A retried call finds the batch it created.
    #[activity(name = "db.claim_next_payout_batch")]
    pub fn claim_next_payout_batch(group: PayoutGroup) -> Result<Option<ClaimedBatch>, ActivityError> {
        unimplemented!()
    }

    /// An operator's decision on a batch `awaiting_approval`: approved -> `processing`; rejected ->
    /// `rejected` with the reason and its rows released. Settles the batch's approval alert.
    /// Idempotent.
    #[activity(name = "db.record_payout_approval")]
    pub fn record_payout_approval(decision: ApprovalDecision) -> Result<(), ActivityError> {
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

    /// The batch `failed`; its rows unpaid again when `release_rows`; an alert (for a payout below
    /// ChangeNow's minimum: the group held, and one open alert per group). Idempotent.
    #[activity(name = "db.fail_payout_batch")]
    pub fn fail_payout_batch(failure: PayoutFailure) -> Result<(), ActivityError> {
        unimplemented!()
    }
}
