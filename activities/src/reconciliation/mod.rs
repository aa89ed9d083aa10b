//! The reconciliation: the ledger held against the chain and ChangeNow, by `starter reconcile`
//! and the daily `reconciliation` schedule.
//!
//! Five holdings, each a named [`Check`]:
//! - the outbox's open intents against the chain's nonce (no gap in front of them);
//! - every outbox intent against its transaction on chain (a confirmed intent moved exactly its
//!   amount to its recipient; a reverted one reverted; a cancelled one moved nothing; an open one
//!   is not silently mined);
//! - every exchange against its deposit (the transfer to its pay-in address is the amount
//!   ChangeNow was told, and ChangeNow says it received that);
//! - every completed batch against what left the wallet (conversions, payouts, instant payouts);
//! - the hot wallet's balances against what it owes clients (unconverted ETH, unpaid USDT/USDC),
//!   with the fees the platform kept shown beside them.
//!
//! Each difference is printed and raised as one `reconciliation_difference` alert (one open
//! alert per difference however many runs find it). Reading only: nothing is corrected here.

mod activities;

pub use activities::ReconciliationActivities;

use crate::{
    changenow::ChangeNowClient,
    db::alerts::{self, AlertKind, NewAlert},
    ethereum::{Asset, HotWallet, HotWalletError, MinedOutgoing},
};
use alloy::primitives::{Address, U256};
use rust_decimal::Decimal;
use sqlx::{PgPool, Row};
use std::{fmt, str::FromStr, time::Duration};

/// An open intent younger than this is its run's business (it is polling it).
const OPEN_INTENT_GRACE: Duration = Duration::from_secs(60 * 60);
/// Exchange statuses that say ChangeNow received the deposit.
const DEPOSIT_SEEN: [&str; 4] = ["confirming", "exchanging", "sending", "finished"];

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("chain error: {0}")]
    Chain(#[from] HotWalletError),
    #[error("stored value '{0}' is not a number")]
    Corrupt(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Check {
    NonceSequence,
    IntentOnChain,
    ExchangeDeposit,
    BatchOutflow,
    WalletCoverage,
}

impl Check {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NonceSequence => "nonce_sequence",
            Self::IntentOnChain => "intent_on_chain",
            Self::ExchangeDeposit => "exchange_deposit",
            Self::BatchOutflow => "batch_outflow",
            Self::WalletCoverage => "wallet_coverage",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    pub check: Check,
    /// What it is about: a purpose key, an exchange id, a batch id, an asset.
    pub subject: String,
    pub message: String,
}

/// One asset of the hot wallet: what the chain says it holds against what the ledger owes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coverage {
    pub asset: &'static str,
    pub on_chain: Decimal,
    pub owed_to_clients: Decimal,
    /// Owed, but already on its way out: transfers signed or confirmed for batches not yet
    /// recorded as completed (a refunded leg's USDT is back, so this errs towards no alert).
    pub in_flight: Decimal,
    /// Fees the platform kept in this asset (information: the platform may have moved them out).
    pub fees_kept: Decimal,
}

impl Coverage {
    /// What the wallet holds beyond what it owes; negative is a shortfall.
    pub fn surplus(&self) -> Decimal {
        self.on_chain - (self.owed_to_clients - self.in_flight)
    }
}

#[derive(Debug, Clone, Default)]
pub struct ReconciliationReport {
    pub intents_checked: usize,
    pub exchanges_checked: usize,
    /// Exchanges ChangeNow could not be asked about this time (not a difference: it was away).
    pub exchanges_unreachable: usize,
    pub batches_checked: usize,
    pub coverage: Vec<Coverage>,
    pub differences: Vec<Difference>,
}

/// What the reconciliation reads besides the database.
pub struct Sources<'a> {
    pub wallet: &'a HotWallet,
    /// `None`: the exchange check uses what ChangeNow said when last polled.
    pub changenow: Option<&'a ChangeNowClient>,
    pub usdt_contract: Option<Address>,
    pub usdc_contract: Option<Address>,
}

