//! One simulated exchange and its lifecycle:
//!
//! ```text
//! new -> waiting -(deposit mined)-> confirming -> exchanging -> sending -(payout mined)-> finished
//!                                                            -> failed
//!                                                            -> refunded (deposit sent back on chain)
//! ```
//!
//! Each step waits `step_delay`. `amountFrom` is what actually arrived at the pay-in address;
//! `amountTo` is quoted from it, so a short deposit gives a smaller payout, as at ChangeNow.

use crate::faults::Outcome;
use activities::changenow::api::ExchangeStatusResponse;
use alloy::primitives::Address;
use rust_decimal::Decimal;
use serde::Serialize;
use std::time::{Duration, Instant};
use workflows::domain::{ExchangePair, ExchangeStatus};

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Exchange {
    pub id: String,
    #[serde(flatten)]
    pub pair: ExchangePair,
    pub expected_amount_from: Decimal,
    pub expected_amount_to: Decimal,
    pub payin_address: Address,
    pub payout_address: String,
    pub refund_address: Option<String>,
    pub status: ExchangeStatus,
    pub amount_from: Option<Decimal>,
    pub amount_to: Option<Decimal>,
    pub payin_hash: Option<String>,
    pub payout_hash: Option<String>,
    pub refund_hash: Option<String>,
    pub refund_amount: Option<Decimal>,
    pub forced_outcome: Option<Outcome>,
    /// A ChangeNow that reports a refund it never sent: with a forced refund, the exchange ends
    /// `refunded` naming this transaction, and nothing is sent (`/sim/exchanges/{id}/outcome`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reported_refund_hash: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
    #[serde(skip)]
    pub next_step_at: Instant,
    /// An on-chain payout or refund is in flight; the lifecycle waits for it.
    #[serde(skip)]
    pub chain_action_pending: bool,
}

/// What the lifecycle asks the treasury to do on chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainAction {
    Payout { exchange_id: String, coin: String, to: String, amount: Decimal },
    Refund { exchange_id: String, coin: String, to: String, amount: Decimal },
}

/// What a new exchange starts from.
pub struct NewExchange {
    pub id: String,
    pub pair: ExchangePair,
    pub expected_amount_from: Decimal,
    pub expected_amount_to: Decimal,
    pub payin_address: Address,
    pub payout_address: String,
    pub refund_address: Option<String>,
    pub forced_outcome: Option<Outcome>,
}

impl Exchange {
    /// A `new` exchange whose first step is due after `step_delay`.
    pub fn new(start: NewExchange, step_delay: Duration) -> Self {
        let now = chrono::Utc::now();
        Self {
            id: start.id,
            pair: start.pair,
            expected_amount_from: start.expected_amount_from,
            expected_amount_to: start.expected_amount_to,
            payin_address: start.payin_address,
            payout_address: start.payout_address,
            refund_address: start.refund_address,
            status: ExchangeStatus::New,
            amount_from: None,
            amount_to: None,
            payin_hash: None,
            payout_hash: None,
            refund_hash: None,
            refund_amount: None,
            forced_outcome: start.forced_outcome,
            reported_refund_hash: None,
            created_at: now,
            updated_at: now,
            next_step_at: Instant::now() + step_delay,
            chain_action_pending: false,
        }
    }

    pub fn set_status(&mut self, status: ExchangeStatus, step_delay: Duration) {
        self.status = status;
        self.updated_at = chrono::Utc::now();
        self.next_step_at = Instant::now() + step_delay;
    }

    /// The deposit the chain watcher saw.
    pub fn record_deposit(&mut self, amount: Decimal, tx_hash: String, step_delay: Duration) {
        if self.amount_from.is_some() {
            return;
        }
        self.amount_from = Some(amount);
        self.payin_hash = Some(tx_hash);
        self.set_status(ExchangeStatus::Confirming, step_delay);
    }

    /// Moves one step when its time has come. `quote` prices the deposit in the to-coin.
    pub fn advance(&mut self, now: Instant, step_delay: Duration, quote: impl Fn(Decimal) -> Option<Decimal>) -> Option<ChainAction> {
        if now < self.next_step_at || self.chain_action_pending {
            return None;
        }
        match self.status {
            ExchangeStatus::New => self.set_status(ExchangeStatus::Waiting, step_delay),
            ExchangeStatus::Confirming => self.set_status(ExchangeStatus::Exchanging, step_delay),
            ExchangeStatus::Exchanging => match self.forced_outcome {
                Some(Outcome::Stall) => {}
                Some(Outcome::Failed) => self.set_status(ExchangeStatus::Failed, step_delay),
                Some(outcome @ (Outcome::Refunded | Outcome::RefundedPartially)) => {
                    let amount = refund_of(outcome, self.amount_from?);
                    if let Some(hash) = self.reported_refund_hash.clone() {
                        self.refund_hash = Some(hash);
                        self.refund_amount = Some(amount);
                        self.set_status(ExchangeStatus::Refunded, step_delay);
                        return None;
                    }
                    let to = self.refund_address.clone()?;
                    self.chain_action_pending = true;
                    return Some(ChainAction::Refund { exchange_id: self.id.clone(), coin: self.pair.from_currency.clone(), to, amount });
                }
                None => {
                    let amount = quote(self.amount_from?)?;
                    self.amount_to = Some(amount);
                    self.set_status(ExchangeStatus::Sending, step_delay);
                    self.chain_action_pending = true;
                    return Some(ChainAction::Payout {
                        exchange_id: self.id.clone(),
                        coin: self.pair.to_currency.clone(),
                        to: self.payout_address.clone(),
                        amount,
                    });
                }
            },
            // `waiting` moves on a deposit, `sending` on the payout's receipt; the rest are final.
            _ => {}
        }
        None
    }

