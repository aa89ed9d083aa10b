//! `ClientPayoutWorkflow`: pays one payout group (client, wallet, currency, network) its
//! converted, unpaid USDT.
//!
//! Trigger: started at once by `MicroBatchConversionWorkflow` for every group its conversion
//! pushed over the client's threshold, by the `threshold-payout-sweep` Schedule, or by an
//! operator (`starter payout now`, `starter batch retry`), with the workflow id
//! `client-payout-{group key}`, so two triggers never run two payouts of one group at once. A
//! failed batch whose USDT left the wallet is retried in a run of its own,
//! `payout-batch-{batch_id}` (see Failure), out of the group's way.
//!
//! Steps:
//! 1. `db.claim_next_payout_batch`: the group's next batch, with a business id (the group and its
//!    sequence number, [`PayoutGroup::batch_id`]): the batch an earlier run of the group claimed and
//!    left `processing` (terminated, reset), resumed; else a new `payout_batches` row (`processing`)
//!    with exactly the group's unpaid rows, in one statement; rows arriving later go to the next
//!    batch. (A retry of a batch whose USDT already left the wallet reopens that batch instead:
//!    `db.reopen_payout_batch`.)
//! 2. ChangeNow's range for usdt (ERC-20) -> the client's coin; the payout is cut into equal
//!    exchanges of at most 5,000 USDT (or ChangeNow's maximum, when lower), and the cut is stored
//!    with the batch (`db.fix_payout_parts`) so every retry sends the same parts.
//! 3. Per exchange (purpose key `payout-{batch_id}-{n}`): create it to the client's wallet, send the
//!    USDT through the outbox, wait for `finished`.
//! 4. Only then `db.complete_payout_batch`: rows `is_paid_out` with `paid_out_at`, the batch
//!    `completed` with the amounts received and the hashes.
//!
//! Failure: the batch becomes `failed` with its reason and an alert. Before any USDT left the
//! wallet its rows are released (unpaid, payable again) and the run ends; a payout below
//! ChangeNow's minimum also holds the group (one alert per group; the sweep leaves it until its
//! USDT reaches the minimum). After USDT left, the rows stay with the batch, so no USDT is sent
//! twice, and the batch waits for an operator (up to [`OPERATOR_WAIT`]) in a run of its own,
//! `payout-batch-{batch_id}`, which the group's run starts before it ends: the group's newly
//! converted rows are paid by its next batch meanwhile. The `retry` signal to that run (from the
//! Temporal UI, or `starter batch retry`, which signals-with-start it) pays again, once: the kept
//! batch is resumed under the same purpose keys, where every exchange and transfer already made is
//! found again, and an exchange whose USDT was refunded on chain, or whose transfer reverted or was
//! cancelled at its nonce (nothing left the wallet), gets one more attempt per retry
//! (`payout-{batch_id}-{n}-retry{k}`); a failed retry waits again in the same run. Cancelling a run
//! (UI or `starter batch cancel`) stops the payout the same way a failure does.
//!
//! Guarantees: one run pays a group's new rows at a time, one run per failed batch; a batch id is
//! the same in every run that pays it; nothing pays a row twice.

use crate::{
    activity_definitions::{
        ApprovalDecision, ChangeNow, ClaimedBatch, ClaimedPayout, Ethereum, ExchangeOrder, IncomingTransferQuery, PayoutClaimRequest,
        PayoutCompletion, PayoutFailure, PayoutGroup, PayoutLedger, PayoutLeg, PayoutParts, ReopenedPayout, TransferOrder,
    },
    domain::{split_into_exchanges, ExchangePair, ExchangeStatus, RangeVerdict, Stablecoin},
    payout_steps::{exchange_step, Ledger},
    steps::{root_cause, step_options, wait_until_confirmed, wait_until_final, TransferEnd, TransferWait},
};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use temporalio_common::error::ApplicationFailure;
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{
    ChildWorkflowOptions, ParentClosePolicy, SyncWorkflowContext, WorkflowContext, WorkflowContextView, WorkflowResult, WorkflowTermination,
};

