//! The invariants of DESIGN.md ("Invariants (tests check these)"), each a named check over
//! Postgres, the chain (every block since the soak's start) and the simulated ChangeNow's own
//! record of its exchanges. A check reports violations; none may be found.

use super::traffic::{SoakClient, SoakPayment};
use crate::chain::{TestChain, HOT_WALLET};
use activities::ethereum::ERC20_TRANSFER_SELECTOR;
use alloy::{
    consensus::Transaction as _,
    network::TransactionResponse as _,
    primitives::{Address, U256},
    providers::{Provider, RootProvider},
};
use rust_decimal::{prelude::ToPrimitive, Decimal};
use sqlx::PgPool;
use std::{
    collections::{BTreeMap, HashMap, HashSet},
    time::{Duration, Instant},
};
use workflows::domain::{to_base_units, ChainAsset, ExchangeStatus, PayoutStrategy};

/// Every check, in the order they run (the table lists each, with its count).
pub const INVARIANTS: &[&str] = &[
    "settled_in_time",
    "ipn_answered",
    "ipn_nothing_lost",
    "payment_routed_once",
    "fee_split_exact",
    "conversion_split_exact",
    "row_converted_once",
    "row_paid_at_most_once",
    "rows_returned_only_when_safe",
    "instant_payout_matches_exchange",
    "transfer_mined_once",
    "exchange_created_once",
    "deposit_once_per_exchange",
    "hot_wallet_ledger",
    "nothing_left_midway",
    "failures_recorded",
    "ledger_totals_consistent",
    "reconcile",
];

#[derive(Debug, Clone)]
pub struct Violation {
    pub invariant: &'static str,
    pub detail: String,
}

impl Violation {
    pub fn new(invariant: &'static str, detail: impl Into<String>) -> Self {
        Self { invariant, detail: detail.into() }
    }
}

pub struct Expectations<'a> {
    pub payments: &'a [SoakPayment],
    pub clients: &'a [SoakClient],
}

/// The hot wallet before the soak's first transfer.
pub struct ChainStart {
    pub first_block: u64,
    pub eth: U256,
    pub usdt: U256,
}

impl ChainStart {
    pub async fn read(chain: &TestChain) -> anyhow::Result<Self> {
        let provider = RootProvider::<alloy::network::Ethereum>::new_http(chain.anvil.url.parse()?);
        let hot: Address = HOT_WALLET.parse()?;
        Ok(Self {
            first_block: provider.get_block_number().await? + 1,
            eth: provider.get_balance(hot).await?,
            usdt: chain.usdt_balance(hot).await,
        })
    }
}

/// One transaction of the hot wallet (out) or to it (in), as mined.
#[derive(Debug, Clone)]
pub struct ChainTransfer {
    pub hash: String,
    /// `None` for ETH, else the token contract.
    pub token: Option<Address>,
    /// The beneficiary: the ETH recipient, or the token recipient.
    pub to: Address,
    pub from: Address,
    pub units: u128,
    pub succeeded: bool,
    pub gas_wei: u128,
}

/// What the checks counted, for the table.
#[derive(Debug, Default)]
pub struct Facts {
    pub counters: BTreeMap<String, i64>,
    pub exchanges: BTreeMap<String, i64>,
}

pub struct Found {
    pub violations: Vec<Violation>,
    pub facts: Facts,
}