/// Holds everything created in the last `window` against the chain and ChangeNow, and the
/// wallet's balances against the whole ledger.
pub async fn reconcile(pool: &PgPool, sources: &Sources<'_>, window: Duration) -> Result<ReconciliationReport, ReconcileError> {
    let mut report = ReconciliationReport::default();
    check_nonce_sequence(sources, &mut report).await?;
    check_intents(pool, sources, window, &mut report).await?;
    check_exchanges(pool, sources, window, &mut report).await?;
    check_batches(pool, window, &mut report).await?;
    check_coverage(pool, sources, &mut report).await?;
    report.differences.sort_by(|a, b| (a.check, &a.subject).cmp(&(b.check, &b.subject)));
    Ok(report)
}

/// Raises one `reconciliation_difference` alert per difference not already open; returns how
/// many were raised.
pub async fn raise_alerts(pool: &PgPool, report: &ReconciliationReport) -> Result<usize, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let mut raised = 0;
    for difference in &report.differences {
        let alert = NewAlert {
            dedupe_key: format!("reconciliation:{}:{}", difference.check.as_str(), difference.subject),
            kind: AlertKind::ReconciliationDifference,
            subject: difference.subject.clone(),
            message: &difference.message,
        };
        raised += usize::from(alerts::raise_unless_open(&mut tx, &alert).await?);
    }
    tx.commit().await?;
    Ok(raised)
}

fn interval(window: Duration) -> String {
    format!("{} seconds", window.as_secs())
}

fn decimal(text: &str) -> Result<Decimal, ReconcileError> {
    Decimal::from_str(text).map_err(|_| ReconcileError::Corrupt(text.to_owned()))
}

fn u256(text: &str) -> Result<U256, ReconcileError> {
    U256::from_str(text).map_err(|_| ReconcileError::Corrupt(text.to_owned()))
}

/// Base units as an amount of an asset with `decimals` decimals, exactly (`Corrupt` beyond the
/// 28 digits a `Decimal` holds, far above any real balance).
fn units_to_amount(units: U256, decimals: u32) -> Result<Decimal, ReconcileError> {
    let mut amount = decimal(&units.to_string())?;
    amount.set_scale(decimals).map_err(|_| ReconcileError::Corrupt(units.to_string()))?;
    Ok(amount.normalize())
}

/// An intent as the outbox recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedIntent {
    pub purpose_key: String,
    pub status: String,
    pub to: Address,
    pub amount: U256,
}

/// What the chain says about the intent's recorded transaction (`None`: not mined).
pub fn intent_difference(intent: &RecordedIntent, tx_hash: &str, mined: Option<&MinedOutgoing>) -> Option<String> {
    let key = &intent.purpose_key;
    match (intent.status.as_str(), mined) {
        ("confirmed" | "reverted" | "cancelled", None) => {
            Some(format!("{key} is recorded {} in {tx_hash}, which the chain does not have", intent.status))
        }
        ("confirmed", Some(m)) if !m.succeeded => Some(format!("{key} is recorded confirmed, but {tx_hash} reverted on chain")),
        ("confirmed", Some(m)) if m.payments != [(intent.to, intent.amount)] => Some(format!(
            "{key} is recorded as {} base units to {}, but {tx_hash} moved {} on chain",
            intent.amount,
            intent.to,
            describe(&m.payments)
        )),
        ("reverted", Some(m)) if m.succeeded => Some(format!("{key} is recorded reverted, but {tx_hash} succeeded on chain")),
        ("cancelled", Some(m)) if !m.payments.is_empty() => {
            Some(format!("{key} is recorded cancelled, but its nonce's transaction {tx_hash} moved {}", describe(&m.payments)))
        }
        _ => None,
    }
}

fn describe(payments: &[(Address, U256)]) -> String {
    if payments.is_empty() {
        return "nothing".to_owned();
    }
    payments.iter().map(|(to, amount)| format!("{amount} base units to {to}")).collect::<Vec<_>>().join(", ")
}