/// The largest single exchange, in USDT.
pub const MAX_EXCHANGE_USDT: Decimal = Decimal::from_parts(5000, 0, 0, false, 0);
/// How long a failed payout waits for an operator's `retry` before its run ends (the batch
/// stays `failed`; `starter batch retry` still works afterwards).
pub const OPERATOR_WAIT: Duration = Duration::from_secs(7 * 24 * 3600);
/// Batch ids became business ids chosen by the claim (`db.claim_next_payout_batch`) instead of
/// `ctx.uuid4()`, while payouts could be in flight.
const BUSINESS_BATCH_ID_PATCH: &str = "payout-batch-business-id";
/// A failed batch with its rows kept waits for its operator in a run of its own instead of
/// holding the group's workflow id, while payouts could be waiting.
const WAIT_APART_PATCH: &str = "payout-wait-apart";
/// A payout below ChangeNow's minimum holds its group, while payouts could be in flight.
const BELOW_MINIMUM_HOLD_PATCH: &str = "payout-below-minimum-hold";
/// The approval gate (a batch above the approval amount waits for `approve` or `reject`) was
/// added while payouts could be in flight.
const APPROVAL_GATE_PATCH: &str = "payout-approval-gate";
/// Recording the cut into exchanges was added while payouts could be in flight.
const FIXED_PARTS_PATCH: &str = "payout-parts-fixed";
/// The ledger steps became local activities (no activity task and workflow task of their own:
/// a third fewer tasks per payout) while payouts could be in flight.
const LOCAL_LEDGER_PATCH: &str = "payout-ledger-local";

/// The group to pay; `resume_batch_id` when an operator retries a batch whose USDT already left
/// the hot wallet (its rows stay with it). Serialized like a bare [`PayoutGroup`] otherwise. A run
/// with the workflow id [`payout_batch_workflow_id`] of `resume_batch_id` first waits for the
/// `retry` signal naming it (the batch failed in an earlier run).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientPayoutInput {
    #[serde(flatten)]
    pub group: PayoutGroup,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume_batch_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum ClientPayoutOutcome {
    NothingToPay,
    /// An operator rejected the batch awaiting approval; its rows were released.
    Rejected {
        batch_id: String,
        reason: String,
    },
    Paid {
        batch_id: String,
        total_usdt: Decimal,
        exchanges: usize,
        amount_received: Decimal,
    },
}

/// One workflow id per payout group, whatever triggers it.
pub fn client_payout_workflow_id(group: &PayoutGroup) -> String {
    let hash = uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, group.key().as_bytes()).simple().to_string();
    format!("client-payout-{}-{}", group.client_id, &hash[..12])
}

/// The workflow id of the run that retries one failed batch whose rows it kept: one per batch, so
/// it never holds the group's id (new rows of the group are paid meanwhile) and two retries of
/// the batch never run at once.
pub fn payout_batch_workflow_id(batch_id: &str) -> String {
    format!("payout-batch-{batch_id}")
}

/// The purpose key (outbox and exchange idempotency key) of exchange `n`'s attempt `attempt`.
pub fn payout_leg_key(batch_id: &str, n: usize, attempt: u32) -> String {
    match attempt {
        0 => format!("payout-{batch_id}-{n}"),
        k => format!("payout-{batch_id}-{n}-retry{k}"),
    }
}

#[workflow]
#[derive(Default)]
pub struct ClientPayoutWorkflow {
    state: PayoutRunState,
    /// The batch named by the last `retry` signal; cleared when the run starts waiting.
    retry_requested_for: Option<String>,
    /// The last `approve` or `reject` signal: the batch it names, and the rejection's reason.
    approval: Option<(String, Result<(), String>)>,
}

/// What a run is doing, for operators (the `state` query; `starter batch retry` reads it).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayoutRunState {
    /// The batch being paid, or the failed one the run waits on.
    pub batch_id: Option<String>,
    /// The batch failed with its rows kept and the run waits for a `retry` naming it.
    pub awaiting_retry: bool,
    /// The batch is above the approval amount and the run waits for `approve` or `reject`.
    #[serde(default)]
    pub awaiting_approval: bool,
    pub details: String,
}