/// Polls until nothing is in flight any more; returns what was still open at `timeout`
/// (empty once settled).
/// A failed payout batch is settled once the operator has retried it (at most 3 times).
pub async fn wait_until_settled(pool: &PgPool, timeout: Duration, retries: &super::faults::OperatorRetries) -> anyhow::Result<Vec<String>> {
    let deadline = Instant::now() + timeout;
    let mut stable = 0;
    loop {
        let mut open = match open_work(pool).await {
            Ok(open) => open,
            Err(e) => vec![format!("database: {e}")],
        };
        let failed: Vec<uuid::Uuid> =
            sqlx::query_scalar("SELECT batch_id FROM payout_batches WHERE status = 'failed'").fetch_all(pool).await.unwrap_or_default();
        let unretried = failed.iter().filter(|id| retries.asked.lock().unwrap().get(id).copied().unwrap_or(0) < 3).count();
        if unretried > 0 {
            open.push(format!("{unretried} failed payout batches the operator has not retried 3 times"));
        }
        // Twice in a row: a conversion's last row can be between two steps at one look.
        stable = if open.is_empty() { stable + 1 } else { 0 };
        if stable >= 2 {
            return Ok(Vec::new());
        }
        if Instant::now() > deadline {
            return Ok(open);
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
}

async fn open_work(pool: &PgPool) -> anyhow::Result<Vec<String>> {
    let row: (i64, i64, i64, i64, i64, i64, i64, bool) = sqlx::query_as(
        "SELECT
           (SELECT count(*) FROM payments WHERE payment_status = 'finished' AND status IN ('received', 'processing')),
           (SELECT count(*) FROM payments p WHERE p.status = 'awaiting_instant_payout'
               AND NOT EXISTS (SELECT 1 FROM instant_payouts i WHERE i.payment_id = p.payment_id)),
           (SELECT count(*) FROM instant_payouts WHERE status IN ('pending', 'exchange_created', 'sent')),
           (SELECT count(*) FROM batch_conversions WHERE conversion_status IN ('pending', 'swapping')),
           (SELECT count(*) FROM payout_batches WHERE status IN ('pending', 'processing')),
           (SELECT count(*) FROM transfer_intents WHERE status = 'signed'),
           (SELECT count(*) FROM payout_group_balances b WHERE b.unpaid_rows > 0 AND b.unpaid_usdt >= b.due_at_usdt
               AND NOT EXISTS (SELECT 1 FROM payout_group_holds h
                               WHERE (h.client_id, h.client_wallet_address, h.client_payout_currency, h.client_payout_network)
                                   = (b.client_id, b.client_wallet_address, b.client_payout_currency, b.client_payout_network))),
           (SELECT t.pending_usd >= s.value::numeric FROM conversion_pool_totals t, settings s WHERE s.key = 'micro_batch_threshold_usd')",
    )
    .fetch_one(pool)
    .await?;
    let names = [
        "payments not routed",
        "instant payouts not opened",
        "instant payouts in flight",
        "conversions in flight",
        "payout batches in flight",
        "transfers unconfirmed",
        "payout groups due",
    ];
    let counts = [row.0, row.1, row.2, row.3, row.4, row.5, row.6];
    let mut open: Vec<String> = names.iter().zip(counts).filter(|(_, n)| *n > 0).map(|(name, n)| format!("{n} {name}")).collect();
    if row.7 {
        open.push("conversion pool over its threshold".into());
    }
    Ok(open)
}

fn s(text: &str) -> String {
    text.to_owned()
}

fn units(amount: Decimal, asset: ChainAsset) -> u128 {
    to_base_units(amount, asset).unwrap_or(u128::MAX)
}

/// Every transaction from or to the hot wallet since the soak began, with its receipt.
async fn scan_chain(chain: &TestChain, start: &ChainStart) -> anyhow::Result<Vec<ChainTransfer>> {
    let provider = RootProvider::<alloy::network::Ethereum>::new_http(chain.anvil.url.parse()?);
    let hot: Address = HOT_WALLET.parse()?;
    let head = provider.get_block_number().await?;
    let tokens = [chain.usdt, chain.usdc];
    let mut found = Vec::new();
    for number in start.first_block..=head {
        let Some(block) = provider.get_block_by_number(number.into()).full().await? else { continue };
        for tx in block.transactions.into_transactions() {
            let (from, Some(to)) = (tx.from(), tx.to()) else { continue };
            let input = tx.input();
            let (token, beneficiary, amount) = if tokens.contains(&to) && input.len() == 68 && input[..4] == ERC20_TRANSFER_SELECTOR {
                (Some(to), Address::from_slice(&input[16..36]), U256::from_be_slice(&input[36..68]))
            } else {
                (None, to, tx.value())
            };
            if from != hot && beneficiary != hot {
                continue;
            }
            let hash = tx.tx_hash();
            let receipt = provider.get_transaction_receipt(hash).await?;
            let (succeeded, gas_wei) = receipt.map(|r| (r.status(), u128::from(r.gas_used) * r.effective_gas_price)).unwrap_or((false, 0));
            found.push(ChainTransfer {
                hash: format!("{hash:#x}"),
                token,
                to: beneficiary,
                from,
                units: amount.to::<u128>(),
                succeeded,
                gas_wei,
            });
        }
    }
    Ok(found)
}

pub async fn run_all(pool: &PgPool, chain: &TestChain, start: &ChainStart, expect: &Expectations<'_>) -> anyhow::Result<Found> {
    let mut v: Vec<Violation> = Vec::new();
    let mut facts = Facts::default();
    let hot: Address = HOT_WALLET.parse()?;
    let scan = scan_chain(chain, start).await?;
    let sim: HashMap<String, changenow_simulator::exchange::Exchange> =
        chain.simulator.simulator.exchanges().into_iter().map(|x| (x.id.clone(), x)).collect();
    for x in sim.values() {
        let kind = if x.pair.from_currency == "eth" && x.pair.to_currency != "usdt" && x.pair.to_currency != "usdc" {
            "instant"
        } else if x.pair.from_currency == "eth" {
            "conversion"
        } else {
            "payout"
        };
        *facts.exchanges.entry(format!("{kind} {}", x.status.as_str())).or_default() += 1;
    }

    // --- Intake: nothing lost, each payment routed once.
    let stored: HashMap<i64, (String, String)> =
        sqlx::query_as::<_, (i64, String, String)>("SELECT payment_id, payment_status, status FROM payments")
            .fetch_all(pool)
            .await?
            .into_iter()
            .map(|(id, ipn, ours)| (id, (ipn, ours)))
            .collect();
    let routed: HashMap<i64, (i64, i64)> = sqlx::query_as::<_, (i64, i64, i64)>(
        "SELECT p.payment_id,
                (SELECT count(*) FROM payout_accumulation a WHERE a.nowpayments_payment_id = p.payment_id),
                (SELECT count(*) FROM instant_payouts i WHERE i.payment_id = p.payment_id)
           FROM payments p",
    )
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(|(id, a, i)| (id, (a, i)))
    .collect();
    for p in expect.payments {
        let client = &expect.clients[p.client];
        let Some((ipn_status, status)) = stored.get(&p.payment_id) else {
            v.push(Violation::new("ipn_nothing_lost", format!("payment {} was answered 200 but is not stored", p.payment_id)));
            continue;
        };
        if p.finished() != (ipn_status == "finished") {
            v.push(Violation::new(
                "ipn_nothing_lost",
                format!("payment {}: statuses sent {:?}, stored '{ipn_status}'", p.payment_id, p.statuses),
            ));
        }
        let (accumulated, instant) = routed.get(&p.payment_id).copied().unwrap_or((0, 0));
        let expected = match (p.finished(), client.strategy) {
            (false, _) => (0, 0),
            (true, PayoutStrategy::Threshold) => (1, 0),
            (true, PayoutStrategy::Instant) => (0, 1),
        };
        if (accumulated, instant) != expected {
            v.push(Violation::new(
                "payment_routed_once",
                format!("payment {} ({:?}, status '{status}'): {accumulated} accumulation rows, {instant} instant payouts; expected {expected:?}", p.payment_id, client.strategy),
            ));
        }
    }
    if stored.len() != expect.payments.len() {
        v.push(Violation::new("ipn_nothing_lost", format!("{} payments stored, {} sent", stored.len(), expect.payments.len())));
    }

    let bad_fees: Vec<i64> = sqlx::query_scalar(
        "SELECT p.payment_id FROM payments p WHERE p.net_amount_usd IS NOT NULL
            AND (p.net_amount_usd + p.fee_amount_usd <> p.price_amount OR p.net_amount_eth + p.fee_amount_eth <> p.outcome_amount)
         UNION ALL
         SELECT a.nowpayments_payment_id FROM payout_accumulation a JOIN payments p ON p.payment_id = a.nowpayments_payment_id
          WHERE a.accumulated_eth <> p.net_amount_eth OR a.net_amount_usd <> p.net_amount_usd
         UNION ALL
         SELECT i.payment_id FROM instant_payouts i JOIN payments p USING (payment_id) WHERE i.amount_eth <> p.net_amount_eth",
    )
    .fetch_all(pool)
    .await?;
    for id in bad_fees {
        v.push(Violation::new(
            "fee_split_exact",
            format!("payment {id}: fee + net differ from the payment, or the routed amount from the net"),
        ));
    }

    // --- Outbox: intents, attempts and what the chain mined.
    let intents: Vec<(String, String, Decimal, String, Option<String>)> =
        sqlx::query_as("SELECT purpose_key, asset, amount_base_units, status, lower(confirmed_tx_hash) FROM transfer_intents")
            .fetch_all(pool)
            .await?;
    let attempts: Vec<(String, String, i32, bool)> =
        sqlx::query_as("SELECT lower(tx_hash), purpose_key, attempt, cancels FROM transfer_attempts").fetch_all(pool).await?;
    let mined: HashMap<&str, &ChainTransfer> = scan.iter().filter(|t| t.from == hot).map(|t| (t.hash.as_str(), t)).collect();
    let mut attempts_by_key: HashMap<&str, Vec<&str>> = HashMap::new();
    for (hash, key, _, _) in &attempts {
        attempts_by_key.entry(key.as_str()).or_default().push(hash.as_str());
    }
    let recorded_hashes: HashSet<&str> = attempts.iter().map(|(h, ..)| h.as_str()).collect();
    let mut confirmed_by_key: HashMap<&str, (u128, &str)> = HashMap::new();
    for (key, asset, amount, status, confirmed) in &intents {
        let landed: Vec<&&ChainTransfer> = attempts_by_key
            .get(key.as_str())
            .into_iter()
            .flatten()
            .filter_map(|h| mined.get(h))
            .filter(|t| t.succeeded && t.units > 0)
            .collect();
        if landed.len() > 1 {
            v.push(Violation::new("transfer_mined_once", format!("{key}: {} transactions with value mined", landed.len())));
        }
        if status == "confirmed" {
            let hash = confirmed.clone().unwrap_or_default();
            match mined.get(hash.as_str()) {
                Some(t) if t.succeeded => {
                    let want = amount.to_u128().unwrap_or(0);
                    let asset_ok = (asset == "ETH") == t.token.is_none();
                    if t.units != want || !asset_ok {
                        v.push(Violation::new(
                            "transfer_mined_once",
                            format!("{key}: intent of {want} {asset} but {hash} moved {} of {:?}", t.units, t.token),
                        ));
                    }
                    confirmed_by_key.insert(key.as_str(), (want, asset.as_str()));
                }
                _ => v.push(Violation::new(
                    "transfer_mined_once",
                    format!("{key}: confirmed as {hash}, which is not a successful transaction on chain"),
                )),
            }
        } else if status != "signed" && landed.iter().any(|t| t.units > 0) {
            v.push(Violation::new("transfer_mined_once", format!("{key} is '{status}' but a transaction of it moved value")));
        }
    }
    for t in mined.values() {
        if !recorded_hashes.contains(t.hash.as_str()) {
            v.push(Violation::new("hot_wallet_ledger", format!("{} left the hot wallet but is no outbox attempt", t.hash)));
        }
    }
    let replaced = attempts.iter().filter(|(_, _, attempt, cancels)| *attempt > 0 && !cancels).count();
    facts.counters.insert(s("transfer intents"), intents.len() as i64);
    facts.counters.insert(s("transfers signed (attempts)"), attempts.len() as i64);
    facts.counters.insert(s("transfers mined"), mined.values().filter(|t| t.succeeded).count() as i64);
    facts.counters.insert(s("transfers replaced (fee bumps)"), replaced as i64);
    facts.counters.insert(s("transfers cancelled at their nonce"), intents.iter().filter(|i| i.3 == "cancelled").count() as i64);
    facts.counters.insert(s("transfers reverted"), intents.iter().filter(|i| i.3 == "reverted").count() as i64);

    // --- Exchanges: each created once and stored; one deposit each.
    let stored_exchanges: Vec<(String, String, String, Option<String>)> =
        sqlx::query_as("SELECT purpose_key, exchange_id, lower(payin_address), lower(refund_hash) FROM changenow_exchanges")
            .fetch_all(pool)
            .await?;
    let stored_ids: HashSet<&str> = stored_exchanges.iter().map(|e| e.1.as_str()).collect();
    let mut orphans = 0;
    for x in sim.values() {
        if !stored_ids.contains(x.id.as_str()) {
            if x.amount_from.is_some() {
                v.push(Violation::new("exchange_created_once", format!("exchange {} ({}) got a deposit but is not stored", x.id, x.pair)));
            } else {
                orphans += 1;
            }
        }
    }
    for (key, id, ..) in &stored_exchanges {
        if !sim.contains_key(id) {
            v.push(Violation::new("exchange_created_once", format!("{key}: exchange {id} is unknown to ChangeNow")));
        }
    }
    facts.counters.insert(s("exchanges created, never used (no deposit)"), orphans);
    let mut deposits: HashMap<Address, u32> = HashMap::new();
    for t in scan.iter().filter(|t| t.from == hot && t.succeeded && t.units > 0) {
        *deposits.entry(t.to).or_default() += 1;
    }
    for (address, n) in deposits.iter().filter(|(_, n)| **n > 1) {
        v.push(Violation::new("deposit_once_per_exchange", format!("{n} deposits to {address}")));
    }

    // --- Conversions.
    let conversions: Vec<(uuid::Uuid, String, Option<Decimal>, Decimal, Option<String>, bool, Option<Decimal>, Option<String>)> = sqlx::query_as(
        "SELECT batch_conversion_id, conversion_status, actual_usdt_received, total_eth, cn_api_id, rows_released, refund_amount_eth, failure_reason
           FROM batch_conversions",
    )
    .fetch_all(pool)
    .await?;
    let row_sums: HashMap<uuid::Uuid, (Decimal, Decimal, i64)> = sqlx::query_as::<_, (uuid::Uuid, Decimal, Decimal, i64)>(
        "SELECT batch_conversion_id, COALESCE(sum(accumulated_amount_usdt), 0), COALESCE(sum(accumulated_eth), 0), count(*)
           FROM payout_accumulation WHERE conversion_status = 'completed' GROUP BY batch_conversion_id",
    )
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(|(id, usdt, eth, n)| (id, (usdt, eth, n)))
    .collect();
    for (id, status, received, total_eth, exchange, released, refunded, reason) in &conversions {
        let key = format!("conversion-{id}");
        let sent = confirmed_by_key.get(key.as_str()).map(|(u, _)| *u);
        match status.as_str() {
            "completed" => {
                let (usdt, eth, _) = row_sums.get(id).copied().unwrap_or_default();
                if Some(usdt) != *received || eth != *total_eth {
                    v.push(Violation::new(
                        "conversion_split_exact",
                        format!(
                            "conversion {id}: rows hold {usdt} USDT and {eth} ETH; the batch received {received:?} for {total_eth} ETH"
                        ),
                    ));
                }
                let x = exchange.as_ref().and_then(|e| sim.get(e));
                if x.and_then(|x| x.amount_to) != *received || x.map(|x| &x.status) != Some(&ExchangeStatus::Finished) {
                    v.push(Violation::new(
                        "conversion_split_exact",
                        format!("conversion {id}: received {received:?}, ChangeNow paid {:?}", x.map(|x| (x.status.as_str(), x.amount_to))),
                    ));
                }
                if sent != Some(units(*total_eth, ChainAsset::Eth)) {
                    v.push(Violation::new(
                        "row_converted_once",
                        format!("conversion {id}: {total_eth} ETH converted, the outbox sent {sent:?} wei"),
                    ));
                }
            }
            "failed" => {
                if reason.is_none() {
                    v.push(Violation::new("failures_recorded", format!("conversion {id} failed without a reason")));
                }
                let fully_refunded = refunded.is_some_and(|r| r >= *total_eth);
                if *released && sent.is_some() && !fully_refunded {
                    v.push(Violation::new(
                        "rows_returned_only_when_safe",
                        format!("conversion {id}: rows returned to the pool, but its ETH was sent and no full refund is recorded ({refunded:?})"),
                    ));
                }
            }
            _ => {}
        }
    }
    v.extend(super::split_check::shares_follow_eth(pool).await?);
    let misplaced: Vec<(i64, String, Option<String>)> = sqlx::query_as(
        "SELECT a.id, a.conversion_status, b.conversion_status FROM payout_accumulation a
           LEFT JOIN batch_conversions b USING (batch_conversion_id)
          WHERE (a.conversion_status = 'completed' AND b.conversion_status IS DISTINCT FROM 'completed')
             OR (a.conversion_status IN ('swapping', 'failed') AND b.conversion_status IS DISTINCT FROM 'failed')
             OR (a.conversion_status = 'pending' AND a.accumulated_amount_usdt IS NOT NULL)",
    )
    .fetch_all(pool)
    .await?;
    for (row, own, batch) in misplaced {
        v.push(Violation::new("row_converted_once", format!("accumulation row {row} is '{own}' under a conversion that is {batch:?}")));
    }
    let completed_conversions = conversions.iter().filter(|c| c.1 == "completed").count() as i64;
    facts.counters.insert(s("conversions completed"), completed_conversions);
    facts.counters.insert(s("conversions failed"), conversions.iter().filter(|c| c.1 == "failed").count() as i64);

    // --- Payout batches.
    let batches: Vec<(uuid::Uuid, String, Decimal, i32, bool, Option<String>)> = sqlx::query_as(
        "SELECT batch_id, status, total_amount_usdt, total_payments_count, rows_released, failure_reason FROM payout_batches",
    )
    .fetch_all(pool)
    .await?;
    let paid_sums: HashMap<uuid::Uuid, (Decimal, i64)> = sqlx::query_as::<_, (uuid::Uuid, Decimal, i64)>(
        "SELECT payout_batch_id, COALESCE(sum(accumulated_amount_usdt), 0), count(*) FROM payout_accumulation
          WHERE is_paid_out GROUP BY payout_batch_id",
    )
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(|(id, usdt, n)| (id, (usdt, n)))
    .collect();
    let exchange_of_key: HashMap<&str, &str> = stored_exchanges.iter().map(|e| (e.0.as_str(), e.1.as_str())).collect();
    let alerts: HashSet<(String, String)> =
        sqlx::query_as::<_, (String, String)>("SELECT kind, subject FROM alerts").fetch_all(pool).await?.into_iter().collect();
    for (id, status, total, count, released, reason) in &batches {
        let prefix = format!("payout-{id}-");
        let legs: Vec<&str> = intents.iter().map(|i| i.0.as_str()).filter(|k| k.starts_with(&prefix)).collect();
        let finished_usdt: Decimal = stored_exchanges
            .iter()
            .filter(|e| e.0.starts_with(&prefix))
            .filter_map(|e| sim.get(&e.1))
            .filter(|x| x.status == ExchangeStatus::Finished)
            .filter_map(|x| x.amount_from)
            .sum();
        let sent_not_back: Vec<&&str> = legs
            .iter()
            .filter(|k| confirmed_by_key.contains_key(**k))
            .filter(|k| exchange_of_key.get(**k).and_then(|x| sim.get(*x)).is_none_or(|x| x.status != ExchangeStatus::Refunded))
            .collect();
        match status.as_str() {
            "completed" => {
                let (usdt, n) = paid_sums.get(id).copied().unwrap_or_default();
                if usdt != *total || n != i64::from(*count) {
                    v.push(Violation::new(
                        "row_paid_at_most_once",
                        format!("batch {id}: {n} rows of {usdt} USDT paid, the batch says {count} of {total}"),
                    ));
                }
                if finished_usdt != *total {
                    v.push(Violation::new(
                        "row_paid_at_most_once",
                        format!("batch {id}: ChangeNow finished {finished_usdt} USDT of its {total}"),
                    ));
                }
            }
            "failed" | "rejected" => {
                if reason.is_none() {
                    v.push(Violation::new("failures_recorded", format!("batch {id} is '{status}' without a reason")));
                }
                if status == "failed" && !alerts.contains(&("payout_batch_failed".to_owned(), id.to_string())) {
                    v.push(Violation::new("failures_recorded", format!("batch {id} failed without a payout_batch_failed alert")));
                }
                if *released && (!sent_not_back.is_empty() || finished_usdt > Decimal::ZERO) {
                    v.push(Violation::new(
                        "rows_returned_only_when_safe",
                        format!("batch {id}: rows released although {} of its transfers left the wallet unrefunded", sent_not_back.len()),
                    ));
                }
            }
            _ => {}
        }
    }
    let wrongly_paid: Vec<i64> = sqlx::query_scalar(
        "SELECT a.id FROM payout_accumulation a LEFT JOIN payout_batches b ON b.batch_id = a.payout_batch_id
          WHERE a.is_paid_out AND b.status IS DISTINCT FROM 'completed'",
    )
    .fetch_all(pool)
    .await?;
    for row in wrongly_paid {
        v.push(Violation::new("row_paid_at_most_once", format!("row {row} is paid out by a batch that is not completed")));
    }
    facts.counters.insert(s("payout batches completed"), batches.iter().filter(|b| b.1 == "completed").count() as i64);
    facts.counters.insert(s("payout batches failed"), batches.iter().filter(|b| b.1 == "failed").count() as i64);

    // --- Instant payouts against their exchange and transfer.
    let instants: Vec<(i64, String, Decimal, Option<String>, Option<Decimal>, Option<String>)> =
        sqlx::query_as("SELECT payment_id, status, amount_eth, exchange_id, amount_received, lower(refund_hash) FROM instant_payouts")
            .fetch_all(pool)
            .await?;
    for (payment_id, status, amount_eth, exchange, received, refund_hash) in &instants {
        let key = format!("instant-payout-{payment_id}");
        let sent = confirmed_by_key.get(key.as_str()).map(|(u, _)| *u);
        let x = exchange.as_ref().and_then(|e| sim.get(e));
        let problem = match status.as_str() {
            "completed" => (x.map(|x| (&x.status, x.amount_to)) != Some((&ExchangeStatus::Finished, *received))
                || sent != Some(units(*amount_eth, ChainAsset::Eth)))
            .then(|| format!("completed with {received:?}, exchange {:?}, sent {sent:?} wei", x.map(|x| (x.status.as_str(), x.amount_to)))),
            "held" => (sent.is_some() || exchange_of_key.contains_key(key.as_str()))
                .then(|| "held, yet an exchange or a transfer exists".to_owned()),
            "refunded" => (x.and_then(|x| x.refund_hash.clone()).map(|h| h.to_lowercase()) != *refund_hash)
                .then(|| format!("refund recorded as {refund_hash:?}, ChangeNow refunded {:?}", x.and_then(|x| x.refund_hash.clone()))),
            _ => None,
        };
        if let Some(problem) = problem {
            v.push(Violation::new("instant_payout_matches_exchange", format!("payment {payment_id}: {problem}")));
        }
    }

    // --- The hot wallet: what left matches the outbox, what came in is recorded.
    let recorded_in: HashSet<String> = sqlx::query_scalar::<_, String>(
        "SELECT lower(conversion_tx_hash) FROM batch_conversions WHERE conversion_status = 'completed' AND conversion_tx_hash IS NOT NULL
         UNION SELECT lower(refund_tx_hash) FROM batch_conversions WHERE refund_tx_hash IS NOT NULL
         UNION SELECT lower(refund_hash) FROM instant_payouts WHERE refund_hash IS NOT NULL
         UNION SELECT lower(refund_hash) FROM changenow_exchanges WHERE refund_hash IS NOT NULL",
    )
    .fetch_all(pool)
    .await?
    .into_iter()
    .collect();
    for t in scan.iter().filter(|t| t.from != hot && t.to == hot && t.succeeded && t.units > 0) {
        if !recorded_in.contains(&t.hash) {
            v.push(Violation::new(
                "hot_wallet_ledger",
                format!("{} brought {} units of {:?} that no ledger row records", t.hash, t.units, t.token),
            ));
        }
    }
    let provider = RootProvider::<alloy::network::Ethereum>::new_http(chain.anvil.url.parse()?);
    let (eth_now, usdt_now) = (provider.get_balance(hot).await?, chain.usdt_balance(hot).await);
    let sum = |f: &dyn Fn(&&ChainTransfer) -> bool| -> u128 { scan.iter().filter(|t| t.succeeded).filter(f).map(|t| t.units).sum() };
    let eth_out = sum(&|t| t.from == hot && t.token.is_none() && t.to != hot);
    let eth_in = sum(&|t| t.from != hot && t.token.is_none());
    let gas: u128 = scan.iter().filter(|t| t.from == hot).map(|t| t.gas_wei).sum();
    let usdt_out = sum(&|t| t.from == hot && t.token == Some(chain.usdt) && t.to != hot);
    let usdt_in = sum(&|t| t.from != hot && t.token == Some(chain.usdt));
    let outbox_eth: u128 = confirmed_by_key.values().filter(|(_, a)| *a == "ETH").map(|(u, _)| *u).sum();
    let usdt_asset = chain.usdt.to_checksum(None).to_lowercase();
    let outbox_usdt: u128 = confirmed_by_key.values().filter(|(_, a)| a.to_lowercase() == usdt_asset).map(|(u, _)| *u).sum();
    if eth_out != outbox_eth {
        v.push(Violation::new(
            "hot_wallet_ledger",
            format!("{eth_out} wei left the hot wallet; confirmed outbox intents say {outbox_eth}"),
        ));
    }
    if usdt_out != outbox_usdt {
        v.push(Violation::new(
            "hot_wallet_ledger",
            format!("{usdt_out} USDT units left the hot wallet; confirmed outbox intents say {outbox_usdt}"),
        ));
    }
    if U256::from(start.eth) + U256::from(eth_in) != eth_now + U256::from(eth_out) + U256::from(gas) {
        v.push(Violation::new(
            "hot_wallet_ledger",
            format!("ETH: {} at start + {eth_in} in - {eth_out} out - {gas} gas != {eth_now} now", start.eth),
        ));
    }
    if U256::from(start.usdt) + U256::from(usdt_in) != usdt_now + U256::from(usdt_out) {
        v.push(Violation::new(
            "hot_wallet_ledger",
            format!("USDT: {} at start + {usdt_in} in - {usdt_out} out != {usdt_now} now", start.usdt),
        ));
    }
    facts.counters.insert(s("ETH sent (gwei)"), i64::try_from(eth_out / 1_000_000_000).unwrap_or(i64::MAX));
    facts.counters.insert(s("USDT sent (units)"), i64::try_from(usdt_out).unwrap_or(i64::MAX));
    facts.counters.insert(s("USDT received (units)"), i64::try_from(usdt_in).unwrap_or(i64::MAX));

    // --- Nothing left in the middle by a run that has ended.
    for open in open_work(pool).await? {
        v.push(Violation::new("nothing_left_midway", open));
    }
    let stuck_swapping: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM payout_accumulation a JOIN batch_conversions b USING (batch_conversion_id)
          WHERE a.conversion_status = 'swapping' AND b.conversion_status <> 'failed'",
    )
    .fetch_one(pool)
    .await?;
    if stuck_swapping > 0 {
        v.push(Violation::new("nothing_left_midway", format!("{stuck_swapping} rows 'swapping' under a conversion that is not failed")));
    }
    for (id, status, ..) in &conversions {
        if status == "failed" && !alerts.contains(&("conversion_batch_failed".to_owned(), id.to_string())) {
            v.push(Violation::new("failures_recorded", format!("conversion {id} failed without a conversion_batch_failed alert")));
        }
    }

    // --- The running totals the triggers keep equal their recount.
    let pool_totals: (bool, bool) = sqlx::query_as(
        "SELECT t.pending_rows = c.n AND t.pending_usd = c.usd AND t.pending_eth = c.eth, true
           FROM conversion_pool_totals t,
                (SELECT count(*) n, COALESCE(sum(net_amount_usd), 0) usd, COALESCE(sum(accumulated_eth), 0) eth
                   FROM payout_accumulation WHERE conversion_status = 'pending') c",
    )
    .fetch_one(pool)
    .await?;
    if !pool_totals.0 {
        v.push(Violation::new("ledger_totals_consistent", "conversion_pool_totals differ from the pending rows"));
    }
    let group_diffs: i64 = sqlx::query_scalar(
        "WITH actual AS (
            SELECT client_id, client_wallet_address, client_payout_currency, client_payout_network,
                   sum(accumulated_amount_usdt) usdt, count(*) n
              FROM payout_accumulation WHERE conversion_status = 'completed' AND NOT is_paid_out AND payout_batch_id IS NULL
             GROUP BY 1, 2, 3, 4)
         SELECT count(*) FROM payout_group_balances b FULL JOIN actual a
             ON (a.client_id, a.client_wallet_address, a.client_payout_currency, a.client_payout_network)
              = (b.client_id, b.client_wallet_address, b.client_payout_currency, b.client_payout_network)
          WHERE COALESCE(a.usdt, 0) <> COALESCE(b.unpaid_usdt, 0) OR COALESCE(a.n, 0) <> COALESCE(b.unpaid_rows, 0)",
    )
    .fetch_one(pool)
    .await?;
    if group_diffs > 0 {
        v.push(Violation::new("ledger_totals_consistent", format!("{group_diffs} payout groups' balances differ from their unpaid rows")));
    }

    // Payment outcomes for the table.
    let outcomes: Vec<(String, i64)> = sqlx::query_as(
        "SELECT 'instant ' || status, count(*) FROM instant_payouts GROUP BY status
         UNION ALL SELECT 'threshold rows ' || s, count(*)
           FROM (SELECT CASE WHEN is_paid_out THEN 'paid' ELSE conversion_status END s FROM payout_accumulation) x GROUP BY s",
    )
    .fetch_all(pool)
    .await?;
    for (name, n) in outcomes {
        facts.counters.insert(name, n);
    }
    Ok(Found { violations: v, facts })
}
