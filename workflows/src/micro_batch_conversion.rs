//! `MicroBatchConversionWorkflow`: converts the pending pool of threshold payments from ETH to
//! USDT in one ChangeNow exchange, and splits the USDT received back over the payments exactly.
//!
//! Trigger: the Temporal Schedule `micro-batch-conversion` (every 15 min by default, overlapping
//! runs skipped; `starter schedules apply` creates it), or `starter schedules trigger`.
//!
//! Steps:
//! 1. `db.claim_conversion_pool`: reads the threshold in force (`settings.micro_batch_threshold_usd`,
//!    changed at run time with `starter threshold set`). Below it nothing happens and the result
//!    says so. At or above it, the `batch_conversions` row is created (with the threshold) and
//!    every pending row moves to `swapping` with the batch id, in one statement: two runs never
//!    claim one row, and rows arriving meanwhile wait for the next batch.
//! 2. `changenow.check_exchange_range` for eth -> usdt (ERC-20). Below the minimum the batch is
//!    released (rows back to `pending`) to grow until a later run.
//! 3. `changenow.create_exchange` to the hot wallet, `ethereum.send_transfer` of the rows' actual
//!    ETH, then polling until `finished`, as for instant payouts.
//! 4. The USDT actually received is read from the hot wallet's on-chain USDT transfer
//!    (`ethereum.find_incoming_transfer` of the payout hash), not taken on ChangeNow's word.
//! 5. The pure [`split_proportionally`] shares it over the rows by USD value (rounded down to
//!    USDT's 6 decimals, the rest to the last row); `db.complete_conversion` records the shares.
//! 6. Every payout group now over its client's threshold gets a `ClientPayoutWorkflow` started
//!    at once (a child that outlives this run; one per group at a time).
//!
//! Failures lose nothing and spend nothing twice: the batch is marked `failed` with its reason and
//! the run fails visibly. Its rows go back to `pending` (for a later batch) only while their ETH
//! is provably in the hot wallet: nothing was sent yet, or the refund was seen on chain. After a
//! deposit that ChangeNow failed, or any error past the broadcast, the rows stay `swapping` under
//! the failed batch for an operator: releasing them would send their ETH a second time. The batch id is derived from the workflow id, and the exchange and transfer use
//! the purpose key `conversion-{batch_id}`, so a worker killed mid-batch resumes the same batch:
//! one exchange, one transaction.

use crate::{
    activity_definitions::{
        ChangeNow, ConversionClaim, ConversionLedger, ConvertedBatch, DueQuery, Ethereum, ExchangeOrder,
        IncomingTransferQuery, ReleasedBatch, RowShare, TransferOrder,
    },
    client_payout::start_due_payouts,
    domain::{split_proportionally, ChainAsset, ExchangePair, ExchangeStatus, RangeVerdict, SETTLEMENT_CURRENCY},
    steps::{root_cause, step_options, wait_until_confirmed, wait_until_final},
};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use temporalio_common::error::ApplicationFailure;
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{WorkflowContext, WorkflowResult};

pub const SCHEDULE_ID: &str = "micro-batch-conversion";
const USDT: &str = "usdt";
const USDT_NETWORK: &str = "eth";

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MicroBatchConversionInput {}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum MicroBatchConversionOutcome {
    BelowThreshold { pool_usd: Decimal, threshold_usd: Decimal, pending_rows: i64 },
    BelowExchangeMinimum { batch_id: String, pool_eth: Decimal, minimum_eth: Decimal },
    Converted { batch_id: String, rows: usize, eth_sent: Decimal, usdt_received: Decimal, exchange_id: String },
}

/// The batch id of a run: derived from its workflow id (a business id, the same for every retry
/// of the run), never from a run id.
pub fn batch_id_for(workflow_id: &str) -> String {
    uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, format!("payout-engine:{workflow_id}").as_bytes()).to_string()
}

#[workflow]
#[derive(Default)]
pub struct MicroBatchConversionWorkflow;