async fn check_nonce_sequence(sources: &Sources<'_>, report: &mut ReconciliationReport) -> Result<(), ReconcileError> {
    if let Some(gap) = sources.wallet.nonce_gap().await? {
        report.differences.push(Difference {
            check: Check::NonceSequence,
            subject: format!("nonce {}", gap.chain_next),
            message: gap.describe(&sources.wallet.address().to_checksum(None)),
        });
    }
    Ok(())
}

async fn check_intents(
    pool: &PgPool,
    sources: &Sources<'_>,
    window: Duration,
    report: &mut ReconciliationReport,
) -> Result<(), ReconcileError> {
    let rows = sqlx::query(
        "SELECT i.purpose_key, i.asset, i.to_address, i.amount_base_units::text AS amount, i.status, i.confirmed_tx_hash,
                i.created_at < now() - $2::interval AS past_grace,
                COALESCE(array_agg(a.tx_hash ORDER BY a.attempt) FILTER (WHERE a.tx_hash IS NOT NULL AND NOT a.cancels), '{}') AS attempts
         FROM transfer_intents i LEFT JOIN transfer_attempts a USING (purpose_key)
         WHERE i.created_at >= now() - $1::interval OR i.status = 'signed'
         GROUP BY i.purpose_key
         ORDER BY i.created_at",
    )
    .bind(interval(window))
    .bind(interval(OPEN_INTENT_GRACE))
    .fetch_all(pool)
    .await?;
    for row in rows {
        report.intents_checked += 1;
        let asset_name: String = row.get("asset");
        let asset = match asset_name.as_str() {
            "ETH" => Asset::Eth,
            contract => Asset::Erc20(Address::from_str(contract).map_err(|_| ReconcileError::Corrupt(contract.to_owned()))?),
        };
        let to: String = row.get("to_address");
        let intent = RecordedIntent {
            purpose_key: row.get("purpose_key"),
            status: row.get("status"),
            to: Address::from_str(&to).map_err(|_| ReconcileError::Corrupt(to.clone()))?,
            amount: u256(row.get("amount"))?,
        };
        let difference = match row.get::<Option<String>, _>("confirmed_tx_hash") {
            Some(tx_hash) => {
                let mined = sources.wallet.mined_outgoing(&tx_hash, asset).await?;
                intent_difference(&intent, &tx_hash, mined.as_ref())
            }
            // Open: its run polls it; past the grace, a mined attempt the ledger has not
            // recorded means nobody is looking.
            None if row.get::<bool, _>("past_grace") => {
                let mut found = None;
                for tx_hash in row.get::<Vec<String>, _>("attempts") {
                    if let Some(mined) = sources.wallet.mined_outgoing(&tx_hash, asset).await? {
                        found = Some(format!(
                            "{} is recorded open, but {tx_hash} was mined in block {} ({})",
                            intent.purpose_key,
                            mined.block,
                            describe(&mined.payments)
                        ));
                        break;
                    }
                }
                found
            }
            None => None,
        };
        if let Some(message) = difference {
            report.differences.push(Difference { check: Check::IntentOnChain, subject: intent.purpose_key, message });
        }
    }
    Ok(())
}

/// An exchange and the transfer the ledger made to its pay-in address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExchangeDeposit {
    pub exchange_id: String,
    pub from_amount: Decimal,
    pub payin_address: String,
    /// ChangeNow's status (live when it could be asked, else as last polled).
    pub status: String,
    /// What ChangeNow says arrived, when it says.
    pub received: Option<Decimal>,
    pub payin_hash: Option<String>,
    /// The confirmed transfer: recipient, amount (in the exchange's currency) and hash.
    pub deposit: Option<(String, Decimal, String)>,
}

