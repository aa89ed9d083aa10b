//! NOWPayments' payments with a deposit: `POST /v1/payment` hands out a fresh pay address on the
//! local chain, ETH arriving there moves the record `waiting -> confirming`, and one step later,
//! once the treasury has forwarded the outcome to the hot wallet, `finished`. Each change is
//! announced by an IPN (see [`crate::ipn`]). This module is the bookkeeping only: no I/O, so the
//! lifecycle can be tested without a chain.

use activities::{changenow::amount, nowpayments::api::PaymentRecord};
use alloy::primitives::Address;
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};

/// NOWPayments' fee on a payment, in percent of what arrived.
pub const FEE_PERCENT: Decimal = Decimal::from_parts(5, 0, 0, false, 1);
/// NOWPayments quotes ETH pay amounts to 8 decimals.
const PAY_AMOUNT_DECIMALS: u32 = 8;
/// Wei: the finest ETH amount the chain can carry.
const ETH_DECIMALS: u32 = 18;

/// The create-payment body NOWPayments documents (the fields the sandbox uses).
#[derive(Debug, Clone, Deserialize)]
pub struct CreatePayment {
    #[serde(with = "amount::required")]
    pub price_amount: Decimal,
    pub price_currency: String,
    pub pay_currency: String,
    #[serde(default)]
    pub order_id: Option<String>,
    #[serde(default)]
    pub order_description: Option<String>,
    #[serde(default)]
    pub ipn_callback_url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CreateError {
    #[error("price_amount must be positive")]
    NonPositivePrice,
    #[error("price_currency {0} is not supported by the sandbox (usd only)")]
    PriceCurrency(String),
    #[error("pay_currency {0} is not supported by the sandbox (eth only)")]
    PayCurrency(String),
    #[error("the market has no eth price")]
    NoEthPrice,
}

/// What the sandbox remembers beside a created payment's record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flow {
    pub pay_address: Address,
    pub ipn_callback_url: Option<String>,
    /// When the outcome is due to be forwarded (set by the deposit). Not kept across restarts:
    /// a restored `confirming` payment is forwarded at once.
    #[serde(skip)]
    pub forward_due: Option<Instant>,
    /// A forward is being carried out: not handed out twice.
    #[serde(skip)]
    pub forwarding: bool,
}

/// A transfer of a payment's outcome from the treasury to the hot wallet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forward {
    pub payment_id: i64,
    pub amount: Decimal,
}

/// What arrives in the hot wallet for `actually_paid`: the fee taken, rounded down to the wei.
pub fn outcome_of(actually_paid: Decimal) -> Decimal {
    let kept = actually_paid * (Decimal::ONE_HUNDRED - FEE_PERCENT) / Decimal::ONE_HUNDRED;
    kept.round_dp_with_strategy(ETH_DECIMALS, RoundingStrategy::ToZero)
}

fn timestamp() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The record of a new payment, priced at `eth_usd`.
pub fn new_record(
    payment_id: i64,
    request: &CreatePayment,
    pay_address: Address,
    eth_usd: Option<Decimal>,
) -> Result<PaymentRecord, CreateError> {
    let price_currency = request.price_currency.trim().to_ascii_lowercase();
    let pay_currency = request.pay_currency.trim().to_ascii_lowercase();
    if request.price_amount <= Decimal::ZERO {
        return Err(CreateError::NonPositivePrice);
    }
    if price_currency != "usd" {
        return Err(CreateError::PriceCurrency(request.price_currency.clone()));
    }
    if pay_currency != "eth" {
        return Err(CreateError::PayCurrency(request.pay_currency.clone()));
    }
    let eth_usd = eth_usd.filter(|p| *p > Decimal::ZERO).ok_or(CreateError::NoEthPrice)?;
    let pay_amount = (request.price_amount / eth_usd).round_dp(PAY_AMOUNT_DECIMALS);
    let now = timestamp();
    Ok(PaymentRecord {
        payment_id,
        payment_status: "waiting".into(),
        pay_address: Some(pay_address.to_checksum(None)),
        price_amount: request.price_amount,
        price_currency,
        pay_amount: Some(pay_amount),
        actually_paid: Some(Decimal::ZERO),
        pay_currency: Some(pay_currency),
        order_id: request.order_id.clone(),
        order_description: request.order_description.clone(),
        outcome_amount: None,
        outcome_currency: None,
        created_at: Some(now.clone()),
        updated_at: Some(now),
    })
}

