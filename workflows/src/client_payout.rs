//! `ClientPayoutWorkflow`: pays one payout group (client, wallet, currency, network) its
//! converted, unpaid USDT.
//!
//! Trigger: started at once by `MicroBatchConversionWorkflow` for every group its conversion
//! pushed over the client's threshold, with the workflow id `client-payout-{group key}`, so two
//! triggers never run two payouts of one group at the same time.
//!
//! Steps:
//! 1. `db.claim_payout_batch`: the `payout_batches` row (`processing`) and exactly the group's
//!    unpaid rows, in one statement; rows arriving later go to the next batch.
//! 2. ChangeNow's range for usdt (ERC-20) -> the client's coin; the payout is cut into equal
//!    exchanges of at most 5,000 USDT (or ChangeNow's maximum, when lower).
//! 3. Per exchange (purpose key `payout-{batch_id}-{n}`): create it to the client's wallet, send the
//!    USDT through the outbox, wait for `finished`.
//! 4. Only then `db.complete_payout_batch`: rows `is_paid_out` with `paid_out_at`, the batch
//!    `completed` with the amounts received and the hashes.
//!
//! A failure before any USDT left the wallet releases the rows (unpaid, payable by a later
//! batch); after that the rows stay with the failed batch for an operator, so no USDT is sent
//! twice. Either way the batch is `failed` with its reason and the run fails visibly.

use crate::{
    activity_definitions::{
        ChangeNow, ClaimedPayout, DueQuery, Ethereum, ExchangeOrder, PayoutClaimRequest, PayoutCompletion, PayoutFailure,
        PayoutGroup, PayoutLeg, PayoutLedger, TransferOrder,
    },
    domain::{split_into_exchanges, ChainAsset, ExchangePair, ExchangeStatus, RangeVerdict},
    instant_payout::{root_cause, step_options, wait_until_confirmed, wait_until_final},
};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use temporalio_common::error::ApplicationFailure;
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{ChildWorkflowOptions, ParentClosePolicy, WorkflowContext, WorkflowResult};

/// The largest single exchange, in USDT.
pub const MAX_EXCHANGE_USDT: Decimal = Decimal::from_parts(5000, 0, 0, false, 0);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum ClientPayoutOutcome {
    NothingToPay,
    Paid { batch_id: String, total_usdt: Decimal, exchanges: usize, amount_received: Decimal },
}

/// One workflow id per payout group, whatever triggers it.
pub fn client_payout_workflow_id(group: &PayoutGroup) -> String {
    let key = format!("{}|{}|{}|{}", group.client_id, group.wallet_address, group.payout_currency, group.payout_network);
    let hash = uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, key.as_bytes()).simple().to_string();
    format!("client-payout-{}-{}", group.client_id, &hash[..12])
}

#[workflow]
#[derive(Default)]
pub struct ClientPayoutWorkflow;

