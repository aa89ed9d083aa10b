//! The soak's clients and payments, drawn from the seed, and the sender that delivers their IPNs
//! as NOWPayments would: signed, repeated, statuses out of order, and resent until answered (the
//! webhook is SIGKILLed now and then).

use super::rng::Rng;
use crate::XMR_WALLET;
use payout_starter::{
    cli::test_ipn::{self, TestIpn},
    webhook::SIGNATURE_HEADER,
};
use rust_decimal::Decimal;
use std::{
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};
use workflows::domain::PayoutStrategy;

/// The simulator's ETH price: IPNs settle at it, so amounts in ETH and USD agree.
const ETH_USD: i64 = 3000;

#[derive(Debug, Clone)]
pub struct SoakClient {
    pub client_id: String,
    pub strategy: PayoutStrategy,
    pub threshold_usd: Decimal,
}

#[derive(Debug, Clone)]
pub struct SoakPayment {
    pub payment_id: i64,
    pub client: usize,
    pub price_usd: Decimal,
    pub outcome_eth: Decimal,
    /// The statuses NOWPayments sends, in the order sent (repeats and late ones included).
    pub statuses: Vec<&'static str>,
    /// Priced below ChangeNow's minimum on purpose (instant clients: the payout is held).
    pub below_minimum: bool,
}

impl SoakPayment {
    pub fn finished(&self) -> bool {
        self.statuses.contains(&"finished")
    }
}

pub fn clients(rng: &Rng, count: usize) -> Vec<SoakClient> {
    let mut rng = rng.fork(2);
    (0..count.max(2))
        .map(|i| {
            // Both strategies whatever the seed: the first two are one of each.
            let strategy = match i {
                0 => PayoutStrategy::Instant,
                1 => PayoutStrategy::Threshold,
                _ if rng.chance(50) => PayoutStrategy::Instant,
                _ => PayoutStrategy::Threshold,
            };
            let threshold_usd = match strategy {
                PayoutStrategy::Threshold => Decimal::from(*rng.pick(&[50, 60, 80, 100])),
                PayoutStrategy::Instant => Decimal::ZERO,
            };
            SoakClient { client_id: format!("-100{:07}", 7_000_000 + i), strategy, threshold_usd }
        })
        .collect()
}

pub fn payments(rng: &Rng, clients: &[SoakClient], count: usize) -> Vec<SoakPayment> {
    let mut rng = rng.fork(3);
    (0..count)
        .map(|p| {
            let client = rng.range(0, clients.len() as u64) as usize;
            let instant = clients[client].strategy == PayoutStrategy::Instant;
            let below_minimum = instant && rng.chance(8);
            // Cents: instant payments worth a swap of their own (ChangeNow's minimum is 5 USD),
            // threshold payments small, as subscriptions are.
            let cents = match (instant, below_minimum) {
                (_, true) => rng.range(150, 450),
                (true, false) => rng.range(800, 6000),
                (false, _) => rng.range(300, 4000),
            };
            let price_usd = Decimal::new(cents as i64, 2);
            let outcome_eth = (price_usd / Decimal::from(ETH_USD)).round_dp(18);
            let statuses = if rng.chance(90) {
                let mut before: Vec<&'static str> =
                    ["waiting", "confirming", "confirmed", "sending"].into_iter().filter(|_| rng.chance(30)).collect();
                before.push("finished");
                // Repeats of the final IPN, and a stale status arriving after it.
                if rng.chance(20) {
                    before.push("finished");
                }
                if rng.chance(15) {
                    let stale = *rng.pick(&["waiting", "confirming", "sending"]);
                    before.push(stale);
                }
                // Out of order: an earlier status overtaking the final one.
                if before.len() > 2 && rng.chance(30) {
                    let last = before.len() - 1;
                    let j = rng.range(0, last as u64) as usize;
                    before.swap(j, last);
                }
                before
            } else {
                let mut never: Vec<&'static str> = vec!["waiting"];
                never.push(*rng.pick(&["failed", "expired", "partially_paid"]));
                if rng.chance(30) {
                    never.push("confirming");
                }
                never
            };
            SoakPayment { payment_id: 1_000_000 + p as i64, client, price_usd, outcome_eth, statuses, below_minimum }
        })
        .collect()
}