/// Which batch an attempt pays.
enum Attempt {
    /// Claim the group's unpaid rows into a new batch.
    Fresh,
    /// Reopen a batch whose rows it kept.
    Resume(String),
}

/// Why an attempt stopped, and whether USDT of its batch may have left the hot wallet (then the
/// rows must stay with the batch).
struct Stop {
    batch_id: String,
    reason: String,
    usdt_left_wallet: bool,
    /// The payout is below ChangeNow's minimum for the pair (this, in USDT).
    below_minimum_usdt: Option<Decimal>,
}

/// A batch being paid.
struct OpenBatch {
    batch_id: String,
    group: PayoutGroup,
    total_usdt: Decimal,
    retries: u32,
    /// The cut into exchanges, when an earlier attempt stored it.
    stored_parts: Option<Vec<Decimal>>,
    /// Reopened by a retry rather than claimed by this attempt.
    resumed: bool,
    /// The stablecoin its rows hold, sent to ChangeNow.
    coin: Stablecoin,
}

impl ClientPayoutWorkflow {
    /// The first decision on a batch stands: a second signal (approve after reject, or the
    /// reverse) changes nothing.
    fn decide(&mut self, batch_id: String, decision: Result<(), String>) {
        if self.approval.as_ref().is_some_and(|(decided, _)| *decided == batch_id) {
            return;
        }
        self.approval = Some((batch_id, decision));
    }
}

impl OpenBatch {
    fn claimed(claimed: ClaimedBatch, group: &PayoutGroup) -> Self {
        Self {
            batch_id: claimed.batch_id,
            group: group.clone(),
            total_usdt: claimed.total_usdt,
            retries: claimed.retries,
            // A batch taken over before its cut was stored made no exchange yet: fresh.
            resumed: claimed.taken_over && claimed.parts.is_some(),
            stored_parts: claimed.parts,
            coin: claimed.coin,
        }
    }
}

#[workflow_methods]
impl ClientPayoutWorkflow {
    #[run(name = "ClientPayoutWorkflow")]
    pub async fn run(ctx: &mut WorkflowContext<Self>, input: ClientPayoutInput) -> WorkflowResult<ClientPayoutOutcome> {
        let ledger = Ledger { local: ctx.patched(LOCAL_LEDGER_PATCH) };
        // The run of one failed batch (started by the group's run when it failed, or by an
        // operator's `retry` with the signal) starts by waiting for the signal; any `retry` it
        // holds was sent after the failure.
        let batch_run = input.resume_batch_id.as_deref().filter(|b| ctx.workflow_id() == payout_batch_workflow_id(b));
        if let Some(batch_id) = batch_run.map(str::to_owned) {
            let failed = format!("batch {batch_id} failed in an earlier run");
            if !await_retry(ctx, &batch_id, &failed).await? {
                return Err(ApplicationFailure::non_retryable(format!("{failed}; no `retry` came")).into());
            }
        }
        let mut attempt = match input.resume_batch_id.clone() {
            Some(batch_id) => Attempt::Resume(batch_id),
            None => Attempt::Fresh,
        };
        loop {
            let mut stop = match pay(ctx, ledger, &input.group, attempt).await? {
                Ok(outcome) => return Ok(outcome),
                Err(stop) => stop,
            };
            if ctx.cancellation_token().is_cancelled() {
                let why = ctx.cancellation_token().reason().unwrap_or_default();
                stop.reason = format!("cancelled by an operator{}{why} ({})", if why.is_empty() { "" } else { ": " }, stop.reason);
            }
            let below_minimum_usdt = match stop.below_minimum_usdt {
                Some(minimum) if ctx.patched(BELOW_MINIMUM_HOLD_PATCH) => Some(minimum),
                _ => None,
            };
            // Kept rows wait for an operator, but not under the group's workflow id: its next rows
            // are paid by a new batch meanwhile. The batch's own run starts before the batch shows
            // `failed`, so an operator who sees the failure always finds the run to signal.
            let hand_over =
                stop.usdt_left_wallet && batch_run.is_none() && !ctx.cancellation_token().is_cancelled() && ctx.patched(WAIT_APART_PATCH);
            if hand_over {
                hand_over_to_batch_run(ctx, &input.group, &stop.batch_id).await;
            }
            let failure = PayoutFailure {
                batch_id: stop.batch_id.clone(),
                reason: stop.reason.clone(),
                release_rows: !stop.usdt_left_wallet,
                below_minimum_usdt,
            };
            ledger.step(ctx, PayoutLedger::fail_payout_batch, failure).await?;
            if ctx.cancellation_token().is_cancelled() {
                return Err(WorkflowTermination::cancelled());
            }
            // Released rows need no operator: the sweep (or `batch retry`) pays them in a new batch,
            // and a waiting run would hold the group's workflow id against it.
            if !stop.usdt_left_wallet || hand_over {
                return Err(ApplicationFailure::non_retryable(stop.reason).into());
            }
            // Only a `retry` sent from now on, naming this batch, resumes it: a signal sent while
            // the attempt was still paying never retries a failure no operator has seen.
            ctx.state_mut(|s| s.retry_requested_for = None);
            if !await_retry(ctx, &stop.batch_id, &stop.reason).await? {
                return Err(ApplicationFailure::non_retryable(stop.reason).into());
            }
            attempt = Attempt::Resume(stop.batch_id);
        }
    }

