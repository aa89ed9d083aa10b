//! `MicroBatchConversionWorkflow`: converts the pending pool of threshold payments from ETH to
//! USDT through ChangeNow, one bounded batch after another, and splits the USDT each batch
//! received back over its payments exactly.
//!
//! Trigger: the Temporal Schedule `micro-batch-conversion` (every 15 min by default, overlapping
//! runs skipped; `starter schedules apply` creates it), or `starter schedules trigger`.
//!
//! Steps, for each batch (at most [`MAX_BATCHES_PER_RUN`] per run; the next run goes on):
//! 1. `db.claim_conversion_pool`: reads the threshold in force (`settings.micro_batch_threshold_usd`,
//!    changed at run time with `starter threshold set`) and the pool's totals. Below it the run
//!    ends. At or above it, the `batch_conversions` row is created and the oldest pending rows,
//!    at most [`MAX_ROWS_PER_BATCH`], move to `swapping` with the batch id in one transaction:
//!    two runs never claim one row. History carries the batch's id, totals and row count, never
//!    its rows (a 40,000-row pool would exceed Temporal's payload limit).
//! 2. `changenow.check_exchange_range` for eth -> usdt (ERC-20). Below the minimum the batch is
//!    released (rows back to `pending`) to grow until a later run; above the maximum
//!    `db.limit_conversion_batch` returns its newest rows to the pool until it fits.
//! 3. `changenow.create_exchange` to the hot wallet, `ethereum.send_transfer` of the rows' actual
//!    ETH, then polling until `finished`, as for instant payouts. A transfer still unconfirmed
//!    after its deadline (2 h) is recorded sent-unconfirmed with an alert and waited for (it can
//!    still land, and every later nonce waits behind it anyway); one that reverted or was
//!    cancelled at its nonce fails the batch, and its rows return to the pool.
//! 4. The USDT actually received is read from the hot wallet's on-chain USDT transfer
//!    (`ethereum.find_incoming_transfer` of the payout hash), not taken on ChangeNow's word.
//! 5. `db.complete_conversion` splits it over the rows by the ETH each brought (the pure
//!    [`crate::domain::split_proportionally`]: rounded down to USDT's 6 decimals, the rest to the
//!    last row) and records the shares.
//! 6. Every payout group now over its client's threshold gets a `ClientPayoutWorkflow` started
//!    at once (a child that outlives this run; one per group at a time).
//!
//! Guarantees. Batch ids derive from the workflow id and the batch's place in the run, and the
//! exchange and transfer use the purpose key `conversion-{batch_id}`: a worker killed mid-batch,
//! or a run reset or restarted under the same workflow id, finds its batch claimed and resumes
//! it (one exchange, one transaction), or skips it if it has ended. Every failure after the
//! claim goes through `db.release_conversion`: the batch `failed` with its reason and an alert.
//! That step, not this workflow, decides whether the rows go back to `pending`, from what
//! Postgres holds: only while their ETH is provably in the hot wallet (no outbox intent for the
//! batch, or a refund of the full amount seen on chain). Otherwise they stay `swapping` under
//! the failed batch for `starter conversion resume` or `return-rows`. Every step gives up after
//! a bounded time ([`crate::steps::STEP_GIVE_UP`]), so a run always ends.

use crate::{
    activity_definitions::{
        conversion_purpose_key, BatchLimit, ChangeNow, ConversionClaim, ConversionClaimRequest, ConversionLedger, ConvertedBatch, DueQuery,
        Ethereum, ExchangeOrder, FailedBatch, IncomingTransferQuery, SeenRefund, TransferOrder,
    },
    domain::{ChainAsset, ExchangePair, ExchangeStatus, RangeVerdict, Stablecoin, SETTLEMENT_CURRENCY},
    payout_starts::start_due_payouts,
    steps::{failure_step_options, root_cause, step_options, wait_until_confirmed, wait_until_final, TransferEnd, TransferWait},
};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use temporalio_common::error::{ActivityExecutionError, ApplicationFailure};
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{WorkflowContext, WorkflowResult};