/// The record once ETH arrived: `confirming`, with what arrived.
pub fn confirming(record: &mut PaymentRecord, actually_paid: Decimal) {
    record.payment_status = "confirming".into();
    record.actually_paid = Some(actually_paid);
    record.updated_at = Some(timestamp());
}

/// The record once the outcome is in the hot wallet: `finished`.
pub fn finished(record: &mut PaymentRecord, outcome: Decimal) {
    record.payment_status = "finished".into();
    record.outcome_amount = Some(outcome);
    record.outcome_currency = Some("eth".into());
    record.updated_at = Some(timestamp());
}

/// The forwards due at `now`, marked as being carried out.
pub fn take_due<'a>(
    flows: impl Iterator<Item = (&'a i64, &'a mut Flow)>,
    records: &std::collections::BTreeMap<i64, PaymentRecord>,
    now: Instant,
) -> Vec<Forward> {
    let mut due = Vec::new();
    for (id, flow) in flows {
        let Some(record) = records.get(id) else { continue };
        let ready = record.payment_status == "confirming" && !flow.forwarding && flow.forward_due.is_none_or(|at| at <= now);
        if ready {
            flow.forwarding = true;
            due.push(Forward { payment_id: *id, amount: outcome_of(record.actually_paid.unwrap_or_default()) });
        }
    }
    due
}

/// The next payment id: increasing, and never one already handed out (ids start at the clock in
/// microseconds, so two sandboxes' ids, as the engine's workflow ids, do not meet).
pub fn next_payment_id(last: i64) -> i64 {
    (last + 1).max(chrono::Utc::now().timestamp_micros() / 100)
}

/// A step after the deposit.
pub fn due_after(now: Instant, step_delay: Duration) -> Option<Instant> {
    Some(now + step_delay)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;
    use std::collections::BTreeMap;

    fn request(pay_currency: &str) -> CreatePayment {
        serde_json::from_str(&format!(
            r#"{{"price_amount": 170.1, "price_currency": "USD", "pay_currency": "{pay_currency}", "order_id": "PGP-1|-1009", "ipn_callback_url": "http://x/ipn"}}"#
        ))
        .unwrap()
    }

    #[test]
    fn prices_in_eth_to_eight_decimals_and_refuses_other_coins() {
        let record = new_record(7, &request("eth"), Address::ZERO, Some(dec!(3000))).unwrap();
        assert_eq!(record.pay_amount, Some(dec!(0.0567)));
        let odd = CreatePayment { price_amount: dec!(100), ..request("eth") };
        assert_eq!(new_record(7, &odd, Address::ZERO, Some(dec!(3000))).unwrap().pay_amount, Some(dec!(0.03333333)));
        assert_eq!((record.payment_status.as_str(), record.price_currency.as_str()), ("waiting", "usd"));
        assert_eq!(new_record(7, &request("btc"), Address::ZERO, Some(dec!(3000))), Err(CreateError::PayCurrency("btc".into())));
        assert_eq!(new_record(7, &request("eth"), Address::ZERO, None), Err(CreateError::NoEthPrice));
    }

    #[test]
    fn the_outcome_is_what_arrived_less_half_a_percent_rounded_down_to_the_wei() {
        assert_eq!(outcome_of(dec!(0.0567)), dec!(0.0564165));
        assert_eq!(outcome_of(dec!(0.000000000000000001)), dec!(0));
        assert_eq!(outcome_of(dec!(0.123456789012345679)), dec!(0.122839505067283950));
    }

    #[test]
    fn a_confirming_payment_is_forwarded_once_when_due() {
        let now = Instant::now();
        let mut record = new_record(7, &request("eth"), Address::ZERO, Some(dec!(3000))).unwrap();
        confirming(&mut record, dec!(0.0567));
        let records = BTreeMap::from([(7, record)]);
        let mut flows = BTreeMap::from([(
            7,
            Flow {
                pay_address: Address::ZERO,
                ipn_callback_url: None,
                forward_due: due_after(now, Duration::from_secs(1)),
                forwarding: false,
            },
        )]);
        assert!(take_due(flows.iter_mut(), &records, now).is_empty());
        let later = now + Duration::from_secs(1);
        assert_eq!(take_due(flows.iter_mut(), &records, later), vec![Forward { payment_id: 7, amount: dec!(0.0564165) }]);
        assert!(take_due(flows.iter_mut(), &records, later).is_empty(), "handed out twice");
    }

    #[test]
    fn payment_ids_only_grow() {
        let first = next_payment_id(0);
        assert!(first > 0);
        assert_eq!(next_payment_id(i64::MAX / 2), i64::MAX / 2 + 1);
    }
}