#[workflow_methods]
impl ClientPayoutWorkflow {
    #[run(name = "ClientPayoutWorkflow")]
    pub async fn run(ctx: &mut WorkflowContext<Self>, group: PayoutGroup) -> WorkflowResult<ClientPayoutOutcome> {
        // One id per run, recorded in history: replays and retried steps see the same batch.
        let batch_id = ctx.uuid4();
        let request = PayoutClaimRequest { batch_id: batch_id.clone(), group: group.clone() };
        let Some(ClaimedPayout { total_usdt, .. }) =
            ctx.execute_activity(PayoutLedger::claim_payout_batch, request, step_options()).await?
        else {
            return Ok(ClientPayoutOutcome::NothingToPay);
        };

        let pair = ExchangePair::new(("usdt", "eth"), (&group.payout_currency, &group.payout_network));
        let range = ctx.execute_activity(ChangeNow::check_exchange_range, pair.clone(), step_options()).await?;
        if let RangeVerdict::BelowMinimum { minimum } = RangeVerdict::judge(total_usdt, range.min_amount, None) {
            let reason = format!("{total_usdt} USDT is below ChangeNow's minimum of {minimum} for {pair}");
            return fail(ctx, &batch_id, reason, true).await;
        }
        let limit = range.max_amount.map_or(MAX_EXCHANGE_USDT, |max| max.min(MAX_EXCHANGE_USDT));
        let parts = split_into_exchanges(total_usdt, limit)
            .map_err(|e| ApplicationFailure::non_retryable(format!("cannot split payout {batch_id}: {e}")))?;

        let mut legs = Vec::with_capacity(parts.len());
        for (n, usdt) in parts.iter().enumerate() {
            let purpose_key = format!("payout-{batch_id}-{n}");
            let order = ExchangeOrder {
                purpose_key: purpose_key.clone(),
                pair: pair.clone(),
                from_amount: *usdt,
                payout_address: group.wallet_address.clone(),
            };
            let ticket = match ctx.execute_activity(ChangeNow::create_exchange, order, step_options()).await {
                Ok(ticket) => ticket,
                Err(e) => {
                    let reason = format!("ChangeNow refused exchange {n} of the payout: {}", root_cause(&e));
                    return fail(ctx, &batch_id, reason, legs.is_empty()).await;
                }
            };
            let transfer =
                TransferOrder { purpose_key: purpose_key.clone(), asset: ChainAsset::Usdt, to: ticket.payin_address.clone(), amount: *usdt };
            let sent = match ctx.execute_activity(Ethereum::send_transfer, transfer, step_options()).await {
                Ok(_) => wait_until_confirmed(ctx, &purpose_key).await,
                Err(e) => Err(ApplicationFailure::non_retryable(root_cause(&e)).into()),
            };
            let usdt_tx_hash = match sent {
                Ok(hash) => hash,
                Err(e) => return fail(ctx, &batch_id, format!("USDT transfer {purpose_key} did not complete: {e}"), false).await,
            };
            let last = match wait_until_final(ctx, &ticket.exchange_id).await {
                Ok(last) => last,
                Err(e) => return fail(ctx, &batch_id, e.to_string(), false).await,
            };
            if last.status != ExchangeStatus::Finished {
                let reason = format!("exchange {} ended '{}'", ticket.exchange_id, last.status);
                return fail(ctx, &batch_id, reason, false).await;
            }
            legs.push(PayoutLeg {
                exchange_id: ticket.exchange_id,
                usdt_sent: *usdt,
                usdt_tx_hash,
                amount_received: last.amount_to.unwrap_or_default(),
                payout_hash: last.payout_hash,
            });
        }
        let amount_received = legs.iter().map(|l| l.amount_received).sum();
        let exchanges = legs.len();
        let completion = PayoutCompletion { batch_id: batch_id.clone(), legs };
        ctx.execute_activity(PayoutLedger::complete_payout_batch, completion, step_options()).await?;
        Ok(ClientPayoutOutcome::Paid { batch_id, total_usdt, exchanges, amount_received })
    }
}

async fn fail(
    ctx: &mut WorkflowContext<ClientPayoutWorkflow>,
    batch_id: &str,
    reason: String,
    release_rows: bool,
) -> WorkflowResult<ClientPayoutOutcome> {
    let failure = PayoutFailure { batch_id: batch_id.to_owned(), reason: reason.clone(), release_rows };
    ctx.execute_activity(PayoutLedger::fail_payout_batch, failure, step_options()).await?;
    Err(ApplicationFailure::non_retryable(reason).into())
}

/// Starts a `ClientPayoutWorkflow` for every group `query` finds due, as a child that outlives
/// the caller; a group whose payout is already running is skipped (its workflow id is taken).
/// Returns how many were started.
pub(crate) async fn start_due_payouts<W>(ctx: &mut WorkflowContext<W>, query: DueQuery) -> WorkflowResult<usize> {
    let due = ctx.execute_activity(PayoutLedger::find_due_payout_groups, query, step_options()).await?;
    let mut started = 0;
    for group in due {
        let options = ChildWorkflowOptions::builder()
            .workflow_id(client_payout_workflow_id(&group))
            .parent_close_policy(ParentClosePolicy::Abandon)
            .build();
        if ctx.start_child_workflow(ClientPayoutWorkflow::run, group, options).await.is_ok() {
            started += 1;
        }
    }
    Ok(started)
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
}