#[derive(Debug, Default)]
pub struct SendCounts {
    pub ipns_sent: AtomicU64,
    pub ipns_accepted: AtomicU64,
    pub ipns_refused: AtomicU64,
    /// Attempts that found the webhook down (or cut off) and were sent again.
    pub resends: AtomicU64,
}

/// Where a payment's IPNs go, and the sandbox's NOWPayments that confirms them.
pub struct Destination<'a> {
    pub webhook_url: &'a str,
    pub sandbox_url: &'a str,
    pub secret: &'a str,
}

/// Makes the sandbox's NOWPayments know the payment as it ends (finished, if any IPN says so:
/// a late `confirming` never undoes it there either), then delivers the payment's IPNs in their
/// order; each is resent until the webhook answers (at most `give_up`). Returns false if one was
/// never answered with 200.
pub async fn deliver(
    http: &reqwest::Client,
    to: &Destination<'_>,
    payment: &SoakPayment,
    client_id: &str,
    counts: &Arc<SendCounts>,
    give_up: Duration,
) -> bool {
    let (url, secret) = (to.webhook_url, to.secret);
    let final_status =
        if payment.statuses.contains(&"finished") { "finished" } else { payment.statuses.last().copied().unwrap_or("waiting") };
    let record = TestIpn {
        payment_id: payment.payment_id,
        user_id: 6271402111,
        client_id: client_id.to_owned(),
        status: final_status.to_owned(),
        price_usd: payment.price_usd,
        outcome_eth: payment.outcome_eth,
    }
    .body();
    let known = http.post(format!("{}/sim/nowpayments/payments", to.sandbox_url)).json(&record).send().await;
    if !known.is_ok_and(|r| r.status().is_success()) {
        tracing::warn!(payment_id = payment.payment_id, "the sandbox's NOWPayments did not take the record");
        return false;
    }
    let mut all_accepted = true;
    for status in &payment.statuses {
        let ipn = TestIpn {
            payment_id: payment.payment_id,
            user_id: 6271402111,
            client_id: client_id.to_owned(),
            status: (*status).to_owned(),
            price_usd: payment.price_usd,
            outcome_eth: payment.outcome_eth,
        };
        let (body, signature) = test_ipn::signed(&ipn, secret);
        counts.ipns_sent.fetch_add(1, Ordering::Relaxed);
        let started = Instant::now();
        let accepted = loop {
            let answer = http
                .post(url)
                .header("content-type", "application/json")
                .header(SIGNATURE_HEADER, &signature)
                .body(body.clone())
                .timeout(Duration::from_secs(20))
                .send()
                .await;
            match answer {
                Ok(r) if r.status().as_u16() == 200 => break true,
                // NOWPayments retries on anything but a 2xx; so does the soak, on server errors.
                Ok(r) if r.status().is_client_error() => {
                    tracing::warn!(payment_id = payment.payment_id, status = %r.status(), "IPN refused");
                    break false;
                }
                _ => {}
            }
            if started.elapsed() > give_up {
                break false;
            }
            counts.resends.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(500)).await;
        };
        if accepted {
            counts.ipns_accepted.fetch_add(1, Ordering::Relaxed);
        } else {
            counts.ipns_refused.fetch_add(1, Ordering::Relaxed);
            all_accepted = false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    all_accepted
}

pub fn client_settings(client: &SoakClient) -> activities::db::clients::ClientSettings {
    activities::db::clients::ClientSettings {
        client_id: client.client_id.clone(),
        wallet_address: XMR_WALLET.to_owned(),
        payout_currency: "xmr".into(),
        payout_network: "xmr".into(),
        payout_strategy: client.strategy,
        payout_threshold_usd: client.threshold_usd,
    }
}