pub fn deposit_difference(e: &ExchangeDeposit) -> Option<String> {
    let id = &e.exchange_id;
    let Some((to, amount, tx_hash)) = &e.deposit else {
        return DEPOSIT_SEEN
            .contains(&e.status.as_str())
            .then(|| format!("ChangeNow reports exchange {id} '{}', but the ledger sent it no confirmed deposit", e.status));
    };
    if !to.eq_ignore_ascii_case(&e.payin_address) {
        return Some(format!("exchange {id}'s deposit {tx_hash} went to {to}, not its pay-in address {}", e.payin_address));
    }
    if amount.normalize() != e.from_amount.normalize() {
        return Some(format!("exchange {id} was ordered for {} but its deposit {tx_hash} sent {amount}", e.from_amount));
    }
    if let Some(received) = e.received.filter(|received| received.normalize() != amount.normalize()) {
        return Some(format!("the ledger sent exchange {id} {amount} in {tx_hash}, but ChangeNow says it received {received}"));
    }
    match &e.payin_hash {
        Some(payin_hash) if !payin_hash.eq_ignore_ascii_case(tx_hash) => {
            Some(format!("ChangeNow credits exchange {id} with deposit {payin_hash}, but the ledger's deposit is {tx_hash}"))
        }
        _ => None,
    }
}

async fn check_exchanges(
    pool: &PgPool,
    sources: &Sources<'_>,
    window: Duration,
    report: &mut ReconciliationReport,
) -> Result<(), ReconcileError> {
    let rows = sqlx::query(
        "SELECT e.exchange_id, e.from_currency, e.from_amount::text AS from_amount, e.payin_address, e.status, e.amount_from::text AS amount_from,
                e.payin_hash, i.to_address, i.amount_base_units::text AS deposit_units, i.confirmed_tx_hash,
                EXISTS (SELECT 1 FROM transfer_intents o WHERE o.purpose_key = e.purpose_key AND o.status = 'signed'
                        AND o.created_at >= now() - $2::interval) AS deposit_confirming
         FROM changenow_exchanges e
         LEFT JOIN transfer_intents i ON i.purpose_key = e.purpose_key AND i.status = 'confirmed'
         WHERE e.created_at >= now() - $1::interval
         ORDER BY e.created_at",
    )
    .bind(interval(window))
    .bind(interval(OPEN_INTENT_GRACE))
    .fetch_all(pool)
    .await?;
    for row in rows {
        report.exchanges_checked += 1;
        // Mined and waiting for its confirmations: its run records it; ChangeNow may see it first.
        if row.get::<bool, _>("deposit_confirming") {
            continue;
        }
        let decimals = if row.get::<String, _>("from_currency").eq_ignore_ascii_case("eth") { 18 } else { 6 };
        let deposit = match (row.get::<Option<String>, _>("to_address"), row.get::<Option<String>, _>("deposit_units")) {
            (Some(to), Some(units)) => Some((to, units_to_amount(u256(&units)?, decimals)?, row.get("confirmed_tx_hash"))),
            _ => None,
        };
        let mut exchange = ExchangeDeposit {
            exchange_id: row.get("exchange_id"),
            from_amount: decimal(row.get("from_amount"))?,
            payin_address: row.get("payin_address"),
            status: row.get("status"),
            received: row.get::<Option<String>, _>("amount_from").map(|a| decimal(&a)).transpose()?,
            payin_hash: row.get("payin_hash"),
            deposit,
        };
        if let Some(changenow) = sources.changenow {
            match changenow.exchange_status(&exchange.exchange_id).await {
                Ok(live) => {
                    exchange.status = live.status.as_str().to_owned();
                    exchange.received = live.amount_from.or(exchange.received);
                    exchange.payin_hash = live.payin_hash.or(exchange.payin_hash);
                }
                Err(_) => report.exchanges_unreachable += 1,
            }
        }
        if let Some(message) = deposit_difference(&exchange) {
            report.differences.push(Difference { check: Check::ExchangeDeposit, subject: exchange.exchange_id, message });
        }
    }
    Ok(())
}

