//! Instant payouts end to end: webhook -> PaymentWorkflow -> InstantPayoutWorkflow -> ChangeNow
//! simulator -> anvil. Each test has its own chain, so balances and nonces are exact.

use alloy::{
    primitives::{Address, U256},
    providers::{Provider, ProviderBuilder},
};
use integration_tests::{chain::HOT_WALLET, fresh_payment_id, test_ipn, TestApp};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use serde_json::{json, Value};
use std::{os::unix::process::ExitStatusExt, str::FromStr, time::Duration};
use workflows::domain::{to_base_units, ChainAsset};

const WITHIN: Duration = Duration::from_secs(60);

/// A client wallet nobody else touches: its USDT balance is exactly what the payout sent.
fn client_wallet(seed: u8) -> String {
    Address::from([seed; 20]).to_checksum(None)
}

fn hot_wallet() -> Address {
    Address::from_str(HOT_WALLET).unwrap()
}

fn decimal(value: &Value) -> Decimal {
    Decimal::from_str(&value.to_string().trim_matches('"').to_string()).unwrap_or_else(|_| panic!("not a decimal: {value}"))
}

async fn intents(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM transfer_intents").fetch_one(&app.pool).await.unwrap()
}

async fn attempts(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM transfer_attempts").fetch_one(&app.pool).await.unwrap()
}

