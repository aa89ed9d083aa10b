//! The alert schedule's activities: `db.evaluate_alert_rules` (raise, deduplicate and close the
//! lasting conditions), `alerts.deliver_to_webhook` (POST undelivered alerts to
//! `ALERT_WEBHOOK_URL`), and the two readings some rules need from other systems,
//! `changenow.stablecoin_usd_price` and `ethereum.hot_wallet_balances` (declared with their
//! systems). All retryable: a rule skipped this minute is evaluated the next.
#![allow(unused_variables)]

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use temporalio_macros::activity_definitions;
use temporalio_sdk::activities::ActivityError;

pub use self::alert_rules::{DeliverToWebhook, EvaluateAlertRules};

/// The settlement stablecoin's price in US dollars, as a price source reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StablecoinPrice {
    /// `usdt` or `usdc`.
    pub coin: String,
    pub usd_price: Decimal,
}

/// What the chain says about the hot wallet, in wei.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HotWalletBalances {
    pub eth_wei: Decimal,
    /// The next block's base fee, the price of the gas the open work will spend.
    pub base_fee_wei: Decimal,
    /// USDT in base units (6 decimals), `None` without `USDT_CONTRACT`.
    pub usdt_base_units: Option<Decimal>,
    /// USDC likewise, `None` without `USDC_CONTRACT`.
    #[serde(default)]
    pub usdc_base_units: Option<Decimal>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertRulesInput {
    /// `None`: the price could not be read; the depeg rule is skipped, its alert left as it is.
    pub stablecoin_price: Option<StablecoinPrice>,
    /// `None`: the chain could not be read; the hot-wallet rule is skipped.
    pub hot_wallet: Option<HotWalletBalances>,
    pub over_threshold_days: u32,
    pub pool_max_wait_minutes: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertRulesReport {
    pub raised: u32,
    pub resolved: u32,
    pub over_threshold_query_ms: u64,
    pub digest_raised: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertDeliveryReport {
    /// `false` when `ALERT_WEBHOOK_URL` is not set: alerts stay stored, listed by `starter alerts`.
    pub configured: bool,
    pub delivered: u32,
    /// Still undelivered after this call (the receiver failed or there were more than one call sends).
    pub undelivered: u32,
}

pub struct AlertRules;

#[activity_definitions]
impl AlertRules {
    /// Every rule against the ledger and the readings given; idempotent (one open alert per condition).
    #[activity(name = "db.evaluate_alert_rules")]
    pub fn evaluate_alert_rules(input: AlertRulesInput) -> Result<AlertRulesReport, ActivityError> {
        unimplemented!()
    }

    /// POSTs each undelivered alert, oldest first, and marks it delivered on a 2xx. Fails
    /// (retryably) when the receiver does not take one, so Temporal retries with backoff and the
    /// next scheduled run carries on; the receiver dedupes by `alert_id`.
    #[activity(name = "alerts.deliver_to_webhook")]
    pub fn deliver_to_webhook(unit: ()) -> Result<AlertDeliveryReport, ActivityError> {
        unimplemented!()
    }
}