    /// An operator's retry of the failed batch (its id) this run waits on; any other id, or a
    /// retry sent while the run is paying, changes nothing.
    #[signal(name = "retry")]
    pub fn retry(&mut self, _ctx: &mut SyncWorkflowContext<Self>, batch_id: String) {
        self.retry_requested_for = Some(batch_id.trim().to_owned());
    }

    /// An operator approves the batch (its id) this run holds for approval.
    #[signal(name = "approve")]
    pub fn approve(&mut self, _ctx: &mut SyncWorkflowContext<Self>, batch_id: String) {
        self.decide(batch_id.trim().to_owned(), Ok(()));
    }

    /// An operator rejects the batch this run holds for approval; its rows are released.
    #[signal(name = "reject")]
    pub fn reject(&mut self, _ctx: &mut SyncWorkflowContext<Self>, rejection: Rejection) {
        let reason = if rejection.reason.trim().is_empty() { "no reason given".to_owned() } else { rejection.reason.trim().to_owned() };
        self.decide(rejection.batch_id.trim().to_owned(), Err(reason));
    }

    #[query(name = "state")]
    pub fn state(&self, _ctx: &WorkflowContextView) -> PayoutRunState {
        self.state.clone()
    }
}

/// The `reject` signal's input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejection {
    pub batch_id: String,
    #[serde(default)]
    pub reason: String,
}

/// Waits, without a time limit (the alert stays open meanwhile), for an operator's `approve` or
/// `reject` naming `batch_id`; `Err(reason)` when rejected. A cancelled run counts as a rejection.
async fn await_approval(
    ctx: &mut WorkflowContext<ClientPayoutWorkflow>,
    batch_id: &str,
    total_usdt: Decimal,
) -> WorkflowResult<Result<(), String>> {
    ctx.state_mut(|s| s.state.awaiting_approval = true);
    report(
        ctx,
        Some(batch_id),
        format!("batch {batch_id} ({total_usdt} USDT) is above the approval amount; waiting for `approve` or `reject`"),
    );
    let cancellation = ctx.cancellation_token();
    temporalio_sdk::workflows::select! {
        _ = ctx.wait_condition(|s: &ClientPayoutWorkflow| s.approval.as_ref().is_some_and(|(b, _)| b == batch_id)) => {}
        _ = cancellation.cancelled() => {}
    };
    ctx.state_mut(|s| s.state.awaiting_approval = false);
    if ctx.cancellation_token().is_cancelled() {
        let why = ctx.cancellation_token().reason().unwrap_or_default();
        return Ok(Err(format!("the run was cancelled while waiting for approval{}{why}", if why.is_empty() { "" } else { ": " })));
    }
    Ok(ctx.state(|s| s.approval.as_ref().map(|(_, decision)| decision.clone())).unwrap_or(Ok(())))
}

