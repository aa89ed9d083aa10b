//! `changenow.*`: the exchange. Retryable: 429, 5xx, time-outs. Non-retryable: a request
//! ChangeNow refuses (invalid address, pair or amount), with ChangeNow's reason.
#![allow(unused_variables)]

use crate::domain::{ExchangePair, ExchangeStatus};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use temporalio_macros::activity_definitions;
use temporalio_sdk::activities::ActivityError;

pub use change_now::{CheckExchangeRange, CreateExchange, ExchangeProgress as ExchangeProgressActivity, StablecoinUsdPrice};

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
}
