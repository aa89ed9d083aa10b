//! `PaymentWorkflow`: one finished NOWPayments payment, from stored IPN to the place its net
//! amount waits for payout.
//!
//! Trigger: the webhook (or its re-driver) starts it with workflow id `payment-{payment_id}`,
//! so one payment can never have two workflows.
//!
//! Steps:
//! 1. Verify with NOWPayments: `nowpayments.get_payment` reads NOWPayments' own record of the
//!    payment (the IPN is only the trigger: a leaked IPN secret must not decide what is paid);
//!    `db.begin_verified_payment_processing` holds the stored IPN against it, keeps the record's
//!    facts, and takes a payment NOWPayments confirms as `finished` `received -> processing`. A
//!    record still in progress is asked again (every 30 s, then every 10 min, for three days);
//!    anything NOWPayments does not confirm ends `unverified` with an alert and fails the
//!    workflow (nothing is paid; `starter payment verify` asks again in a new run).
//!    NOWPayments unreachable: the read is a regular activity retried by the server with backoff
//!    for as long as it takes (the history does not grow meanwhile), alerted after a few tries.
//! 2. Take the platform fee (pure, [`PlatformFee::split`]); the percentage travels in the
//!    input, so the history records the fee that was in force when the payment arrived.
//! 3. Route by the client's strategy:
//!    - threshold: `db.record_threshold_accumulation` inserts one `pending` accumulation row;
//!    - instant: `db.record_instant_payout_handoff` marks the payment awaiting instant payout,
//!      then the child `InstantPayoutWorkflow` (`instant-payout-{payment_id}`) swaps and sends it;
//!      this workflow completes with the child's outcome (and fails when the child fails).
//!
//! A payment not priced in USD or not settled in ETH fails the workflow with a non-retryable
//! error that names the reason (visible in the Temporal UI); nothing is routed for it.
//!
//! Guarantees: each step is idempotent on the payment id, so a retried activity or a replayed
//! workflow leaves exactly one accumulation row. The steps are local activities: each is one
//! short Postgres transaction, and local activities keep the history (and so the intake rate)
//! close to that of a workflow with a single activity.

use crate::{
    activity_definitions::{
        NowPayments, PaymentLedger, PaymentVerification, PaymentVerificationLedger, RoutedPayment, RoutingReceipt, VerifiedPayment,
    },
    domain::{payment_verification::ask_again_after, FeeSplit, PayoutStrategy, PlatformFee, PRICE_CURRENCY, SETTLEMENT_CURRENCY},
    instant_payout::{instant_payout_workflow_id, InstantPayoutInput, InstantPayoutOutcome, InstantPayoutWorkflow},
};
use serde::{Deserialize, Serialize};
use std::time::Duration;
use temporalio_common::{error::ApplicationFailure, ActivityCloseTimeouts, RetryPolicy};
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{ActivityOptions, ChildWorkflowOptions, LocalActivityOptions, ParentClosePolicy, WorkflowContext, WorkflowResult};

