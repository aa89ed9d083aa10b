//! The hot wallet's and ChangeNow's safety rules against a real chain (issue 10):
//!
//! - item 13: anvil's public dev keys are refused on any other chain; a stored exchange is reused
//!   only for the same amount and payout address;
//! - item 9: incoming USDT counts only from the expected sender, to the hot wallet, once it has
//!   its confirmations; one payout hash completes one conversion batch;
//! - item 7: a stuck transfer is replaced only when underpriced against the base fee, never past
//!   `MAX_FEE_GWEI`; reaching the ceiling raises an alert and leaves the transfer as it is.
//!
//! Each test runs its own anvil (automine off, base fees forced) and its own database.

use activities::{
    changenow::{ChangeNowActivities, ChangeNowClient, REQUEST_TIMEOUT},
    ethereum::{Asset, EthereumActivities, HotWallet, OutboxSettings, TransferRequest, TransferState},
};
use alloy::{
    primitives::{Address, U256},
    signers::local::PrivateKeySigner,
};
use changenow_simulator::chain_setup::{deploy_test_usdt, mint_test_usdt};
use integration_tests::chain::wait_confirmed;
use integration_tests::{
    chain::{Anvil, TestChain, HOT_WALLET, HOT_WALLET_KEY},
    config, fresh_database,
};
use rust_decimal_macros::dec;
use serde_json::json;
use sqlx::PgPool;
use std::{str::FromStr, sync::Arc, time::Duration};
use workflows::{
    activity_definitions::{ExchangeOrder, IncomingTransferMatch, IncomingTransferQuery},
    domain::{ChainAsset, ExchangePair},
};

const GWEI: u128 = 1_000_000_000;

/// The ten accounts of the public mnemonic `test test ... junk` that anvil and hardhat fund.
const ANVIL_DEV_KEYS: [&str; 10] = [
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
    "0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a",
    "0x8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba",
    "0x92db14e403b83dfe3df233f83dfa3a0d7096f21ca9b0d6d6b8d88b2b4ec1564e",
    "0x4bbbf85ce3377467afe5d46f804f221813b2bb87f24d81f60f1fcdbf7cbf4356",
    "0xdbda1821b80551c9d65939329250298aa3472ba22feea921c0cf5d620ea67b97",
    "0x2a871d0798f97d79848a013d4936a73bf4cc922c825d33c1cf7073dff6d409c6",
];

fn settings(confirmations: u64, stuck_after: Duration, max_fee_gwei: u128) -> OutboxSettings {
    OutboxSettings {
        confirmations,
        stuck_after,
        max_fee_per_gas: max_fee_gwei * GWEI,
        abandon_unsent_after: OutboxSettings::ABANDON_UNSENT_AFTER,
    }
}

async fn wallet(pool: &PgPool, chain: &Anvil, key: &str, settings: OutboxSettings) -> HotWallet {
    HotWallet::connect(pool.clone(), &chain.url, key, settings).await.expect("hot wallet")
}

fn address_of(key: &str) -> Address {
    PrivateKeySigner::from_str(key).unwrap().address()
}

async fn set_next_base_fee(chain: &Anvil, wei: u128) {
    chain.rpc("anvil_setNextBlockBaseFeePerGas", json!([format!("{wei:#x}")])).await;
}

/// `(attempt, max_fee_per_gas)` of every signed attempt of `purpose_key`.
async fn attempts(pool: &PgPool, purpose_key: &str) -> Vec<(i32, u128)> {
    let rows: Vec<(i32, String)> =
        sqlx::query_as("SELECT attempt, max_fee_per_gas::text FROM transfer_attempts WHERE purpose_key = $1 ORDER BY attempt")
            .bind(purpose_key)
            .fetch_all(pool)
            .await
            .unwrap();
    rows.into_iter().map(|(attempt, fee)| (attempt, fee.parse().unwrap())).collect()
}

async fn fee_ceiling_alerts(pool: &PgPool, purpose_key: &str) -> Vec<String> {
    sqlx::query_scalar("SELECT message FROM alerts WHERE kind = 'transfer_fee_ceiling' AND subject = $1")
        .bind(purpose_key)
        .fetch_all(pool)
        .await
        .unwrap()
}

fn eth(purpose_key: &str, amount: u64) -> TransferRequest {
    TransferRequest {
        purpose_key: purpose_key.into(),
        asset: Asset::Eth,
        to: Address::from([0x77; 20]).to_string(),
        amount: U256::from(amount),
    }
}

