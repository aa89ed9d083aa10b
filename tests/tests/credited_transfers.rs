//! Money coming back is credited once: every path that counts a transfer into the hot wallet
//! claims it in `credited_incoming_transfers` (transaction and log index unique), and a refund
//! counts only from ChangeNow's senders (`CHANGENOW_SENDER_ADDRESSES`) for the exchange's amount.

use activities::ethereum::{erc20_transfer_calldata, Asset, Credit, HotWallet, HotWalletError, IncomingState, Refund};
use alloy::primitives::{Address, U256};
use changenow_simulator::chain_setup::{deploy_test_usdt, mint_test_usdt};
use integration_tests::{
    chain::{Anvil, HOT_WALLET_KEY},
    config, fresh_database, fresh_payment_id, test_ipn, TestApp,
};
use rust_decimal_macros::dec;
use serde_json::{json, Value};
use sqlx::PgPool;
use std::{str::FromStr, time::Duration};

const ETH: u64 = 1_000_000_000_000_000_000;
/// anvil's second dev account: the sandbox's treasury, ChangeNow's sender.
const CHANGENOW: &str = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";
/// anvil's fourth dev account: anyone else.
const SOMEONE_ELSE: &str = "0x90F79bf6EB2c4f870365E785982E1f101E93b906";
const WITHIN: Duration = Duration::from_secs(60);

fn address(text: &str) -> Address {
    Address::from_str(text).unwrap()
}

async fn wallet(chain: &Anvil) -> (HotWallet, PgPool) {
    let (pool, _) = fresh_database(&config()).await;
    let settings = integration_tests::chain::test_outbox_settings();
    (HotWallet::connect(pool.clone(), &chain.url, HOT_WALLET_KEY, settings).await.unwrap(), pool)
}

/// `from` (an unlocked dev account) sends `wei` to the hot wallet; the transaction hash.
async fn send_eth(chain: &Anvil, from: &str, to: Address, wei: u64) -> String {
    let hash = chain.rpc("eth_sendTransaction", json!([{ "from": from, "to": to, "value": format!("{wei:#x}") }])).await;
    mined(chain, hash.as_str().unwrap()).await
}

/// `hash`, once anvil has mined it.
async fn mined(chain: &Anvil, hash: &str) -> String {
    while chain.rpc("eth_getTransactionReceipt", json!([hash])).await.is_null() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    hash.to_owned()
}

fn refund<'a>(senders: &'a [Address], wei: u64) -> Option<Refund<'a>> {
    Some(Refund { senders, amount: U256::from(wei) })
}

