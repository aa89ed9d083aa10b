//! `changenow.*`: the exchange. Retryable: 429, 5xx, time-outs. Non-retryable: a request
//! ChangeNow refuses (invalid address, pair or amount), with ChangeNow's reason.
#![allow(unused_variables)]

use crate::domain::{ExchangePair, ExchangeStatus};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use temporalio_macros::activity_definitions;
use temporalio_sdk::activities::ActivityError;

pub use change_now::{
    AwaitExchangeSettled, CheckExchangeRange, CreateExchange, ExchangeProgress as ExchangeProgressActivity, StablecoinUsdPrice,
};

/// ChangeNow's range for a pair (standard flow).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExchangeRange {
    pub min_amount: Decimal,
    pub max_amount: Option<Decimal>,
}

/// An exchange to create once for `purpose_key` (a payment, conversion or payout batch id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExchangeOrder {
    pub purpose_key: String,
    pub pair: ExchangePair,
    pub from_amount: Decimal,
    /// Where ChangeNow pays out: the client's wallet (or the hot wallet, for USDT).
    pub payout_address: String,
}

/// The stored exchange: the same answer for every retry of one purpose key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExchangeTicket {
    pub exchange_id: String,
    pub payin_address: String,
    pub from_amount: Decimal,
    pub expected_to_amount: Option<Decimal>,
}

/// ChangeNow's view of an exchange, as last polled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExchangeSnapshot {
    pub exchange_id: String,
    pub status: ExchangeStatus,
    pub amount_from: Option<Decimal>,
    pub amount_to: Option<Decimal>,
    pub payin_hash: Option<String>,
    pub payout_hash: Option<String>,
    pub refund_hash: Option<String>,
    pub refund_amount: Option<Decimal>,
}

impl ExchangeSnapshot {
    /// Final, and, when finished, with the amount sent and the payout hash: ChangeNow may report
    /// `finished` a moment before it reports what it paid.
    pub fn is_settled(&self) -> bool {
        let finished_without_amount = self.status == ExchangeStatus::Finished && (self.amount_to.is_none() || self.payout_hash.is_none());
        self.status.is_final() && !finished_without_amount
    }
}

/// One polling step: ChangeNow is asked about `exchange_id` until it is settled or
/// `budget_secs` have passed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExchangeWatch {
    pub exchange_id: String,
    pub budget_secs: u64,
}

pub struct ChangeNow;

#[activity_definitions]
impl ChangeNow {
    #[activity(name = "changenow.check_exchange_range")]
    pub fn check_exchange_range(pair: ExchangePair) -> Result<ExchangeRange, ActivityError> {
        unimplemented!()
    }

    /// Creates the exchange once per purpose key; a retry returns the stored one.
    #[activity(name = "changenow.create_exchange")]
    pub fn create_exchange(order: ExchangeOrder) -> Result<ExchangeTicket, ActivityError> {
        unimplemented!()
    }

    /// The price of `coin` (a stablecoin) in US dollars, from ChangeNow's estimates against the
    /// other stablecoin in both directions, so the exchange's fee cancels out.
    #[activity(name = "changenow.stablecoin_usd_price")]
    pub fn stablecoin_usd_price(coin: String) -> Result<super::StablecoinPrice, ActivityError> {
        unimplemented!()
    }

    /// Polls ChangeNow and stores what it says.
    #[activity(name = "changenow.exchange_progress")]
    pub fn exchange_progress(exchange_id: String) -> Result<ExchangeSnapshot, ActivityError> {
        unimplemented!()
    }

    /// Polls ChangeNow every few seconds, storing each answer and heartbeating, until the
    /// exchange is settled or the watch's budget is spent; returns the last snapshot either way.
    /// Frequent polls inside one activity, instead of an activity and a timer per poll, keep a
    /// quick exchange at one workflow task.
    #[activity(name = "changenow.await_exchange_settled")]
    pub fn await_exchange_settled(watch: ExchangeWatch) -> Result<ExchangeSnapshot, ActivityError> {
        unimplemented!()
    }
}