/// Waits (at most [`OPERATOR_WAIT`]) for a `retry` naming the failed `batch_id`; `Ok(true)` when
/// one came. Ends the run when it is cancelled meanwhile.
async fn await_retry(ctx: &mut WorkflowContext<ClientPayoutWorkflow>, batch_id: &str, reason: &str) -> WorkflowResult<bool> {
    ctx.state_mut(|s| s.state.awaiting_retry = true);
    report(ctx, Some(batch_id), format!("batch {batch_id} failed; waiting for `retry`: {reason}"));
    temporalio_sdk::workflows::select! {
        _ = ctx.timer(OPERATOR_WAIT) => {}
        _ = ctx.wait_condition(|s: &ClientPayoutWorkflow| s.retry_requested_for.as_deref() == Some(batch_id)) => {}
    };
    ctx.state_mut(|s| s.state.awaiting_retry = false);
    if ctx.cancellation_token().is_cancelled() {
        return Err(WorkflowTermination::cancelled());
    }
    Ok(ctx.state(|s| s.retry_requested_for.as_deref() == Some(batch_id)))
}

/// Starts the failing batch's own run, which waits for its operator's `retry` (a retry names a
/// batch an operator saw `failed`), and lets it outlive this one.
async fn hand_over_to_batch_run(ctx: &mut WorkflowContext<ClientPayoutWorkflow>, group: &PayoutGroup, batch_id: &str) {
    let options = ChildWorkflowOptions::builder()
        .workflow_id(payout_batch_workflow_id(batch_id))
        .parent_close_policy(ParentClosePolicy::Abandon)
        .build();
    let input = ClientPayoutInput { group: group.clone(), resume_batch_id: Some(batch_id.to_owned()) };
    let details = match ctx.start_child_workflow(ClientPayoutWorkflow::run, input, options).await {
        Ok(_) => format!("batch {batch_id} failed; it waits for `retry` in {}", payout_batch_workflow_id(batch_id)),
        // Taken: an operator's `retry` (signal-with-start) got there first.
        Err(e) => format!("batch {batch_id} failed; its run {} was already started: {e}", payout_batch_workflow_id(batch_id)),
    };
    report(ctx, Some(batch_id), details);
}

fn report(ctx: &mut WorkflowContext<ClientPayoutWorkflow>, batch_id: Option<&str>, details: String) {
    ctx.set_current_details(details.clone());
    ctx.state_mut(|s| {
        s.state.batch_id = batch_id.map(str::to_owned);
        s.state.details = details;
    });
}