pub const SCHEDULE_ID: &str = "micro-batch-conversion";
/// Rows per batch: the claim and the split are each one statement over at most this many rows
/// (a fraction of a second), and a backlog converts in a few batches rather than one huge one.
pub const MAX_ROWS_PER_BATCH: i64 = 10_000;
/// A backlog converts batch after batch in one run, up to this many (200,000 rows); the next
/// scheduled run goes on. Each batch adds a few dozen history events.
pub const MAX_BATCHES_PER_RUN: u32 = 20;
/// Runs recorded before this patch converted one batch and ended.
const BATCHES_IN_A_LOOP_PATCH: &str = "conversion-batches-in-a-loop";

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MicroBatchConversionInput {
    /// Rows per batch; [`MAX_ROWS_PER_BATCH`] when absent (the schedule's runs).
    #[serde(default)]
    pub max_rows_per_batch: Option<i64>,
    /// How long the ETH transfer may take before it is recorded sent-unconfirmed;
    /// [`TransferWait::STANDARD`]'s 2 hours when absent (the schedule's runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transfer_deadline_secs: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum MicroBatchConversionOutcome {
    BelowThreshold {
        pool_usd: Decimal,
        threshold_usd: Decimal,
        pending_rows: i64,
    },
    BelowExchangeMinimum {
        batch_id: String,
        pool_eth: Decimal,
        minimum_eth: Decimal,
    },
    /// One or more batches converted, in order.
    Converted {
        batches: Vec<BatchConverted>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchConverted {
    pub batch_id: String,
    pub rows: i64,
    pub eth_sent: Decimal,
    pub usdt_received: Decimal,
    pub exchange_id: String,
}

/// The id of the run's batch number `sequence`: derived from its workflow id (a business id,
/// the same for every retry, reset or restart of the run), never from a run id. The first
/// batch keeps the id runs had before batches were bounded.
pub fn batch_id_for(workflow_id: &str, sequence: u32) -> String {
    let name = match sequence {
        0 => format!("payout-engine:{workflow_id}"),
        n => format!("payout-engine:{workflow_id}#batch-{n}"),
    };
    uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, name.as_bytes()).to_string()
}

#[workflow]
#[derive(Default)]
pub struct MicroBatchConversionWorkflow;

#[workflow_methods]
impl MicroBatchConversionWorkflow {
    #[run(name = "MicroBatchConversionWorkflow")]
    pub async fn run(ctx: &mut WorkflowContext<Self>, input: MicroBatchConversionInput) -> WorkflowResult<MicroBatchConversionOutcome> {
        let max_rows = input.max_rows_per_batch.unwrap_or(MAX_ROWS_PER_BATCH);
        let transfer_wait =
            input.transfer_deadline_secs.map_or(TransferWait::STANDARD, |secs| TransferWait::with_deadline(Duration::from_secs(secs)));
        let mut converted = Vec::new();
        for sequence in 0..MAX_BATCHES_PER_RUN {
            if sequence > 0 && !ctx.patched(BATCHES_IN_A_LOOP_PATCH) {
                break;
            }
            let batch_id = batch_id_for(ctx.workflow_id(), sequence);
            let request = ConversionClaimRequest { batch_id: batch_id.clone(), max_rows, workflow_id: Some(ctx.workflow_id().to_owned()) };
            let claim = ctx.execute_activity(ConversionLedger::claim_conversion_pool, request, step_options()).await?;
            let batch = match claim {
                ConversionClaim::BelowThreshold { pool_usd, threshold_usd, pending_rows, .. } => {
                    if converted.is_empty() {
                        return Ok(MicroBatchConversionOutcome::BelowThreshold { pool_usd, threshold_usd, pending_rows });
                    }
                    break;
                }
                // A reset or restarted run: this batch ended under an earlier run.
                ConversionClaim::Ended { .. } => continue,
                ConversionClaim::Claimed { total_eth, row_count, resumed, coin, .. } => {
                    ClaimedBatch { batch_id, total_eth, row_count, resumed, coin }
                }
            };
            match convert(ctx, &batch, transfer_wait).await {
                Ok(BatchEnd::Converted(done)) => {
                    converted.push(done);
                    // Pay at once every group this batch pushed over its client's threshold. The
                    // id is the group's: a payout already running for it is skipped.
                    start_due_payouts(ctx, DueQuery::default()).await?;
                }
                Ok(BatchEnd::BelowMinimum { minimum }) => {
                    let reason =
                        format!("{} ETH is below ChangeNow's minimum of {minimum} ETH; the rows wait for a bigger pool", batch.total_eth);
                    record_failure(ctx, &batch, BatchFailure::before_exchange(reason)).await?;
                    if converted.is_empty() {
                        return Ok(MicroBatchConversionOutcome::BelowExchangeMinimum {
                            batch_id: batch.batch_id,
                            pool_eth: batch.total_eth,
                            minimum_eth: minimum,
                        });
                    }
                    break;
                }
                Err(failure) => {
                    let reason = failure.reason.clone();
                    record_failure(ctx, &batch, failure).await?;
                    return Err(ApplicationFailure::non_retryable(reason).into());
                }
            }
        }
        Ok(MicroBatchConversionOutcome::Converted { batches: converted })
    }
}

struct ClaimedBatch {
    batch_id: String,
    total_eth: Decimal,
    row_count: i64,
    resumed: bool,
    /// The stablecoin it converts into, fixed when it was claimed.
    coin: Stablecoin,
}

enum BatchEnd {
    Converted(BatchConverted),
    BelowMinimum { minimum: Decimal },
}

/// Why a batch failed, with what the failure step needs to decide about its rows.
struct BatchFailure {
    reason: String,
    exchange_id: Option<String>,
    refund: Option<SeenRefund>,
}

impl BatchFailure {
    fn before_exchange(reason: String) -> Self {
        Self { reason, exchange_id: None, refund: None }
    }

    fn of_exchange(exchange_id: &str, reason: String) -> Self {
        Self { reason, exchange_id: Some(exchange_id.to_owned()), refund: None }
    }
}

/// `context: root cause` of a failed step.
fn failed_step(context: &str, error: &ActivityExecutionError) -> String {
    format!("{context}: {}", root_cause(error))
}

/// One claimed batch from the range check to its split. Every error comes back as a
/// [`BatchFailure`] for the failure step; none leaves the batch `swapping` unrecorded.
async fn convert(
    ctx: &mut WorkflowContext<MicroBatchConversionWorkflow>,
    batch: &ClaimedBatch,
    transfer_wait: TransferWait,
) -> Result<BatchEnd, BatchFailure> {
    let pair = ExchangePair::new((SETTLEMENT_CURRENCY, SETTLEMENT_CURRENCY), (batch.coin.as_str(), batch.coin.network()));
    let (mut total_eth, mut rows) = (batch.total_eth, batch.row_count);
    // A resumed batch was judged when it was claimed, and its ETH may have left: it goes on as
    // it is, whatever ChangeNow's range says now.
    if !batch.resumed {
        let range = ctx
            .execute_activity(ChangeNow::check_exchange_range, pair.clone(), step_options())
            .await
            .map_err(|e| BatchFailure::before_exchange(failed_step(&format!("ChangeNow's range for {pair}"), &e)))?;
        match RangeVerdict::judge(total_eth, range.min_amount, range.max_amount) {
            RangeVerdict::Within => {}
            RangeVerdict::BelowMinimum { minimum } => return Ok(BatchEnd::BelowMinimum { minimum }),
            RangeVerdict::AboveMaximum { maximum } => {
                let limit = BatchLimit { batch_id: batch.batch_id.clone(), max_eth: maximum };
                let limited = ctx
                    .execute_activity(ConversionLedger::limit_conversion_batch, limit, step_options())
                    .await
                    .map_err(|e| BatchFailure::before_exchange(failed_step("limiting the batch to ChangeNow's maximum", &e)))?;
                if limited.row_count == 0 {
                    let reason = format!("the oldest pending payment alone is above ChangeNow's maximum of {maximum} ETH");
                    return Err(BatchFailure::before_exchange(reason));
                }
                (total_eth, rows) = (limited.total_eth, limited.row_count);
            }
        }
    }

    let purpose_key = conversion_purpose_key(&batch.batch_id);
    let hot_wallet = ctx
        .execute_activity(Ethereum::hot_wallet_address, (), step_options())
        .await
        .map_err(|e| BatchFailure::before_exchange(failed_step("the hot wallet's address", &e)))?;
    let order = ExchangeOrder { purpose_key: purpose_key.clone(), pair, from_amount: total_eth, payout_address: hot_wallet };
    let ticket = ctx
        .execute_activity(ChangeNow::create_exchange, order, step_options())
        .await
        .map_err(|e| BatchFailure::before_exchange(failed_step("ChangeNow refused the exchange", &e)))?;
    let exchange_id = ticket.exchange_id.clone();
    let transfer =
        TransferOrder { purpose_key: purpose_key.clone(), asset: ChainAsset::Eth, to: ticket.payin_address.clone(), amount: total_eth };
    let sent = match ctx.execute_activity(Ethereum::send_transfer, transfer, step_options()).await {
        Ok(_) => match wait_until_confirmed(ctx, &purpose_key, transfer_wait).await {
            Ok(TransferEnd::Confirmed { .. }) => Ok(()),
            // The failure step sees the intent ended without moving anything and returns the rows.
            Ok(TransferEnd::NotSent { reason }) => Err(reason),
            Err(e) => Err(e.to_string()),
        },
        Err(e) => Err(root_cause(&e)),
    };
    if let Err(e) = sent {
        return Err(BatchFailure::of_exchange(&exchange_id, format!("the ETH transfer to exchange {exchange_id} did not complete: {e}")));
    }

    let last = wait_until_final(ctx, &exchange_id).await.map_err(|e| BatchFailure::of_exchange(&exchange_id, e.to_string()))?;
    let usdt_tx_hash = match (&last.status, &last.payout_hash, &last.refund_hash) {
        (ExchangeStatus::Finished, Some(hash), _) => hash.clone(),
        (ExchangeStatus::Refunded, _, Some(refund_hash)) => {
            // Only ETH seen back on chain, in full, returns the rows to the pool.
            let query = IncomingTransferQuery { tx_hash: refund_hash.clone(), asset: ChainAsset::Eth }
                .refund_credited_to(format!("conversion_refund:{}", batch.batch_id), total_eth);
            let back = ctx
                .execute_activity(Ethereum::find_incoming_transfer, query, step_options())
                .await
                .map_err(|e| BatchFailure::of_exchange(&exchange_id, failed_step(&format!("refund {refund_hash}"), &e)))?;
            let reason = format!("exchange {exchange_id} ended 'refunded'; refund {refund_hash} returned {} ETH on chain", back.amount);
            let refund = SeenRefund { tx_hash: refund_hash.clone(), amount_eth: back.amount };
            return Err(BatchFailure { reason, exchange_id: Some(exchange_id), refund: Some(refund) });
        }
        (status, _, _) => {
            let reason =
                format!("exchange {exchange_id} ended '{status}' after the deposit; the rows stay swapping until the ETH is recovered");
            return Err(BatchFailure::of_exchange(&exchange_id, reason));
        }
    };
    let query = IncomingTransferQuery { tx_hash: usdt_tx_hash.clone(), asset: batch.coin.asset() }
        .credited_to(format!("conversion:{}", batch.batch_id));
    let received = ctx
        .execute_activity(Ethereum::find_incoming_transfer, query, step_options())
        .await
        .map_err(|e| BatchFailure::of_exchange(&exchange_id, failed_step(&format!("payout {usdt_tx_hash}"), &e)))?;
    if received.amount.is_zero() {
        let coin = batch.coin.asset().symbol();
        let reason = format!("exchange {exchange_id} reports payout {usdt_tx_hash}, but that transaction paid the hot wallet no {coin}");
        return Err(BatchFailure::of_exchange(&exchange_id, reason));
    }

    let done =
        ConvertedBatch { batch_id: batch.batch_id.clone(), exchange_id: exchange_id.clone(), usdt_tx_hash, usdt_received: received.amount };
    ctx.execute_activity(ConversionLedger::complete_conversion, done, step_options())
        .await
        .map_err(|e| BatchFailure::of_exchange(&exchange_id, failed_step("recording the split", &e)))?;
    Ok(BatchEnd::Converted(BatchConverted {
        batch_id: batch.batch_id.clone(),
        rows,
        eth_sent: total_eth,
        usdt_received: received.amount,
        exchange_id,
    }))
}

/// The failure step: the batch `failed` with its reason and an alert; the step decides about
/// its rows from the outbox and the refund.
async fn record_failure(
    ctx: &mut WorkflowContext<MicroBatchConversionWorkflow>,
    batch: &ClaimedBatch,
    failure: BatchFailure,
) -> WorkflowResult<()> {
    let failed =
        FailedBatch { batch_id: batch.batch_id.clone(), exchange_id: failure.exchange_id, reason: failure.reason, refund: failure.refund };
    ctx.execute_activity(ConversionLedger::release_conversion, failed, failure_step_options()).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_keeps_its_batch_id_and_runs_differ() {
        let id = "micro-batch-conversion-2026-11-23T11:45:00Z";
        assert_eq!(batch_id_for(id, 0), batch_id_for(id, 0));
        assert_ne!(batch_id_for(id, 0), batch_id_for("micro-batch-conversion-2026-11-23T12:00:00Z", 0));
    }

    #[test]
    fn each_batch_of_a_run_has_its_own_id_and_the_first_keeps_the_old_one() {
        let id = "micro-batch-conversion-2026-11-23T11:45:00Z";
        let legacy = uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, format!("payout-engine:{id}").as_bytes()).to_string();
        assert_eq!(batch_id_for(id, 0), legacy, "runs in flight keep their batch");
        let ids: std::collections::HashSet<_> = (0..MAX_BATCHES_PER_RUN).map(|n| batch_id_for(id, n)).collect();
        assert_eq!(ids.len(), MAX_BATCHES_PER_RUN as usize);
    }
}
