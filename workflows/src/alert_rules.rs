//! `AlertRulesWorkflow`: tells operators what needs them.
//!
//! Trigger: the Temporal Schedule `alert-rules` (every minute, overlapping runs skipped;
//! `starter schedules apply`).
//!
//! Steps: reads the settlement stablecoin's price (`changenow.stablecoin_usd_price`) and the hot
//! wallet's balances (`ethereum.read_hot_wallet_balances`), either of which may be unavailable;
//! evaluates every rule against the ledger (`db.evaluate_alert_rules`): stablecoin depeg beyond
//! 2 %, a client over its threshold for more than 7 days, the pending pool waiting too long, the
//! hot wallet below the gas its open work needs, the over-threshold query slower than 500 ms, and
//! the closing of failed-batch and approval alerts whose batch moved on, plus a daily digest of
//! open warnings; then delivers every undelivered alert to `ALERT_WEBHOOK_URL`
//! (`alerts.deliver_to_webhook`).
//!
//! Guarantees: one open alert per condition however many runs see it; a cleared condition closes
//! its alert; a reading that failed skips its rule (never closes its alert); an alert is marked
//! delivered only after the receiver took it, so a receiver that is down gets it later. Failed
//! batches, stranded batches and transfers past their deadline are alerted where they happen
//! (the failure steps, the payout sweep, the transfer wait) and delivered here.

use crate::activity_definitions::{AlertDeliveryReport, AlertRules, AlertRulesInput, AlertRulesReport, ChangeNow, Ethereum};
use crate::steps::step_retry_policy;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use temporalio_common::ActivityCloseTimeouts;
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{ActivityOptions, WorkflowContext, WorkflowResult};

pub const SCHEDULE_ID: &str = "alert-rules";
/// The stablecoin watched for a depeg: USDT, the default settlement coin, priced against USDC
/// (a round trip cannot tell which of the two moved, so USDC is taken as the dollar).
pub const SETTLEMENT_STABLECOIN: &str = "usdt";
pub const DEFAULT_OVER_THRESHOLD_DAYS: u32 = 7;
pub const DEFAULT_POOL_MAX_WAIT_MINUTES: u32 = 6 * 60;
/// A receiver that is down is retried with backoff for this long, then by the next minute's run.
const DELIVERY_GIVE_UP: Duration = Duration::from_secs(15);

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertRulesWorkflowInput {
    #[serde(default)]
    pub pool_max_wait_minutes: Option<u32>,
    #[serde(default)]
    pub over_threshold_days: Option<u32>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertRulesOutcome {
    pub rules: AlertRulesReport,
    pub price_read: bool,
    pub wallet_read: bool,
    /// `None`: delivery failed this run (the receiver is down); the next run tries again.
    pub delivery: Option<AlertDeliveryReport>,
}

#[workflow]
#[derive(Default)]
pub struct AlertRulesWorkflow;

#[workflow_methods]
impl AlertRulesWorkflow {
    #[run(name = "AlertRulesWorkflow")]
    pub async fn run(ctx: &mut WorkflowContext<Self>, input: AlertRulesWorkflowInput) -> WorkflowResult<AlertRulesOutcome> {
        let price = ctx.execute_activity(ChangeNow::stablecoin_usd_price, SETTLEMENT_STABLECOIN.to_owned(), reading_options()).await.ok();
        let wallet = ctx.execute_activity(Ethereum::read_hot_wallet_balances, (), reading_options()).await.ok();
        let rules_input = AlertRulesInput {
            stablecoin_price: price,
            hot_wallet: wallet,
            over_threshold_days: input.over_threshold_days.unwrap_or(DEFAULT_OVER_THRESHOLD_DAYS),
            pool_max_wait_minutes: input.pool_max_wait_minutes.unwrap_or(DEFAULT_POOL_MAX_WAIT_MINUTES),
        };
        let (price_read, wallet_read) = (rules_input.stablecoin_price.is_some(), rules_input.hot_wallet.is_some());
        let rules = ctx.execute_activity(AlertRules::evaluate_alert_rules, rules_input, step_options(Duration::from_secs(60))).await?;
        let delivery = ctx.execute_activity(AlertRules::deliver_to_webhook, (), step_options(DELIVERY_GIVE_UP)).await.ok();
        Ok(AlertRulesOutcome { rules, price_read, wallet_read, delivery })
    }
}

/// A reading is worth a few quick tries; after that its rule waits for the next minute.
fn reading_options() -> ActivityOptions {
    step_options(Duration::from_secs(20))
}

/// Retried with backoff within `give_up`, which keeps the run inside its minute.
fn step_options(give_up: Duration) -> ActivityOptions {
    ActivityOptions::with_close_timeouts(ActivityCloseTimeouts::ScheduleAndStartToClose {
        schedule_to_close: give_up,
        start_to_close: give_up.min(Duration::from_secs(20)),
    })
    .retry_policy(step_retry_policy())
    .build()
}