/// One attempt: `Ok(Err(stop))` when the batch must be marked failed.
async fn pay(
    ctx: &mut WorkflowContext<ClientPayoutWorkflow>,
    ledger: Ledger,
    group: &PayoutGroup,
    attempt: Attempt,
) -> WorkflowResult<Result<ClientPayoutOutcome, Stop>> {
    let batch = match attempt {
        Attempt::Fresh if ctx.patched(BUSINESS_BATCH_ID_PATCH) => {
            match ledger.step(ctx, PayoutLedger::claim_next_payout_batch, group.clone()).await? {
                None => return Ok(Ok(ClientPayoutOutcome::NothingToPay)),
                Some(claimed) if claimed.awaiting_approval && ctx.patched(APPROVAL_GATE_PATCH) => {
                    let decision = await_approval(ctx, &claimed.batch_id, claimed.total_usdt).await?;
                    let recorded =
                        ApprovalDecision { batch_id: claimed.batch_id.clone(), approved: decision.is_ok(), reason: decision.clone().err() };
                    ledger.step(ctx, PayoutLedger::record_payout_approval, recorded).await?;
                    if let Err(reason) = decision {
                        report(ctx, Some(&claimed.batch_id), format!("batch {} rejected: {reason}", claimed.batch_id));
                        if ctx.cancellation_token().is_cancelled() {
                            return Err(WorkflowTermination::cancelled());
                        }
                        return Ok(Ok(ClientPayoutOutcome::Rejected { batch_id: claimed.batch_id, reason }));
                    }
                    OpenBatch::claimed(claimed, group)
                }
                Some(claimed) => OpenBatch::claimed(claimed, group),
            }
        }
        // Runs from before business ids.
        Attempt::Fresh => {
            // One id per attempt, recorded in history: replays and retried steps see the same batch.
            let batch_id = ctx.uuid4();
            let request = PayoutClaimRequest { batch_id: batch_id.clone(), group: group.clone() };
            match ledger.step(ctx, PayoutLedger::claim_payout_batch, request).await? {
                None => return Ok(Ok(ClientPayoutOutcome::NothingToPay)),
                Some(ClaimedPayout { total_usdt, coin, .. }) => {
                    OpenBatch { batch_id, group: group.clone(), total_usdt, retries: 0, stored_parts: None, resumed: false, coin }
                }
            }
        }
        Attempt::Resume(batch_id) => match ledger.step(ctx, PayoutLedger::reopen_payout_batch, batch_id.clone()).await? {
            ReopenedPayout::Open { group, total_usdt, retries, parts, coin } => {
                OpenBatch { batch_id, group, total_usdt, retries, stored_parts: parts, resumed: true, coin }
            }
            ReopenedPayout::AlreadyCompleted | ReopenedPayout::RowsReleased => {
                return Ok(Ok(ClientPayoutOutcome::NothingToPay));
            }
        },
    };
    let details = format!("paying batch {} ({} USDT, retry {})", batch.batch_id, batch.total_usdt, batch.retries);
    report(ctx, Some(&batch.batch_id), details);
    // A resumed batch (failed with its rows kept, or orphaned while processing) may have USDT out
    // already: its rows are never released by a later failure.
    let mut usdt_left_wallet = batch.resumed;
    let stop = |reason: String, usdt_left_wallet: bool| Stop {
        batch_id: batch.batch_id.clone(),
        reason,
        usdt_left_wallet,
        below_minimum_usdt: None,
    };

    let pair = ExchangePair::new((batch.coin.as_str(), batch.coin.network()), (&batch.group.payout_currency, &batch.group.payout_network));
    // A resumed batch sends the parts it was cut into, whatever ChangeNow's range says today.
    let parts = match batch.stored_parts.clone() {
        Some(parts) => parts,
        None => match cut_into_parts(ctx, ledger, &batch, &pair).await? {
            Ok(parts) => parts,
            Err(Uncut { reason, below_minimum_usdt }) => {
                return Ok(Err(Stop { below_minimum_usdt, ..stop(reason, usdt_left_wallet) }));
            }
        },
    };

    let mut legs = Vec::with_capacity(parts.len());
    for (n, usdt) in parts.iter().enumerate() {
        let leg = pay_leg(ctx, &batch, &pair, n, *usdt, &mut usdt_left_wallet).await?;
        match leg {
            Ok(leg) => legs.push(leg),
            Err(reason) => return Ok(Err(stop(reason, usdt_left_wallet))),
        }
    }
    let amount_received = legs.iter().map(|l| l.amount_received).sum();
    let exchanges = legs.len();
    let completion = PayoutCompletion { batch_id: batch.batch_id.clone(), legs };
    ledger.step(ctx, PayoutLedger::complete_payout_batch, completion).await?;
    report(ctx, Some(&batch.batch_id), format!("batch {} paid", batch.batch_id));
    Ok(Ok(ClientPayoutOutcome::Paid { batch_id: batch.batch_id, total_usdt: batch.total_usdt, exchanges, amount_received }))
}

/// Why a payout could not be cut into exchanges.
struct Uncut {
    reason: String,
    /// ChangeNow's minimum for the pair, when the payout is below it.
    below_minimum_usdt: Option<Decimal>,
}

impl From<String> for Uncut {
    fn from(reason: String) -> Self {
        Self { reason, below_minimum_usdt: None }
    }
}