// ---- item 13: public dev keys ------------------------------------------------------------------

#[tokio::test]
async fn anvil_dev_keys_are_refused_on_a_chain_that_is_not_anvil() {
    let mainnet_like = Anvil::start_on_chain(1).await;
    let (pool, _) = fresh_database(&config()).await;
    for key in ANVIL_DEV_KEYS {
        let Err(error) = HotWallet::connect(pool.clone(), &mainnet_like.url, key, settings(1, Duration::from_secs(60), 200)).await else {
            panic!("anvil's dev account {} was accepted on chain 1", address_of(key));
        };
        let message = error.to_string();
        assert!(!error.is_retryable(), "{message}");
        assert!(message.contains("chain id 1") && message.contains("31337"), "{message}");
        assert!(message.contains(&address_of(key).to_checksum(None)), "names the account: {message}");
        assert!(!message.contains(&key[2..]), "never prints the key: {message}");
    }
    // A key of its own is fine there, and the dev keys are fine on anvil itself.
    let own_key = "0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318";
    wallet(&pool, &mainnet_like, own_key, settings(1, Duration::from_secs(60), 200)).await;
    // (A database belongs to one chain: anvil gets its own.)
    let anvil = Anvil::start().await;
    let (pool, _) = fresh_database(&config()).await;
    for key in ANVIL_DEV_KEYS {
        wallet(&pool, &anvil, key, settings(1, Duration::from_secs(60), 200)).await;
    }
}

// ---- item 13: a stored exchange is reused only for the same order --------------------------------

#[tokio::test]
async fn a_stored_exchange_is_reused_only_for_the_same_amount_and_payout_address() {
    let chain = TestChain::start("chain-safety-key").await;
    let (pool, _) = fresh_database(&config()).await;
    let client = ChangeNowClient::new(&chain.changenow_url(), "chain-safety-key", REQUEST_TIMEOUT).unwrap();
    let changenow = ChangeNowActivities::new(client, pool, HOT_WALLET.to_owned());
    let order = ExchangeOrder {
        purpose_key: "payment:4242".into(),
        pair: ExchangePair::new(("eth", "eth"), ("usdt", "eth")),
        from_amount: dec!(0.05),
        payout_address: Address::from([0x42; 20]).to_checksum(None),
    };
    let ticket = changenow.create_once(&order).await.unwrap();
    // A retry of the same order, even with the address in another case, gets the stored exchange.
    assert_eq!(changenow.create_once(&order).await.unwrap(), ticket);
    let lowercase = ExchangeOrder { payout_address: order.payout_address.to_lowercase(), ..order.clone() };
    assert_eq!(changenow.create_once(&lowercase).await.unwrap(), ticket);

    let more = ExchangeOrder { from_amount: dec!(0.06), ..order.clone() };
    let error = changenow.create_once(&more).await.unwrap_err();
    let message = error.to_string();
    assert!(!error.is_retryable(), "{message}");
    assert!(message.contains("amount") && message.contains("0.05") && message.contains("0.06"), "{message}");
    assert!(message.contains(&ticket.exchange_id) && message.contains("payment:4242"), "{message}");

    let elsewhere = ExchangeOrder { payout_address: Address::from([0x43; 20]).to_checksum(None), ..order.clone() };
    let error = changenow.create_once(&elsewhere).await.unwrap_err();
    let message = error.to_string();
    assert!(!error.is_retryable(), "{message}");
    assert!(message.contains("payout address") && message.contains(&elsewhere.payout_address), "{message}");

    assert_eq!(chain.exchanges().await.len(), 1, "no second exchange was created");
}

// ---- item 9: incoming USDT ------------------------------------------------------------------

/// A chain with the test USDT, the hot wallet (anvil's first account) and a sender (the second)
/// holding 10 USDT.
struct UsdtChain {
    anvil: Anvil,
    usdt: Address,
    pool: PgPool,
    sender_key: &'static str,
}

impl UsdtChain {
    async fn start() -> Self {
        let anvil = Anvil::start().await;
        let (usdt, _) = deploy_test_usdt(&anvil.url).await.unwrap();
        let (pool, _) = fresh_database(&config()).await;
        let sender_key = ANVIL_DEV_KEYS[1];
        mint_test_usdt(&anvil.url, usdt, address_of(sender_key), 10_000_000).await.unwrap();
        Self { anvil, usdt, pool, sender_key }
    }

