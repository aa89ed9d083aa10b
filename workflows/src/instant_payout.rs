//! `InstantPayoutWorkflow`: one payment of an instant client, swapped through ChangeNow into the
//! client's coin and sent to the client's wallet.
//!
//! Trigger: a child of `PaymentWorkflow`, workflow id `instant-payout-{payment_id}`.
//!
//! Steps:
//! 1. `db.open_instant_payout`: the `instant_payouts` row, `pending`.
//! 2. `changenow.check_exchange_range` for ETH -> the client's coin. Outside the range the payout
//!    is **held** (reason recorded, alert logged) and the workflow ends: nothing is sent, and an
//!    operator decides. A payment below ChangeNow's minimum can never be swapped alone, so
//!    failing or retrying would not help, and silently dropping it would lose the client's money.
//! 3. `db.gate_instant_payout`, the limits (DESIGN.md, "Trust" -> "Limits"): a payout above the
//!    approval amount, or one that would take the client's payouts of the last 24 h above
//!    `CLIENT_DAILY_PAYOUT_LIMIT_USD`, is held `awaiting_approval` with a `payout_awaiting_approval`
//!    alert, and the run waits, without a time limit, for an operator's `approve` (the payment id)
//!    or `reject` (`{"payment_id", "reason"}`) signal: from `POST /api/v1/instant-payouts/{id}/approve|reject`,
//!    `starter instant-payout approve|reject` or the Temporal UI, all the same signal. Approved, it
//!    goes on; rejected (or the run cancelled meanwhile), it ends `rejected` with the reason and
//!    nothing is sent: the ETH stays in the hot wallet. The first decision stands.
//! 4. `changenow.create_exchange` (once per payment, stored and reused on retry) to the client's
//!    wallet. A refused request (invalid address) fails fast: recorded as `failed`, nothing sent.
//! 5. `ethereum.send_transfer`: the payment's net ETH to the pay-in address, through the outbox
//!    (signed and stored once, then broadcast); `ethereum.check_transfer` until confirmed.
//! 6. Poll `changenow.exchange_progress` with workflow timers (2 s, backing off to 1 min) until
//!    a final status:
//!    `finished` -> `completed` with the amount received and the payout hash; `failed` ->
//!    `failed`; `refunded` -> the refund is looked up on chain and recorded -> `refunded`. An
//!    unknown status is never success: polling goes on until the deadline, then the workflow
//!    fails with the last status (an alert in the Temporal UI), the row stays `sent`.
//!
//! Guarantees: the purpose key `instant-payout-{payment_id}` names both the exchange and the
//! transfer, so retries and replays reuse them: one exchange, one transaction, whatever crashes.
//! Failed and refunded payouts fail the workflow (non-retryable) after being recorded, so they
//! stand out in the Temporal UI.

use crate::{
    activity_definitions::{
        ChangeNow, ClientPayoutProfile, Ethereum, ExchangeOrder, IncomingTransferQuery, InstantPayoutGate, InstantPayoutLedger,
        InstantPayoutOpening, InstantPayoutStep, InstantPayoutTransition, TransferOrder,
    },
    domain::{ChainAsset, ExchangePair, ExchangeStatus, RangeVerdict, SETTLEMENT_CURRENCY},
    steps::{root_cause, step_options, wait_until_confirmed, wait_until_final, TransferEnd, TransferWait},
};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use temporalio_common::error::ApplicationFailure;
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{SyncWorkflowContext, WorkflowCancellationToken, WorkflowContext, WorkflowResult, WorkflowTermination};

/// The limits gate (the approval amount and the client's daily limit) was added while instant
/// payouts could be in flight: runs that passed this point before it send without asking.
const LIMITS_PATCH: &str = "instant-payout-limits";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstantPayoutInput {
    pub payment_id: i64,
    pub client_id: String,
    /// The payment's ETH net of the platform fee: exactly what is sent to the exchange.
    pub amount_eth: Decimal,
    pub client: ClientPayoutProfile,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum InstantPayoutOutcome {
    Completed {
        exchange_id: String,
        payin_tx_hash: String,
        amount_sent_eth: Decimal,
        amount_received: Decimal,
        payout_currency: String,
        payout_hash: Option<String>,
    },
    Held {
        reason: String,
    },
    /// An operator rejected the payout held for approval; nothing was sent.
    Rejected {
        reason: String,
    },
}

/// The `reject` signal's input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstantRejection {
    pub payment_id: i64,
    #[serde(default)]
    pub reason: String,
}

pub fn instant_payout_workflow_id(payment_id: i64) -> String {
    format!("instant-payout-{payment_id}")
}

#[workflow]
#[derive(Default)]
pub struct InstantPayoutWorkflow {
    /// The operator's decision on the payout held for approval: the payment it names, and the
    /// rejection's reason.
    decision: Option<(i64, Result<(), String>)>,
}

impl InstantPayoutWorkflow {
    /// The first decision on a payment stands: approving after rejecting (or the reverse) changes
    /// nothing.
    fn decide(&mut self, payment_id: i64, decision: Result<(), String>) {
        if self.decision.as_ref().is_some_and(|(decided, _)| *decided == payment_id) {
            return;
        }
        self.decision = Some((payment_id, decision));
    }