async fn credits(pool: &PgPool) -> Vec<(i32, String, String)> {
    sqlx::query_as("SELECT log_index, sender, credited_to FROM credited_incoming_transfers ORDER BY tx_hash, log_index")
        .fetch_all(pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_refund_is_credited_once_and_a_second_claim_names_the_first() {
    let chain = Anvil::start().await;
    let (wallet, pool) = wallet(&chain).await;
    let changenow = [address(CHANGENOW)];
    let tx = send_eth(&chain, CHANGENOW, wallet.address(), ETH).await;

    let first = Credit { credited_to: "instant_refund:1", refund: refund(&changenow, ETH) };
    let seen = wallet.credit_incoming(&tx, Asset::Eth, &first).await.unwrap();
    assert!(matches!(seen, IncomingState::Confirmed { amount, .. } if amount == U256::from(ETH)), "{seen:?}");
    // Its own retry gets the same answer.
    let again = wallet.credit_incoming(&tx.to_uppercase().replace("0X", "0x"), Asset::Eth, &first).await.unwrap();
    assert_eq!(again, seen);

    for other in ["instant_refund:2", "conversion_refund:5b9f", "payout_refund:payout:b:1"] {
        let claim = Credit { credited_to: other, refund: refund(&changenow, ETH) };
        let error = wallet.credit_incoming(&tx, Asset::Eth, &claim).await.unwrap_err();
        assert!(matches!(error, HotWalletError::AlreadyCredited { .. }) && !error.is_retryable(), "{error}");
        assert!(error.to_string().contains("instant_refund:1"), "names the first: {error}");
    }
    assert_eq!(credits(&pool).await, vec![(-1, CHANGENOW.to_owned(), "instant_refund:1".to_owned())]);
}

#[tokio::test]
async fn a_refund_from_anyone_but_changenow_or_of_another_amount_counts_for_nothing() {
    let chain = Anvil::start().await;
    let (wallet, pool) = wallet(&chain).await;
    let changenow = [address(CHANGENOW)];

    let from_someone = send_eth(&chain, SOMEONE_ELSE, wallet.address(), ETH).await;
    let claim = Credit { credited_to: "conversion_refund:a", refund: refund(&changenow, ETH) };
    let error = wallet.credit_incoming(&from_someone, Asset::Eth, &claim).await.unwrap_err();
    assert!(matches!(error, HotWalletError::RefundNotCounted { .. }), "{error}");
    assert!(error.to_string().contains(SOMEONE_ELSE), "names the sender: {error}");

    let more = send_eth(&chain, CHANGENOW, wallet.address(), ETH + 1).await;
    let error = wallet.credit_incoming(&more, Asset::Eth, &claim).await.unwrap_err();
    assert!(error.to_string().contains(&format!("was sent {ETH}")), "more than the exchange was sent: {error}");

    let unset = Credit { credited_to: "conversion_refund:a", refund: refund(&[], ETH) };
    let full = send_eth(&chain, CHANGENOW, wallet.address(), ETH).await;
    let error = wallet.credit_incoming(&full, Asset::Eth, &unset).await.unwrap_err();
    assert!(error.to_string().contains("CHANGENOW_SENDER_ADDRESSES"), "{error}");
    assert!(credits(&pool).await.is_empty(), "nothing credited");

    // Less than was sent is a partial refund: credited as what it is (its caller keeps the rows).
    let short = send_eth(&chain, CHANGENOW, wallet.address(), ETH - 1).await;
    let seen = wallet.credit_incoming(&short, Asset::Eth, &claim).await.unwrap();
    assert!(matches!(seen, IncomingState::Confirmed { amount, .. } if amount == U256::from(ETH - 1)), "{seen:?}");
    assert_eq!(credits(&pool).await.len(), 1);

    // What is not a refund (a conversion's USDT) is credited from whoever paid it.
    let plain = Credit { credited_to: "conversion:a", refund: None };
    assert!(wallet.credit_incoming(&from_someone, Asset::Eth, &plain).await.is_ok());
    assert_eq!(credits(&pool).await.len(), 2);
}

#[tokio::test]
async fn a_conversions_usdt_cannot_come_back_as_a_payout_refund_and_parts_are_kept_by_log_index() {
    let chain = Anvil::start().await;
    let (wallet, pool) = wallet(&chain).await;
    let (usdt, _) = deploy_test_usdt(&chain.url).await.unwrap();
    mint_test_usdt(&chain.url, usdt, address(CHANGENOW), 1_000_000_000).await.unwrap();
    let data = erc20_transfer_calldata(wallet.address(), U256::from(25_000_000u64));
    let tx = chain.rpc("eth_sendTransaction", json!([{ "from": CHANGENOW, "to": usdt, "data": data }])).await;
    let tx = &mined(&chain, tx.as_str().unwrap()).await;

    let conversion = Credit { credited_to: "conversion:b1", refund: None };
    let seen = wallet.credit_incoming(tx, Asset::Erc20(usdt), &conversion).await.unwrap();
    assert!(matches!(seen, IncomingState::Confirmed { amount, .. } if amount == U256::from(25_000_000u64)));
    let credited = credits(&pool).await;
    assert_eq!(credited.len(), 1);
    assert!(credited[0].0 >= 0, "a token transfer is kept by its log index: {credited:?}");

    let changenow = [address(CHANGENOW)];
    let as_refund = Credit { credited_to: "payout_refund:payout:b2:0", refund: refund(&changenow, 25_000_000) };
    let error = wallet.credit_incoming(tx, Asset::Erc20(usdt), &as_refund).await.unwrap_err();
    assert!(error.to_string().contains("conversion:b1"), "{error}");
}

#[tokio::test]
async fn a_transfer_counted_before_the_table_existed_stays_with_what_it_counted_for() {
    let chain = Anvil::start().await;
    let (wallet, pool) = wallet(&chain).await;
    let tx = send_eth(&chain, CHANGENOW, wallet.address(), ETH).await;
    // As the migration records a refund the ledger had already counted.
    sqlx::query("INSERT INTO credited_incoming_transfers (tx_hash, log_index, credited_to) VALUES (lower($1), -2, 'instant_refund:7')")
        .bind(&tx)
        .execute(&pool)
        .await
        .unwrap();
    let changenow = [address(CHANGENOW)];
    let claim = Credit { credited_to: "conversion_refund:c", refund: refund(&changenow, ETH) };
    let error = wallet.credit_incoming(&tx, Asset::Eth, &claim).await.unwrap_err();
    assert!(error.to_string().contains("instant_refund:7"), "{error}");
}

// ---- through the workflows, against a ChangeNow that reports refunds it never sent ------------

async fn exchange_paying(app: &TestApp, wallet: &str, status: &str) -> String {
    for _ in 0..300 {
        let exchanges = app.chain.exchanges().await;
        if let Some(x) = exchanges.iter().find(|x| x["payoutAddress"] == wallet && x["status"] == status) {
            return x["id"].as_str().unwrap().to_owned();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("no exchange paying {wallet} reached {status}");
}

async fn pay_instant(app: &TestApp, client_id: &str) -> i64 {
    let payment_id = fresh_payment_id();
    let (status, _) = app.send_ipn(&test_ipn(payment_id, client_id, dec!(100), dec!(0.04))).await;
    assert_eq!(status, 200);
    payment_id
}

/// An instant payout whose exchange ChangeNow "refunds" by naming `refund_hash`.
async fn lied_refund(app: &TestApp, client_id: &str, seed: u8, refund_hash: &str) -> Value {
    let wallet = Address::from([seed; 20]).to_checksum(None);
    app.add_instant_client(client_id, "usdt", "eth", &wallet).await;
    app.chain.control("/sim/rules", json!({"payout_address": wallet, "rule": "stall"})).await;
    let payment_id = pay_instant(app, client_id).await;
    let exchange = exchange_paying(app, &wallet, "exchanging").await;
    app.chain.control(&format!("/sim/exchanges/{exchange}/outcome"), json!({"outcome": "refunded", "refund_hash": refund_hash})).await;
    app.wait_for_instant_payout(payment_id, "refunded", WITHIN).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refund_reported_for_two_exchanges_is_credited_to_the_first_only() {
    let app = TestApp::spawn().await;
    let first_wallet = Address::from([0x81; 20]).to_checksum(None);
    app.add_instant_client("-100811", "usdt", "eth", &first_wallet).await;
    app.chain.control("/sim/rules", json!({"payout_address": first_wallet, "rule": "refunded"})).await;
    let first = pay_instant(&app, "-100811").await;
    let refunded = app.wait_for_instant_payout(first, "refunded", WITHIN).await;
    let refund_hash = refunded["refund_hash"].as_str().unwrap().to_owned();
    assert!(refunded["refund_amount"].is_string() || refunded["refund_amount"].is_number(), "{refunded}");

    let second = lied_refund(&app, "-100812", 0x82, &refund_hash).await;
    assert!(second["refund_amount"].is_null(), "the same refund counted twice: {second}");
    let reason = second["reason"].as_str().unwrap();
    assert!(reason.contains("does not count") && reason.contains(&format!("instant_refund:{first}")), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refund_reported_as_someone_elses_transfer_counts_for_nothing() {
    let app = TestApp::spawn().await;
    // 0.0388 ETH, the payout's exact amount, into the hot wallet from someone who is not ChangeNow.
    let hot = address(integration_tests::chain::HOT_WALLET);
    let gift = send_eth(&app.chain.anvil, SOMEONE_ELSE, hot, 38_800_000_000_000_000).await;
    let row = lied_refund(&app, "-100813", 0x83, &gift).await;
    assert!(row["refund_amount"].is_null(), "someone else's transfer counted as the refund: {row}");
    let reason = row["reason"].as_str().unwrap();
    assert!(reason.contains("does not count") && reason.contains(SOMEONE_ELSE), "{reason}");
}