    /// Sends `units` of USDT from the sender to the hot wallet; returns the mined hash.
    async fn pay_hot_wallet(&self, units: u64) -> String {
        let sender = wallet(&self.pool, &self.anvil, self.sender_key, settings(1, Duration::from_secs(60), 200)).await;
        let request = TransferRequest {
            purpose_key: format!("to-hot-wallet:{units}"),
            asset: Asset::Erc20(self.usdt),
            to: HOT_WALLET.to_owned(),
            amount: U256::from(units),
        };
        sender.prepare_transfer(&request).await.unwrap();
        sender.broadcast(&request.purpose_key).await.unwrap();
        wait_confirmed(&sender, &request.purpose_key).await
    }

    async fn hot_wallet(&self, confirmations: u64) -> EthereumActivities {
        let hot = wallet(&self.pool, &self.anvil, HOT_WALLET_KEY, settings(confirmations, Duration::from_secs(60), 200)).await;
        EthereumActivities::new(Arc::new(hot), Some(self.usdt))
    }
}

fn usdt_query(tx_hash: &str, expected_sender: Option<Address>) -> IncomingTransferMatch {
    let query = IncomingTransferQuery { tx_hash: tx_hash.to_owned(), asset: ChainAsset::Usdt };
    match expected_sender {
        Some(sender) => query.from_sender(sender.to_checksum(None)),
        None => query.into(),
    }
}

#[tokio::test]
async fn incoming_usdt_counts_only_once_it_has_its_confirmations() {
    let chain = UsdtChain::start().await;
    let ethereum = chain.hot_wallet(3).await;
    let tx_hash = chain.pay_hot_wallet(2_500_000).await;
    let sender = Some(address_of(chain.sender_key));

    // Mined in the latest block: 1 of 3 confirmations, then 2 of 3. Retried until then.
    for _ in 0..2 {
        let error = ethereum.incoming(usdt_query(&tx_hash, sender)).await.unwrap_err();
        assert!(error.is_retryable(), "{error}");
        assert!(error.to_string().contains("of 3 confirmations"), "{error}");
        chain.anvil.rpc("evm_mine", json!([])).await;
    }
    let received = ethereum.incoming(usdt_query(&tx_hash, sender)).await.unwrap();
    assert_eq!(received.amount, dec!(2.5));
    assert_eq!(received.tx_hash, tx_hash);
}

#[tokio::test]
async fn incoming_usdt_counts_only_from_the_expected_sender() {
    let chain = UsdtChain::start().await;
    let ethereum = chain.hot_wallet(1).await;
    let tx_hash = chain.pay_hot_wallet(1_250_000).await;

    let from_sender = ethereum.incoming(usdt_query(&tx_hash, Some(address_of(chain.sender_key)))).await.unwrap();
    assert_eq!(from_sender.amount, dec!(1.25));
    let from_someone_else = ethereum.incoming(usdt_query(&tx_hash, Some(address_of(ANVIL_DEV_KEYS[2])))).await.unwrap();
    assert_eq!(from_someone_else.amount, dec!(0), "the Transfer came from another account");
    let any_sender = ethereum.incoming(usdt_query(&tx_hash, None)).await.unwrap();
    assert_eq!(any_sender.amount, dec!(1.25));

    let bad = IncomingTransferMatch { expected_sender: Some("not-an-address".into()), ..usdt_query(&tx_hash, None) };
    let error = ethereum.incoming(bad).await.unwrap_err();
    assert!(!error.is_retryable() && error.to_string().contains("not-an-address"), "{error}");
}

#[tokio::test]
async fn one_payout_hash_completes_one_conversion_batch() {
    let (pool, _) = fresh_database(&config()).await;
    let insert = |status: &'static str, hash: String| {
        let pool = pool.clone();
        async move {
            sqlx::query(
                "INSERT INTO batch_conversions (batch_conversion_id, total_eth_usd, total_eth, threshold_at_creation,
                     conversion_status, actual_usdt_received, conversion_tx_hash)
                 VALUES ($1, 100, 0.03, 20, $2, CASE WHEN $2 = 'completed' THEN 99.5 END, $3)",
            )
            .bind(uuid::Uuid::new_v4())
            .bind(status)
            .bind(hash)
            .execute(&pool)
            .await
        }
    };
    let hash = format!("0x{}", "ab".repeat(32));
    insert("completed", hash.clone()).await.expect("the first batch completes");
    let error = insert("completed", hash.to_uppercase().replacen("0X", "0x", 1)).await.unwrap_err();
    assert!(error.to_string().contains("batch_conversions_payout_credited_once"), "{error}");
    // A failed batch may still name the hash it was shown.
    insert("failed", hash.clone()).await.expect("a failed batch is no credit");
    insert("completed", format!("0x{}", "cd".repeat(32))).await.expect("another hash completes another batch");
}