#[workflow_methods]
impl MicroBatchConversionWorkflow {
    #[run(name = "MicroBatchConversionWorkflow")]
    pub async fn run(
        ctx: &mut WorkflowContext<Self>,
        _input: MicroBatchConversionInput,
    ) -> WorkflowResult<MicroBatchConversionOutcome> {
        let batch_id = batch_id_for(ctx.workflow_id());
        let claim = ctx.execute_activity(ConversionLedger::claim_conversion_pool, batch_id.clone(), step_options()).await?;
        let (total_eth, rows) = match claim {
            ConversionClaim::BelowThreshold { pool_usd, threshold_usd, pending_rows, .. } => {
                return Ok(MicroBatchConversionOutcome::BelowThreshold { pool_usd, threshold_usd, pending_rows });
            }
            ConversionClaim::Claimed { total_eth, rows, .. } => (total_eth, rows),
        };

        let pair = ExchangePair::new((SETTLEMENT_CURRENCY, SETTLEMENT_CURRENCY), (USDT, USDT_NETWORK));
        let range = ctx.execute_activity(ChangeNow::check_exchange_range, pair.clone(), step_options()).await?;
        match RangeVerdict::judge(total_eth, range.min_amount, range.max_amount) {
            RangeVerdict::Within => {}
            RangeVerdict::BelowMinimum { minimum } => {
                let reason = format!("{total_eth} ETH is below ChangeNow's minimum of {minimum} ETH; the rows wait for a bigger pool");
                end_batch(ctx, &batch_id, None, reason, true).await?;
                return Ok(MicroBatchConversionOutcome::BelowExchangeMinimum { batch_id, pool_eth: total_eth, minimum_eth: minimum });
            }
            RangeVerdict::AboveMaximum { maximum } => {
                // Rare with a threshold of tens of USD; lowering the interval keeps pools small.
                let reason = format!("{total_eth} ETH is above ChangeNow's maximum of {maximum} ETH; run conversions more often");
                end_batch(ctx, &batch_id, None, reason.clone(), true).await?;
                return Err(ApplicationFailure::non_retryable(reason).into());
            }
        }

        let purpose_key = format!("conversion-{batch_id}");
        let hot_wallet = ctx.execute_activity(Ethereum::hot_wallet_address, (), step_options()).await?;
        let order = ExchangeOrder { purpose_key: purpose_key.clone(), pair, from_amount: total_eth, payout_address: hot_wallet };
        let ticket = match ctx.execute_activity(ChangeNow::create_exchange, order, step_options()).await {
            Ok(ticket) => ticket,
            Err(refused) => {
                let reason = format!("ChangeNow refused the exchange: {}", root_cause(&refused));
                end_batch(ctx, &batch_id, None, reason.clone(), true).await?;
                return Err(ApplicationFailure::non_retryable(reason).into());
            }
        };
        let exchange_id = Some(ticket.exchange_id.clone());
        let transfer =
            TransferOrder { purpose_key: purpose_key.clone(), asset: ChainAsset::Eth, to: ticket.payin_address.clone(), amount: total_eth };
        // From the first broadcast on, the rows' ETH may have left the wallet: a failure from
        // here keeps the rows `swapping` under the failed batch unless the ETH is seen back.
        let sent = match ctx.execute_activity(Ethereum::send_transfer, transfer, step_options()).await {
            Ok(_) => wait_until_confirmed(ctx, &purpose_key).await,
            Err(e) => Err(ApplicationFailure::non_retryable(root_cause(&e)).into()),
        };
        if let Err(e) = sent {
            let reason = format!("the ETH transfer to exchange {} did not complete: {e}", ticket.exchange_id);
            end_batch(ctx, &batch_id, exchange_id, reason.clone(), false).await?;
            return Err(ApplicationFailure::non_retryable(reason).into());
        }

        let last = match wait_until_final(ctx, &ticket.exchange_id).await {
            Ok(last) => last,
            Err(e) => {
                end_batch(ctx, &batch_id, exchange_id, e.to_string(), false).await?;
                return Err(e);
            }
        };
        let usdt_tx_hash = match (&last.status, &last.payout_hash) {
            (ExchangeStatus::Finished, Some(hash)) => hash.clone(),
            (ExchangeStatus::Refunded, Some(_)) | (ExchangeStatus::Refunded, None) if last.refund_hash.is_some() => {
                // A refund is matched on chain: only ETH seen back returns the rows to the pool.
                let hash = last.refund_hash.clone().unwrap_or_default();
                let query = IncomingTransferQuery { tx_hash: hash.clone(), asset: ChainAsset::Eth };
                let back = ctx.execute_activity(Ethereum::find_incoming_transfer, query, step_options()).await?;
                let reason = format!("exchange {} ended 'refunded'; refund {hash} returned {} ETH on chain", ticket.exchange_id, back.amount);
                end_batch(ctx, &batch_id, exchange_id, reason.clone(), !back.amount.is_zero()).await?;
                return Err(ApplicationFailure::non_retryable(reason).into());
            }
            (status, _) => {
                let reason = format!(
                    "exchange {} ended '{status}' after the deposit; the rows stay swapping until the ETH is recovered",
                    ticket.exchange_id
                );
                end_batch(ctx, &batch_id, exchange_id, reason.clone(), false).await?;
                return Err(ApplicationFailure::non_retryable(reason).into());
            }
        };
        let query = IncomingTransferQuery { tx_hash: usdt_tx_hash.clone(), asset: ChainAsset::Usdt };
        let received = ctx.execute_activity(Ethereum::find_incoming_transfer, query, step_options()).await?;
        if received.amount.is_zero() {
            let reason = format!(
                "exchange {} reports payout {usdt_tx_hash}, but that transaction paid the hot wallet no USDT",
                ticket.exchange_id
            );
            end_batch(ctx, &batch_id, exchange_id, reason.clone(), false).await?;
            return Err(ApplicationFailure::non_retryable(reason).into());
        }

        let weights: Vec<Decimal> = rows.iter().map(|r| r.net_usd).collect();
        let amounts = split_proportionally(received.amount, &weights, ChainAsset::Usdt.decimals())
            .map_err(|e| ApplicationFailure::non_retryable(format!("cannot split batch {batch_id}: {e}")))?;
        let shares = rows.iter().zip(amounts).map(|(r, usdt)| RowShare { accumulation_id: r.accumulation_id, usdt }).collect();
        let converted = ConvertedBatch {
            batch_id: batch_id.clone(),
            exchange_id: ticket.exchange_id.clone(),
            usdt_tx_hash,
            usdt_received: received.amount,
            shares,
        };
        ctx.execute_activity(ConversionLedger::complete_conversion, converted, step_options()).await?;

        // Pay at once every group this conversion pushed over its client's threshold. The id is
        // the group's: a payout already running for it makes the start fail, and it is skipped.
        start_due_payouts(ctx, DueQuery::default()).await?;
        Ok(MicroBatchConversionOutcome::Converted {
            batch_id,
            rows: rows.len(),
            eth_sent: total_eth,
            usdt_received: received.amount,
            exchange_id: ticket.exchange_id,
        })
    }
}

/// Marks the batch failed with `reason`; `return_rows` only while the rows' ETH is provably in
/// the hot wallet.
async fn end_batch(
    ctx: &mut WorkflowContext<MicroBatchConversionWorkflow>,
    batch_id: &str,
    exchange_id: Option<String>,
    reason: String,
    return_rows: bool,
) -> WorkflowResult<()> {
    let released = ReleasedBatch { batch_id: batch_id.to_owned(), exchange_id, reason, return_rows };
    ctx.execute_activity(ConversionLedger::release_conversion, released, step_options()).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_keeps_its_batch_id_and_runs_differ() {
        let id = "micro-batch-conversion-2026-11-23T11:45:00Z";
        assert_eq!(batch_id_for(id), batch_id_for(id));
        assert_ne!(batch_id_for(id), batch_id_for("micro-batch-conversion-2026-11-23T12:00:00Z"));
    }
}