/// Completed batches whose confirmed outflows differ from what the batch records. Payout legs
/// count when their exchange finished (a refunded leg's USDT came back).
async fn check_batches(pool: &PgPool, window: Duration, report: &mut ReconciliationReport) -> Result<(), ReconcileError> {
    let rows = sqlx::query(
        "SELECT 'conversion ' || b.batch_conversion_id AS subject, b.total_eth AS recorded, 18 AS decimals,
                COALESCE((SELECT sum(i.amount_base_units) FROM transfer_intents i
                          WHERE i.purpose_key = 'conversion-' || b.batch_conversion_id AND i.status = 'confirmed'), 0)::text AS sent
         FROM batch_conversions b
         WHERE b.conversion_status = 'completed' AND b.completed_at >= now() - $1::interval
         UNION ALL
         SELECT 'payout ' || b.batch_id, b.total_amount_usdt, 6,
                COALESCE((SELECT sum(i.amount_base_units) FROM transfer_intents i
                          JOIN changenow_exchanges e ON e.purpose_key = i.purpose_key AND e.status = 'finished'
                          WHERE i.purpose_key LIKE 'payout-' || b.batch_id || '-%' AND i.status = 'confirmed'), 0)::text
         FROM payout_batches b
         WHERE b.status = 'completed' AND b.completed_at >= now() - $1::interval
         UNION ALL
         SELECT 'instant payout ' || p.payment_id, p.amount_eth, 18,
                COALESCE((SELECT sum(i.amount_base_units) FROM transfer_intents i
                          WHERE i.purpose_key = 'instant-payout-' || p.payment_id AND i.status = 'confirmed'), 0)::text
         FROM instant_payouts p
         WHERE p.status = 'completed' AND p.updated_at >= now() - $1::interval",
    )
    .bind(interval(window))
    .fetch_all(pool)
    .await?;
    for row in rows {
        report.batches_checked += 1;
        let recorded: Decimal = row.get("recorded");
        let sent = units_to_amount(u256(row.get("sent"))?, row.get::<i32, _>("decimals") as u32)?;
        if sent != recorded.normalize() {
            let subject: String = row.get("subject");
            let message = format!("{subject} is completed for {recorded}, but {sent} left the hot wallet for it");
            report.differences.push(Difference { check: Check::BatchOutflow, subject, message });
        }
    }
    Ok(())
}