// ---- item 7: fee bumps ----------------------------------------------------------------------

#[tokio::test]
async fn a_slow_transfer_that_pays_the_base_fee_is_not_replaced() {
    let chain = Anvil::start().await;
    let (pool, _) = fresh_database(&config()).await;
    let hot = wallet(&pool, &chain, HOT_WALLET_KEY, settings(1, Duration::from_millis(500), 200)).await;
    chain.rpc("evm_setAutomine", json!([false])).await;

    let first = hot.prepare_transfer(&eth("slow:1", 1_000_000)).await.unwrap();
    hot.broadcast("slow:1").await.unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;
    // Long past `stuck_after`, but its fees still cover the base fee: time alone changes nothing.
    for _ in 0..2 {
        let state = hot.check("slow:1").await.unwrap();
        assert_eq!(state, TransferState::Pending { latest_tx_hash: first.clone(), replaced: false });
    }
    assert_eq!(attempts(&pool, "slow:1").await.len(), 1);

    chain.rpc("evm_mine", json!([])).await;
    assert_eq!(wait_confirmed(&hot, "slow:1").await, first);
}

#[tokio::test]
async fn an_underpriced_transfer_is_bumped_up_to_max_fee_and_no_further_with_an_alert() {
    let chain = Anvil::start().await;
    let (pool, _) = fresh_database(&config()).await;
    let ceiling = 5 * GWEI;
    let hot = wallet(&pool, &chain, HOT_WALLET_KEY, settings(1, Duration::from_millis(300), 5)).await;
    chain.rpc("evm_setAutomine", json!([false])).await;

    let first = hot.prepare_transfer(&eth("bump:1", 2_000_000)).await.unwrap();
    hot.broadcast("bump:1").await.unwrap();
    let signed = attempts(&pool, "bump:1").await;
    assert!(signed[0].1 < 4 * GWEI, "fresh anvil fees: {signed:?}");

    // The base fee rises above the transfer's max fee, not above the ceiling: replaced, capped at
    // the ceiling (the estimate would offer twice the base fee).
    set_next_base_fee(&chain, 4 * GWEI).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let TransferState::Pending { latest_tx_hash: replacement, replaced: true } = hot.check("bump:1").await.unwrap() else {
        panic!("an underpriced transfer must be replaced");
    };
    assert_ne!(replacement, first);
    assert_eq!(attempts(&pool, "bump:1").await.last().unwrap().1, ceiling, "bumped to the ceiling, not past it");
    assert!(fee_ceiling_alerts(&pool, "bump:1").await.is_empty());

    // Then above the ceiling: nothing more is signed, the transfer stays as it is, one alert.
    set_next_base_fee(&chain, 50 * GWEI).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    for _ in 0..3 {
        let state = hot.check("bump:1").await.unwrap();
        assert_eq!(state, TransferState::Pending { latest_tx_hash: replacement.clone(), replaced: false });
    }
    let all = attempts(&pool, "bump:1").await;
    assert_eq!(all.len(), 2, "{all:?}");
    assert!(all.iter().all(|(_, fee)| *fee <= ceiling), "{all:?}");
    let alerts = fee_ceiling_alerts(&pool, "bump:1").await;
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert!(alerts[0].contains("MAX_FEE_GWEI") && alerts[0].contains(&replacement), "{}", alerts[0]);

    // When fees fall again the transfer lands as it is, once.
    set_next_base_fee(&chain, GWEI).await;
    chain.rpc("evm_mine", json!([])).await;
    chain.rpc("evm_setAutomine", json!([true])).await;
    assert_eq!(wait_confirmed(&hot, "bump:1").await, replacement);
    assert_eq!(chain.transaction_count(hot.address()).await, 1);
}