/// ChangeNow's range for the pair, then the cut into the fewest equal exchanges within it,
/// stored with the batch. `Ok(Err(_))` when the payout cannot be exchanged.
async fn cut_into_parts(
    ctx: &mut WorkflowContext<ClientPayoutWorkflow>,
    ledger: Ledger,
    batch: &OpenBatch,
    pair: &ExchangePair,
) -> WorkflowResult<Result<Vec<Decimal>, Uncut>> {
    let range = match exchange_step(ctx, ChangeNow::check_exchange_range, pair.clone()).await {
        Ok(range) => range,
        Err(e) => return Ok(Err(format!("no exchange range for {pair}: {}", root_cause(&e)).into())),
    };
    if let RangeVerdict::BelowMinimum { minimum } = RangeVerdict::judge(batch.total_usdt, range.min_amount, None) {
        let reason = format!("{} USDT is below ChangeNow's minimum of {minimum} for {pair}", batch.total_usdt);
        return Ok(Err(Uncut { reason, below_minimum_usdt: Some(minimum) }));
    }
    let limit = range.max_amount.map_or(MAX_EXCHANGE_USDT, |max| max.min(MAX_EXCHANGE_USDT));
    let parts = match split_into_exchanges(batch.total_usdt, limit) {
        Ok(parts) => parts,
        Err(e) => return Ok(Err(format!("cannot split payout {}: {e}", batch.batch_id).into())),
    };
    if !ctx.patched(FIXED_PARTS_PATCH) {
        return Ok(Ok(parts));
    }
    let fixed = PayoutParts { batch_id: batch.batch_id.clone(), parts };
    Ok(Ok(ledger.step(ctx, PayoutLedger::fix_payout_parts, fixed).await?))
}