async fn check_coverage(pool: &PgPool, sources: &Sources<'_>, report: &mut ReconciliationReport) -> Result<(), ReconcileError> {
    // A rejected instant payout's ETH stays in the hot wallet, still the client's until an
    // operator settles it another way: the wallet must cover it.
    let eth: (Decimal, Decimal) = sqlx::query_as(
        "SELECT
           (SELECT COALESCE(sum(a.accumulated_eth), 0) FROM payout_accumulation a
            WHERE a.conversion_status <> 'completed' AND NOT EXISTS (
                SELECT 1 FROM transfer_intents i
                WHERE i.purpose_key = 'conversion-' || a.batch_conversion_id AND i.status = 'confirmed'))
         + (SELECT COALESCE(sum(p.amount_eth), 0) FROM instant_payouts p
            WHERE p.status IN ('pending', 'awaiting_approval', 'held', 'exchange_created', 'rejected') AND NOT EXISTS (
                SELECT 1 FROM transfer_intents i WHERE i.purpose_key = 'instant-payout-' || p.payment_id AND i.status = 'confirmed')),
           (SELECT COALESCE(sum(fee_amount_eth), 0) FROM payments WHERE fee_amount_eth IS NOT NULL)",
    )
    .fetch_one(pool)
    .await?;
    // Sent, or about to be, and not yet recorded confirmed: the wallet may no longer hold it.
    let eth_in_flight: String = sqlx::query_scalar(
        "SELECT COALESCE(sum(amount_base_units), 0)::text FROM transfer_intents
         WHERE status = 'signed' AND asset = 'ETH' AND (purpose_key LIKE 'conversion-%' OR purpose_key LIKE 'instant-payout-%')",
    )
    .fetch_one(pool)
    .await?;
    let on_chain = units_to_amount(sources.wallet.balance(Asset::Eth).await?, 18)?;
    let in_flight = units_to_amount(u256(&eth_in_flight)?, 18)?;
    report.coverage.push(Coverage { asset: "eth", on_chain, owed_to_clients: eth.0, in_flight, fees_kept: eth.1 });
    for (coin, contract) in [("usdt", sources.usdt_contract), ("usdc", sources.usdc_contract)] {
        let Some(contract) = contract else { continue };
        let (owed, in_flight_units): (Decimal, String) = sqlx::query_as(
            "SELECT
               (SELECT COALESCE(sum(accumulated_amount_usdt), 0) FROM payout_accumulation
                WHERE conversion_status = 'completed' AND NOT is_paid_out AND settlement_coin = $1),
               (SELECT COALESCE(sum(i.amount_base_units), 0) FROM transfer_intents i
                JOIN payout_batches b ON b.batch_id::text = substring(i.purpose_key FROM 8 FOR 36)
                WHERE i.purpose_key LIKE 'payout-%' AND i.status IN ('signed', 'confirmed') AND b.status <> 'completed'
                  AND b.settlement_coin = $1)::text",
        )
        .bind(coin)
        .fetch_one(pool)
        .await?;
        let on_chain = units_to_amount(sources.wallet.balance(Asset::Erc20(contract)).await?, 6)?;
        let in_flight = units_to_amount(u256(&in_flight_units)?, 6)?;
        report.coverage.push(Coverage { asset: coin, on_chain, owed_to_clients: owed, in_flight, fees_kept: Decimal::ZERO });
    }
    for coverage in &report.coverage {
        if coverage.surplus() < Decimal::ZERO {
            report.differences.push(Difference {
                check: Check::WalletCoverage,
                subject: coverage.asset.to_owned(),
                message: format!(
                    "the hot wallet holds {} {} but owes clients {} ({} of it already on its way out): short by {}",
                    coverage.on_chain,
                    coverage.asset,
                    coverage.owed_to_clients,
                    coverage.in_flight,
                    (-coverage.surplus()).normalize()
                ),
            });
        }
    }
    Ok(())
}