    fn decision_on(&self, payment_id: i64) -> Option<Result<(), String>> {
        self.decision.as_ref().filter(|(decided, _)| *decided == payment_id).map(|(_, decision)| decision.clone())
    }
}

#[workflow_methods]
impl InstantPayoutWorkflow {
    #[run(name = "InstantPayoutWorkflow")]
    pub async fn run(ctx: &mut WorkflowContext<Self>, input: InstantPayoutInput) -> WorkflowResult<InstantPayoutOutcome> {
        let purpose_key = instant_payout_workflow_id(input.payment_id);
        let opening = InstantPayoutOpening {
            payment_id: input.payment_id,
            client_id: input.client_id.clone(),
            amount_eth: input.amount_eth,
            client: input.client.clone(),
        };
        ctx.execute_activity(InstantPayoutLedger::open_instant_payout, opening, step_options()).await?;

        let pair =
            ExchangePair::new((SETTLEMENT_CURRENCY, SETTLEMENT_CURRENCY), (&input.client.payout_currency, &input.client.payout_network));
        let range = ctx.execute_activity(ChangeNow::check_exchange_range, pair.clone(), step_options()).await?;
        let hold_reason = match RangeVerdict::judge(input.amount_eth, range.min_amount, range.max_amount) {
            RangeVerdict::Within => None,
            RangeVerdict::BelowMinimum { minimum } => {
                Some(format!("{} ETH is below ChangeNow's minimum of {minimum} ETH for {pair}", input.amount_eth))
            }
            RangeVerdict::AboveMaximum { maximum } => {
                Some(format!("{} ETH is above ChangeNow's maximum of {maximum} ETH for {pair}", input.amount_eth))
            }
        };
        if let Some(reason) = hold_reason {
            record(ctx, input.payment_id, InstantPayoutStep::Held { reason: reason.clone() }).await?;
            return Ok(InstantPayoutOutcome::Held { reason });
        }
        if ctx.patched(LIMITS_PATCH) {
            if let Err(reason) = pass_the_limits(ctx, input.payment_id).await? {
                if ctx.cancellation_token().is_cancelled() {
                    return Err(WorkflowTermination::cancelled());
                }
                return Ok(InstantPayoutOutcome::Rejected { reason });
            }
        }

        let order = ExchangeOrder {
            purpose_key: purpose_key.clone(),
            pair,
            from_amount: input.amount_eth,
            payout_address: input.client.wallet_address.clone(),
        };
        let ticket = match ctx.execute_activity(ChangeNow::create_exchange, order, step_options()).await {
            Ok(ticket) => ticket,
            Err(refused) => {
                let reason = format!("ChangeNow refused the exchange: {}", root_cause(&refused));
                record(ctx, input.payment_id, InstantPayoutStep::Failed { reason: reason.clone() }).await?;
                return Err(ApplicationFailure::non_retryable(reason).into());
            }
        };
        record(ctx, input.payment_id, InstantPayoutStep::ExchangeCreated { exchange_id: ticket.exchange_id.clone() }).await?;

        let transfer = TransferOrder {
            purpose_key: purpose_key.clone(),
            asset: ChainAsset::Eth,
            to: ticket.payin_address.clone(),
            amount: input.amount_eth,
        };
        // Errors reaching here are final (the rest are retried inside the activity): record them.
        let sent = match ctx.execute_activity(Ethereum::send_transfer, transfer, step_options()).await {
            Ok(_) => match wait_until_confirmed(ctx, &purpose_key, TransferWait::STANDARD).await {
                Ok(TransferEnd::Confirmed { tx_hash }) => Ok(tx_hash),
                Ok(TransferEnd::NotSent { reason }) => Err(reason),
                Err(e) => Err(e.to_string()),
            },
            Err(e) => Err(root_cause(&e)),
        };
        let payin_tx_hash = match sent {
            Ok(hash) => hash,
            Err(e) => {
                let reason = format!("the ETH transfer to exchange {} did not complete: {e}", ticket.exchange_id);
                record(ctx, input.payment_id, InstantPayoutStep::Failed { reason: reason.clone() }).await?;
                return Err(ApplicationFailure::non_retryable(reason).into());
            }
        };
        record(ctx, input.payment_id, InstantPayoutStep::Sent { payin_tx_hash: payin_tx_hash.clone() }).await?;

        let last = wait_until_final(ctx, &ticket.exchange_id).await?;
        match last.status {
            ExchangeStatus::Finished => {
                // `wait_until_final` only returns `finished` together with its `amountTo`.
                let amount_received = last.amount_to.unwrap_or_default();
                let step = InstantPayoutStep::Completed { amount_received, payout_hash: last.payout_hash.clone() };
                record(ctx, input.payment_id, step).await?;
                Ok(InstantPayoutOutcome::Completed {
                    exchange_id: ticket.exchange_id,
                    payin_tx_hash,
                    amount_sent_eth: input.amount_eth,
                    amount_received,
                    payout_currency: input.client.payout_currency,
                    payout_hash: last.payout_hash,
                })
            }
            ExchangeStatus::Refunded => {
                // Counted only from ChangeNow's senders, for the amount sent, and only once.
                let seen = match &last.refund_hash {
                    Some(tx_hash) => {
                        let query = IncomingTransferQuery { tx_hash: tx_hash.clone(), asset: ChainAsset::Eth }
                            .refund_credited_to(format!("instant_refund:{}", input.payment_id), input.amount_eth);
                        Some(
                            ctx.execute_activity(Ethereum::find_incoming_transfer, query, step_options()).await.map_err(|e| root_cause(&e)),
                        )
                    }
                    None => None,
                };
                let (reason, refund_amount) = match seen {
                    Some(Ok(back)) => {
                        (format!("exchange {} was refunded; {} ETH came back on chain", ticket.exchange_id, back.amount), Some(back.amount))
                    }
                    Some(Err(why)) => (format!("exchange {} was refunded, but its refund does not count: {why}", ticket.exchange_id), None),
                    None => (format!("exchange {} was refunded but ChangeNow gave no refund hash", ticket.exchange_id), None),
                };
                let step = InstantPayoutStep::Refunded { reason: reason.clone(), refund_hash: last.refund_hash, refund_amount };
                record(ctx, input.payment_id, step).await?;
                Err(ApplicationFailure::non_retryable(reason).into())
            }
            status => {
                let reason = format!("exchange {} ended '{status}'; the ETH sent stays with ChangeNow's support", ticket.exchange_id);
                record(ctx, input.payment_id, InstantPayoutStep::Failed { reason: reason.clone() }).await?;
                Err(ApplicationFailure::non_retryable(reason).into())
            }
        }
    }