/// Exchange `n` of the batch: its earlier attempts are found again under their purpose keys; an
/// attempt whose USDT was refunded on chain is followed by the next one, as far as the batch's
/// retries allow. `Ok(Err(reason))` when the exchange cannot be paid now.
async fn pay_leg(
    ctx: &mut WorkflowContext<ClientPayoutWorkflow>,
    batch: &OpenBatch,
    pair: &ExchangePair,
    n: usize,
    usdt: Decimal,
    usdt_left_wallet: &mut bool,
) -> WorkflowResult<Result<PayoutLeg, String>> {
    let mut attempt = 0;
    loop {
        let purpose_key = payout_leg_key(&batch.batch_id, n, attempt);
        let order = ExchangeOrder {
            purpose_key: purpose_key.clone(),
            pair: pair.clone(),
            from_amount: usdt,
            payout_address: batch.group.wallet_address.clone(),
        };
        let ticket = match exchange_step(ctx, ChangeNow::create_exchange, order).await {
            Ok(ticket) => ticket,
            Err(e) => return Ok(Err(format!("ChangeNow refused exchange {n} of the payout: {}", root_cause(&e)))),
        };
        *usdt_left_wallet = true;
        let transfer =
            TransferOrder { purpose_key: purpose_key.clone(), asset: batch.coin.asset(), to: ticket.payin_address, amount: usdt };
        let sent = match ctx.execute_activity(Ethereum::send_transfer, transfer, step_options()).await {
            Ok(_) => wait_until_confirmed(ctx, &purpose_key, TransferWait::STANDARD).await,
            Err(e) => Err(ApplicationFailure::non_retryable(root_cause(&e)).into()),
        };
        let usdt_tx_hash = match sent {
            Ok(TransferEnd::Confirmed { tx_hash }) => tx_hash,
            // Nothing left the wallet: like a refund seen on chain, it may be paid again under the
            // next purpose key, as far as the batch's retries allow.
            Ok(TransferEnd::NotSent { reason }) if attempt < batch.retries => {
                report(ctx, Some(&batch.batch_id), reason);
                attempt += 1;
                continue;
            }
            Ok(TransferEnd::NotSent { reason }) => return Ok(Err(reason)),
            Err(e) => return Ok(Err(format!("USDT transfer {purpose_key} did not complete: {e}"))),
        };
        let last = match wait_until_final(ctx, &ticket.exchange_id).await {
            Ok(last) => last,
            Err(e) => return Ok(Err(e.to_string())),
        };
        match (last.status, &last.refund_hash) {
            (ExchangeStatus::Finished, _) => {
                return Ok(Ok(PayoutLeg {
                    exchange_id: ticket.exchange_id,
                    usdt_sent: usdt,
                    usdt_tx_hash,
                    amount_received: last.amount_to.unwrap_or_default(),
                    payout_hash: last.payout_hash,
                }));
            }
            (ExchangeStatus::Refunded, Some(refund_hash)) => {
                // Only USDT seen back on chain may be sent again.
                let query = IncomingTransferQuery { tx_hash: refund_hash.clone(), asset: batch.coin.asset() }
                    .refund_credited_to(format!("payout_refund:{purpose_key}"), usdt);
                let back = match ctx.execute_activity(Ethereum::find_incoming_transfer, query, step_options()).await {
                    Ok(back) => back,
                    Err(e) => {
                        return Ok(Err(format!("refund {refund_hash} of exchange {} not found: {}", ticket.exchange_id, root_cause(&e))))
                    }
                };
                // Less back than was sent (ChangeNow kept a fee) would be made up from other
                // clients' USDT: that needs an operator, not a retry.
                if back.amount < usdt || attempt >= batch.retries {
                    return Ok(Err(format!(
                        "exchange {} ended 'refunded'; refund {refund_hash} returned {} USDT on chain",
                        ticket.exchange_id, back.amount
                    )));
                }
                attempt += 1;
            }
            (status, _) => {
                return Ok(Err(format!("exchange {} ended '{status}'; its USDT stays with ChangeNow's support", ticket.exchange_id)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_workflow_id_per_group_and_a_wallet_change_is_another_group() {
        let group = PayoutGroup {
            client_id: "-100".into(),
            wallet_address: "44AFF".into(),
            payout_currency: "xmr".into(),
            payout_network: "xmr".into(),
        };
        assert_eq!(client_payout_workflow_id(&group), client_payout_workflow_id(&group.clone()));
        let moved = PayoutGroup { wallet_address: "48new".into(), ..group.clone() };
        assert_ne!(client_payout_workflow_id(&group), client_payout_workflow_id(&moved));
    }

    #[test]
    fn batch_ids_are_the_group_and_its_sequence() {
        let group = PayoutGroup {
            client_id: "-100".into(),
            wallet_address: "44AFF".into(),
            payout_currency: "xmr".into(),
            payout_network: "xmr".into(),
        };
        assert_eq!(group.batch_id(1), group.clone().batch_id(1), "the same batch in every run");
        assert_ne!(group.batch_id(1), group.batch_id(2));
        let moved = PayoutGroup { wallet_address: "48new".into(), ..group.clone() };
        assert_ne!(group.batch_id(1), moved.batch_id(1));
        assert!(uuid::Uuid::parse_str(&group.batch_id(1)).is_ok(), "a uuid, as payout_batches.batch_id is");
        assert_ne!(payout_batch_workflow_id(&group.batch_id(1)), client_payout_workflow_id(&group));
    }

    #[test]
    fn a_first_attempt_keeps_the_original_purpose_key_and_retries_get_their_own() {
        assert_eq!(payout_leg_key("b", 2, 0), "payout-b-2");
        assert_eq!(payout_leg_key("b", 2, 1), "payout-b-2-retry1");
        assert_ne!(payout_leg_key("b", 1, 1), payout_leg_key("b", 1, 2));
    }

    #[test]
    fn the_input_reads_runs_started_with_a_bare_group() {
        let bare = r#"{"client_id":"-1","wallet_address":"w","payout_currency":"xmr","payout_network":"xmr"}"#;
        let input: ClientPayoutInput = serde_json::from_str(bare).unwrap();
        assert_eq!(input.resume_batch_id, None);
        assert_eq!(serde_json::to_string(&input).unwrap(), bare);
    }
}