    /// The treasury's transaction for a payout or refund was mined.
    pub fn chain_action_done(&mut self, tx_hash: String, step_delay: Duration) {
        self.chain_action_pending = false;
        match self.status {
            ExchangeStatus::Sending => {
                self.payout_hash = Some(tx_hash);
                self.set_status(ExchangeStatus::Finished, step_delay);
            }
            _ => {
                self.refund_hash = Some(tx_hash);
                self.refund_amount = self.amount_from.map(|a| self.forced_outcome.map_or(a, |o| refund_of(o, a)));
                self.set_status(ExchangeStatus::Refunded, step_delay);
            }
        }
    }

    pub fn to_response(&self) -> ExchangeStatusResponse {
        ExchangeStatusResponse {
            id: self.id.clone(),
            status: self.status.clone(),
            expected_amount_from: Some(self.expected_amount_from),
            expected_amount_to: Some(self.expected_amount_to),
            amount_from: self.amount_from,
            amount_to: if self.status == ExchangeStatus::Finished { self.amount_to } else { None },
            payin_address: Some(self.payin_address.to_checksum(None)),
            payout_address: Some(self.payout_address.clone()),
            payin_hash: self.payin_hash.clone(),
            payout_hash: self.payout_hash.clone(),
            refund_hash: self.refund_hash.clone(),
            refund_amount: self.refund_amount,
        }
    }
}

/// What a refund sends back of a deposit of `amount`.
fn refund_of(outcome: Outcome, amount: Decimal) -> Decimal {
    match outcome {
        Outcome::RefundedPartially => (amount * Decimal::new(9, 1)).round_dp_with_strategy(18, rust_decimal::RoundingStrategy::ToZero),
        _ => amount,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    fn exchange(outcome: Option<Outcome>) -> Exchange {
        let start = NewExchange {
            id: "x1".into(),
            pair: ExchangePair::new(("eth", "eth"), ("usdt", "eth")),
            expected_amount_from: dec!(0.01),
            expected_amount_to: dec!(29.85),
            payin_address: Address::ZERO,
            payout_address: "0x70997970C51812dc3A010C7d01b50e0d17dc79C8".into(),
            refund_address: Some("0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266".into()),
            forced_outcome: outcome,
        };
        Exchange::new(start, Duration::ZERO)
    }

    fn step(x: &mut Exchange) -> Option<ChainAction> {
        x.advance(Instant::now(), Duration::ZERO, |amount| Some(amount * dec!(2985)))
    }

    #[test]
    fn a_deposit_walks_the_documented_statuses_and_pays_what_arrived() {
        let mut x = exchange(None);
        step(&mut x);
        assert_eq!(x.status, ExchangeStatus::Waiting);
        assert_eq!(step(&mut x), None, "waits for a deposit");
        x.record_deposit(dec!(0.009), "0xdeposit".into(), Duration::ZERO);
        assert_eq!(x.status, ExchangeStatus::Confirming);
        step(&mut x);
        assert_eq!(x.status, ExchangeStatus::Exchanging);
        let action = step(&mut x).expect("a payout");
        assert_eq!(x.status, ExchangeStatus::Sending);
        assert!(matches!(action, ChainAction::Payout { amount, .. } if amount == dec!(26.865)), "quoted from the deposit");
        assert_eq!(step(&mut x), None, "waits for the payout to be mined");
        x.chain_action_done("0xpayout".into(), Duration::ZERO);
        assert_eq!(x.status, ExchangeStatus::Finished);
        assert_eq!(x.to_response().amount_to, Some(dec!(26.865)));
    }

    #[test]
    fn a_forced_refund_sends_the_deposit_back() {
        let mut x = exchange(Some(Outcome::Refunded));
        step(&mut x);
        x.record_deposit(dec!(0.01), "0xdeposit".into(), Duration::ZERO);
        step(&mut x);
        let action = step(&mut x).expect("a refund");
        assert!(matches!(action, ChainAction::Refund { amount, ref coin, .. } if amount == dec!(0.01) && coin == "eth"));
        x.chain_action_done("0xrefund".into(), Duration::ZERO);
        assert_eq!(x.status, ExchangeStatus::Refunded);
        assert_eq!(x.refund_amount, Some(dec!(0.01)));
        assert_eq!(x.to_response().amount_to, None);
    }

    #[test]
    fn a_forced_failure_sends_nothing() {
        let mut x = exchange(Some(Outcome::Failed));
        step(&mut x);
        x.record_deposit(dec!(0.01), "0xdeposit".into(), Duration::ZERO);
        step(&mut x);
        assert_eq!(step(&mut x), None);
        assert_eq!(x.status, ExchangeStatus::Failed);
    }
}