/// Pays a 100 USD subscription settled as 0.04 ETH: 3 % fee leaves 0.0388 ETH for the client.
async fn pay(app: &TestApp, client_id: &str) -> i64 {
    let payment_id = fresh_payment_id();
    let (status, body) = app.send_ipn(&test_ipn(payment_id, client_id, dec!(100), dec!(0.04))).await;
    assert_eq!(status, 200, "{body}");
    payment_id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instant_payment_reaches_the_client_with_exact_balances_on_chain() {
    let app = TestApp::spawn().await;
    let wallet = client_wallet(0x71);
    app.add_instant_client("-100701", "usdt", "eth", &wallet).await;
    let eth_before = app.chain.anvil.balance(hot_wallet()).await;

    let payment_id = pay(&app, "-100701").await;
    let row = app.wait_for_instant_payout(payment_id, "completed", WITHIN).await;

    let net_wei = U256::from(to_base_units(dec!(0.0388), ChainAsset::Eth).unwrap());
    let exchanges = app.chain.exchanges().await;
    assert_eq!(exchanges.len(), 1, "one exchange: {exchanges:?}");
    let payin = Address::from_str(exchanges[0]["payinAddress"].as_str().unwrap()).unwrap();
    assert_eq!(app.chain.anvil.balance(payin).await, net_wei, "the exchange got exactly the net ETH");

    // 0.0388 ETH * 3000 USD / 1 USD * (1 - 0.5 %) = 115.818 USDT, as the simulator quotes it.
    assert_eq!(decimal(&row["amount_received"]), dec!(115.818));
    let expected_units = U256::from(to_base_units(dec!(115.818), ChainAsset::Usdt).unwrap());
    assert_eq!(app.chain.usdt_balance(Address::from_str(&wallet).unwrap()).await, expected_units);

    // The hot wallet paid the net amount plus gas, once.
    let provider = ProviderBuilder::new().connect_http(app.chain.anvil.url.parse().unwrap());
    let payin_tx = row["payin_tx_hash"].as_str().unwrap().parse().unwrap();
    let receipt = provider.get_transaction_receipt(payin_tx).await.unwrap().expect("payin receipt");
    let gas = U256::from(receipt.gas_used) * U256::from(receipt.effective_gas_price);
    assert_eq!(eth_before - app.chain.anvil.balance(hot_wallet()).await, net_wei + gas);
    assert_eq!(app.chain.anvil.transaction_count(hot_wallet()).await, 1);
    assert_eq!(row["exchange_id"], exchanges[0]["id"]);
    assert!(row["payout_hash"].as_str().is_some_and(|h| h.starts_with("0x")), "{row}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changenow_failing_twice_still_gives_one_exchange_and_one_transaction() {
    let app = TestApp::spawn().await;
    app.add_instant_client("-100702", "xmr", "xmr", integration_tests::XMR_WALLET).await;
    app.chain.control("/sim/faults", json!({"fail_next": {"create_exchange": 2}, "http_status": 502})).await;

    let payment_id = pay(&app, "-100702").await;
    let row = app.wait_for_instant_payout(payment_id, "completed", WITHIN).await;

    assert_eq!(app.chain.exchanges().await.len(), 1);
    assert_eq!(intents(&app).await, 1);
    assert_eq!(app.chain.anvil.transaction_count(hot_wallet()).await, 1);
    assert!(row["payout_hash"].as_str().is_some_and(|h| h.starts_with("simulated-xmr")), "{row}");

    // The client sees it on its status, with the transaction that paid it.
    let key = payout_starter::api::new_client_key();
    assert!(activities::db::clients::set_key_hash(&app.pool, "-100702", &payout_starter::api::key_hash(&key)).await.unwrap());
    let status: serde_json::Value = app
        .http
        .get(format!("http://{}/api/v1/clients/-100702/status", app.addr))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let listed = &status["instant_payouts"][0];
    assert_eq!((listed["payment_id"].as_i64(), listed["status"].as_str()), (Some(payment_id), Some("completed")), "{status}");
    assert_eq!(listed["payout_hash"], row["payout_hash"]);
    let page = app.http.get(format!("http://{}/clients/-100702?key={key}", app.addr)).send().await.unwrap().text().await.unwrap();
    assert!(page.contains(row["payout_hash"].as_str().unwrap()), "the page lists it too");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_right_after_the_broadcast_sends_the_payout_exactly_once() {
    let config = integration_tests::config();
    let temporal = config.temporal_address.clone();
    let mut app = TestApp::spawn_without_worker(config, &temporal).await;
    let wallet = client_wallet(0x73);
    app.add_instant_client("-100703", "usdt", "eth", &wallet).await;

    let doomed = app.spawn_worker_that_dies_after_broadcast();
    let payment_id = pay(&app, "-100703").await;
    let status = integration_tests::wait_for_self_kill(doomed).await;
    assert_eq!(status.signal(), Some(9), "the worker died by SIGKILL after broadcasting");
    let broadcast: bool =
        sqlx::query_scalar("SELECT bool_and(last_broadcast_at IS NOT NULL) FROM transfer_attempts").fetch_one(&app.pool).await.unwrap();
    assert!(broadcast, "the transfer went out before the worker died");

    app.start_worker();
    let row = app.wait_for_instant_payout(payment_id, "completed", Duration::from_secs(120)).await;

    assert_eq!(app.chain.anvil.transaction_count(hot_wallet()).await, 1, "one transaction from the hot wallet");
    assert_eq!(attempts(&app).await, 1, "the retry re-sent the stored bytes");
    assert_eq!(app.chain.exchanges().await.len(), 1);
    let payin = Address::from_str(app.chain.exchanges().await[0]["payinAddress"].as_str().unwrap()).unwrap();
    assert_eq!(app.chain.anvil.balance(payin).await, U256::from(to_base_units(dec!(0.0388), ChainAsset::Eth).unwrap()));
    assert_eq!(decimal(&row["amount_received"]), dec!(115.818));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_exchange_is_recorded_and_nothing_more_is_sent() {
    let app = TestApp::spawn().await;
    let wallet = client_wallet(0x74);
    app.add_instant_client("-100704", "usdt", "eth", &wallet).await;
    app.chain.control("/sim/rules", json!({"payout_address": wallet, "rule": "failed"})).await;

    let payment_id = pay(&app, "-100704").await;
    let row = app.wait_for_instant_payout(payment_id, "failed", WITHIN).await;

    assert!(row["reason"].as_str().unwrap().contains("ended 'failed'"), "{row}");
    assert!(row["payin_tx_hash"].is_string(), "the deposit was sent before ChangeNow failed: {row}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(app.chain.anvil.transaction_count(hot_wallet()).await, 1, "nothing after the deposit");
    assert_eq!(app.chain.usdt_balance(Address::from_str(&wallet).unwrap()).await, U256::ZERO);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refunded_exchange_records_the_refund_seen_on_chain() {
    let app = TestApp::spawn().await;
    let wallet = client_wallet(0x75);
    app.add_instant_client("-100705", "usdt", "eth", &wallet).await;
    app.chain.control("/sim/rules", json!({"payout_address": wallet, "rule": "refunded"})).await;
    let eth_before = app.chain.anvil.balance(hot_wallet()).await;

    let payment_id = pay(&app, "-100705").await;
    let row = app.wait_for_instant_payout(payment_id, "refunded", WITHIN).await;

    assert_eq!(decimal(&row["refund_amount"]), dec!(0.0388), "{row}");
    assert!(row["refund_hash"].is_string(), "{row}");
    // Only the gas of the deposit is gone: the refund brought the ETH back.
    let provider = ProviderBuilder::new().connect_http(app.chain.anvil.url.parse().unwrap());
    let payin_tx = row["payin_tx_hash"].as_str().unwrap().parse().unwrap();
    let receipt = provider.get_transaction_receipt(payin_tx).await.unwrap().unwrap();
    let gas = U256::from(receipt.gas_used) * U256::from(receipt.effective_gas_price);
    assert_eq!(eth_before - app.chain.anvil.balance(hot_wallet()).await, gas);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_changenow_rejects_fails_fast_and_sends_nothing() {
    let app = TestApp::spawn().await;
    let wallet = client_wallet(0x76);
    app.add_instant_client("-100706", "usdt", "eth", &wallet).await;
    app.chain.control("/sim/rules", json!({"payout_address": wallet, "rule": "reject"})).await;

    let payment_id = pay(&app, "-100706").await;
    let row = app.wait_for_instant_payout(payment_id, "failed", Duration::from_secs(20)).await;

    assert!(row["reason"].as_str().unwrap().contains("not_valid_address"), "{row}");
    assert_eq!(intents(&app).await, 0, "no transfer was even signed");
    assert_eq!(app.chain.anvil.transaction_count(hot_wallet()).await, 0);
    assert!(app.chain.exchanges().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_below_changenows_minimum_is_held_with_its_reason() {
    let app = TestApp::spawn().await;
    app.add_instant_client("-100707", "xmr", "xmr", integration_tests::XMR_WALLET).await;
    let payment_id = fresh_payment_id();
    // 2 USD as 0.001 ETH: 0.00097 ETH net, below the simulator's 5 USD minimum.
    let (status, _) = app.send_ipn(&test_ipn(payment_id, "-100707", dec!(2), dec!(0.001))).await;
    assert_eq!(status, 200);

    let row = app.wait_for_instant_payout(payment_id, "held", WITHIN).await;
    assert!(row["reason"].as_str().unwrap().contains("below ChangeNow's minimum"), "{row}");
    assert_eq!(intents(&app).await, 0);
    assert!(app.chain.exchanges().await.is_empty());
}