/// Runs recorded before this patch routed instant payments without starting the child.
const INSTANT_PAYOUT_CHILD_PATCH: &str = "instant-payout-child";
/// Runs recorded before this patch routed on the IPN's word, without asking NOWPayments.
const NOWPAYMENTS_VERIFICATION_PATCH: &str = "nowpayments-verification";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentWorkflowInput {
    pub payment_id: i64,
    pub platform_fee: PlatformFee,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentWorkflowOutcome {
    pub receipt: RoutingReceipt,
    pub fee: FeeSplit,
    /// Instant clients: what the child workflow did.
    #[serde(default)]
    pub instant_payout: Option<InstantPayoutOutcome>,
}

#[workflow]
#[derive(Default)]
pub struct PaymentWorkflow;

#[workflow_methods]
impl PaymentWorkflow {
    #[run(name = "PaymentWorkflow")]
    pub async fn run(ctx: &mut WorkflowContext<Self>, input: PaymentWorkflowInput) -> WorkflowResult<PaymentWorkflowOutcome> {
        let payment = if ctx.patched(NOWPAYMENTS_VERIFICATION_PATCH) {
            let mut looks = 0;
            loop {
                looks += 1;
                let lookup = ctx.execute_activity(NowPayments::get_payment, input.payment_id, nowpayments_options()).await?;
                let ask_again = ask_again_after(looks);
                let verification = PaymentVerification { payment_id: input.payment_id, lookup, stop_waiting: ask_again.is_none() };
                let verdict = ctx
                    .execute_local_activity(
                        PaymentVerificationLedger::begin_verified_payment_processing,
                        verification,
                        ledger_step_options(),
                    )
                    .await?;
                match verdict {
                    VerifiedPayment::Confirmed(payment) => break payment,
                    VerifiedPayment::StillInProgress { .. } => {
                        ctx.timer(ask_again.unwrap_or(Duration::from_secs(600))).await;
                    }
                    VerifiedPayment::Refused { reason } => return Err(ApplicationFailure::non_retryable(reason).into()),
                }
            }
        } else {
            ctx.execute_local_activity(PaymentLedger::begin_payment_processing, input.payment_id, ledger_step_options()).await?
        };

        if !payment.price_currency.eq_ignore_ascii_case(PRICE_CURRENCY) {
            return Err(ApplicationFailure::non_retryable(format!(
                "payment {} is priced in '{}', but only {PRICE_CURRENCY} prices can be accumulated",
                payment.payment_id, payment.price_currency
            ))
            .into());
        }
        let outcome_eth = match (&payment.outcome_amount, &payment.outcome_currency) {
            (Some(amount), Some(currency)) if currency.eq_ignore_ascii_case(SETTLEMENT_CURRENCY) => *amount,
            (_, currency) => {
                return Err(ApplicationFailure::non_retryable(format!(
                    "payment {} settled in {:?}, but only {SETTLEMENT_CURRENCY} outcomes can be paid out",
                    payment.payment_id, currency
                ))
                .into())
            }
        };
        let fee = input.platform_fee.split(payment.price_amount, outcome_eth).map_err(ApplicationFailure::non_retryable)?;

        let routed = RoutedPayment {
            payment_id: payment.payment_id,
            client_id: payment.client_id.clone(),
            fee: fee.clone(),
            client: payment.client.clone(),
        };
        let receipt = match payment.client.strategy {
            PayoutStrategy::Threshold => {
                ctx.execute_local_activity(PaymentLedger::record_threshold_accumulation, routed, ledger_step_options()).await?
            }
            PayoutStrategy::Instant => {
                ctx.execute_local_activity(PaymentLedger::record_instant_payout_handoff, routed, ledger_step_options()).await?
            }
        };
        let instant_payout = if payment.client.strategy == PayoutStrategy::Instant && ctx.patched(INSTANT_PAYOUT_CHILD_PATCH) {
            let child_input = InstantPayoutInput {
                payment_id: payment.payment_id,
                client_id: payment.client_id.clone(),
                amount_eth: fee.net_eth,
                client: payment.client.clone(),
            };
            // Abandon: terminating or resetting this workflow must never kill a payout that may
            // already have sent ETH.
            let options = ChildWorkflowOptions::builder()
                .workflow_id(instant_payout_workflow_id(payment.payment_id))
                .parent_close_policy(ParentClosePolicy::Abandon)
                .build();
            let child = ctx.start_child_workflow(InstantPayoutWorkflow::run, child_input, options).await?;
            Some(child.result().await?)
        } else {
            None
        };
        Ok(PaymentWorkflowOutcome { receipt, fee, instant_payout })
    }
}

/// Database steps retry with backoff for as long as Postgres is away; errors the activities mark
/// non-retryable (unknown payment, wrong status) fail the workflow at once.
fn ledger_step_options() -> LocalActivityOptions {
    LocalActivityOptions::builder()
        .start_to_close_timeout(Duration::from_secs(15))
        .retry_policy(RetryPolicy::builder().initial_interval(Duration::from_millis(200)).maximum_interval(Duration::from_secs(30)).build())
        .build()
}

/// NOWPayments away, slow or rate-limiting: asked again with backoff, without end (nothing is
/// paid meanwhile, and nothing is lost: the payment waits `received`). A regular activity, not a
/// local one: the server keeps retrying it without the history growing, however long the
/// outage. Each request is bounded by the client's own timeout, below this attempt's.
fn nowpayments_options() -> ActivityOptions {
    ActivityOptions::with_close_timeouts(ActivityCloseTimeouts::StartToClose(Duration::from_secs(20)))
        .retry_policy(
            RetryPolicy::builder()
                .initial_interval(Duration::from_secs(1))
                .backoff_coefficient(2.0)
                .maximum_interval(Duration::from_secs(300))
                .build(),
        )
        .build()
}