    /// An operator approves the payout (its payment id) this run holds for approval.
    #[signal(name = "approve")]
    pub fn approve(&mut self, _ctx: &mut SyncWorkflowContext<Self>, payment_id: i64) {
        self.decide(payment_id, Ok(()));
    }

    /// An operator rejects the payout this run holds for approval: it ends `rejected`, unsent.
    #[signal(name = "reject")]
    pub fn reject(&mut self, _ctx: &mut SyncWorkflowContext<Self>, rejection: InstantRejection) {
        let reason = if rejection.reason.trim().is_empty() { "no reason given".to_owned() } else { rejection.reason.trim().to_owned() };
        self.decide(rejection.payment_id, Err(reason));
    }
}

/// `db.gate_instant_payout`, then, when the payout is held, the wait for an operator's decision
/// and its record. `Ok(Err(reason))`: rejected, nothing may be sent.
async fn pass_the_limits(ctx: &mut WorkflowContext<InstantPayoutWorkflow>, payment_id: i64) -> WorkflowResult<Result<(), String>> {
    let reason = match ctx.execute_activity(InstantPayoutLedger::gate_instant_payout, payment_id, step_options()).await? {
        InstantPayoutGate::Clear => return Ok(Ok(())),
        // Rejected in an earlier run of this payout.
        InstantPayoutGate::Rejected { reason } => return Ok(Err(reason)),
        InstantPayoutGate::AwaitingApproval { reason } => reason,
    };
    ctx.set_current_details(format!("payment {payment_id} awaits approval ({reason}); waiting for `approve` or `reject`"));
    let cancellation = ctx.cancellation_token();
    temporalio_sdk::workflows::select! {
        _ = ctx.wait_condition(|s: &InstantPayoutWorkflow| s.decision_on(payment_id).is_some()) => {}
        _ = cancellation.cancelled() => {}
    };
    let decision = if ctx.cancellation_token().is_cancelled() {
        let why = ctx.cancellation_token().reason().unwrap_or_default();
        Err(format!("the run was cancelled while waiting for approval{}{why}", if why.is_empty() { "" } else { ": " }))
    } else {
        ctx.state(|s| s.decision_on(payment_id)).unwrap_or(Ok(())).map_err(|reason| format!("rejected by an operator: {reason}"))
    };
    let step = match &decision {
        Ok(()) => InstantPayoutStep::Approved,
        Err(reason) => InstantPayoutStep::Rejected { reason: reason.clone() },
    };
    // Recorded even while the run is being cancelled: a rejection must be seen.
    let mut options = step_options();
    options.cancellation_token = Some(WorkflowCancellationToken::new());
    let transition = InstantPayoutTransition { payment_id, step };
    ctx.execute_activity(InstantPayoutLedger::record_instant_payout_step, transition, options).await?;
    ctx.set_current_details(match &decision {
        Ok(()) => format!("payment {payment_id} approved"),
        Err(reason) => format!("payment {payment_id} rejected: {reason}"),
    });
    Ok(decision)
}

async fn record(ctx: &mut WorkflowContext<InstantPayoutWorkflow>, payment_id: i64, step: InstantPayoutStep) -> WorkflowResult<()> {
    let transition = InstantPayoutTransition { payment_id, step };
    ctx.execute_activity(InstantPayoutLedger::record_instant_payout_step, transition, step_options()).await?;
    Ok(())
}