impl fmt::Display for ReconciliationReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "checked: {} outbox intents, {} exchanges ({} not reachable at ChangeNow), {} completed batches",
            self.intents_checked, self.exchanges_checked, self.exchanges_unreachable, self.batches_checked
        )?;
        writeln!(
            f,
            "{:<6} {:>28} {:>28} {:>22} {:>28} {:>22}",
            "asset", "on chain", "owed to clients", "in flight", "surplus", "fees kept"
        )?;
        for c in &self.coverage {
            writeln!(
                f,
                "{:<6} {:>28} {:>28} {:>22} {:>28} {:>22}",
                c.asset,
                c.on_chain,
                c.owed_to_clients,
                c.in_flight,
                c.surplus(),
                c.fees_kept
            )?;
        }
        if self.differences.is_empty() {
            return writeln!(f, "no differences");
        }
        writeln!(f, "{} difference(s):", self.differences.len())?;
        for d in &self.differences {
            writeln!(f, "  [{}] {}: {}", d.check.as_str(), d.subject, d.message)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    const HASH: &str = "0xabc";

    fn intent(status: &str) -> RecordedIntent {
        RecordedIntent {
            purpose_key: "payout-b-0".into(),
            status: status.into(),
            to: Address::repeat_byte(7),
            amount: U256::from(5_000_000u64),
        }
    }

    fn mined(succeeded: bool, payments: Vec<(Address, U256)>) -> MinedOutgoing {
        MinedOutgoing { block: 9, succeeded, payments }
    }

    #[test]
    fn a_confirmed_intent_must_have_moved_exactly_its_amount_to_its_recipient() {
        let exact = mined(true, vec![(Address::repeat_byte(7), U256::from(5_000_000u64))]);
        assert_eq!(intent_difference(&intent("confirmed"), HASH, Some(&exact)), None);
        let less = mined(true, vec![(Address::repeat_byte(7), U256::from(4_000_000u64))]);
        assert!(intent_difference(&intent("confirmed"), HASH, Some(&less)).unwrap().contains("moved 4000000 base units"));
        let elsewhere = mined(true, vec![(Address::repeat_byte(8), U256::from(5_000_000u64))]);
        assert!(intent_difference(&intent("confirmed"), HASH, Some(&elsewhere)).is_some());
        assert!(intent_difference(&intent("confirmed"), HASH, Some(&mined(false, vec![]))).unwrap().contains("reverted"));
        assert!(intent_difference(&intent("confirmed"), HASH, None).unwrap().contains("does not have"));
    }

    #[test]
    fn reverted_and_cancelled_intents_must_have_moved_nothing() {
        assert_eq!(intent_difference(&intent("reverted"), HASH, Some(&mined(false, vec![]))), None);
        assert!(intent_difference(&intent("reverted"), HASH, Some(&mined(true, vec![]))).is_some());
        assert_eq!(intent_difference(&intent("cancelled"), HASH, Some(&mined(true, vec![]))), None);
        let moved = mined(true, vec![(Address::repeat_byte(7), U256::from(1u64))]);
        assert!(intent_difference(&intent("cancelled"), HASH, Some(&moved)).unwrap().contains("moved 1 base units"));
    }

    fn exchange() -> ExchangeDeposit {
        ExchangeDeposit {
            exchange_id: "x1".into(),
            from_amount: dec!(0.0500),
            payin_address: "0xAbC".into(),
            status: "finished".into(),
            received: Some(dec!(0.05)),
            payin_hash: Some("0xDEF".into()),
            deposit: Some(("0xabc".into(), dec!(0.05), "0xdef".into())),
        }
    }

    #[test]
    fn an_exchange_matches_its_deposit_in_address_amount_receipt_and_hash() {
        assert_eq!(deposit_difference(&exchange()), None);
        let mut e = exchange();
        e.deposit = Some(("0x999".into(), dec!(0.05), "0xdef".into()));
        assert!(deposit_difference(&e).unwrap().contains("not its pay-in address"));
        let mut e = exchange();
        e.received = Some(dec!(0.049));
        assert!(deposit_difference(&e).unwrap().contains("received 0.049"));
        let mut e = exchange();
        e.payin_hash = Some("0x111".into());
        assert!(deposit_difference(&e).unwrap().contains("credits exchange x1 with deposit 0x111"));
        let mut e = exchange();
        e.from_amount = dec!(0.06);
        assert!(deposit_difference(&e).is_some());
    }

    #[test]
    fn changenow_seeing_a_deposit_the_ledger_never_sent_is_a_difference() {
        let mut e = exchange();
        e.deposit = None;
        assert!(deposit_difference(&e).unwrap().contains("no confirmed deposit"));
        e.status = "waiting".into();
        assert_eq!(deposit_difference(&e), None);
    }

    #[test]
    fn base_units_become_exact_amounts() {
        assert_eq!(units_to_amount(U256::from(1_500_000u64), 6).unwrap(), dec!(1.5));
        let wei = U256::from_str("12345678901234567890").unwrap();
        assert_eq!(units_to_amount(wei, 18).unwrap(), dec!(12.34567890123456789));
    }

    #[test]
    fn a_shortfall_counts_what_is_already_on_its_way_out() {
        let c = Coverage { asset: "usdt", on_chain: dec!(90), owed_to_clients: dec!(100), in_flight: dec!(10), fees_kept: dec!(0) };
        assert_eq!(c.surplus(), dec!(0));
        let short = Coverage { in_flight: dec!(5), ..c };
        assert_eq!(short.surplus(), dec!(-5));
    }
}
