//! The sandbox's NOWPayments end to end: a payment created with `POST /v1/payment` is paid on
//! the local chain, the sandbox's signed IPNs reach the engine, the engine confirms the payment
//! with the record and accumulates it, and the outcome lands in the hot wallet.

use alloy::{
    network::{EthereumWallet, TransactionBuilder},
    primitives::{Address, U256},
    providers::{Provider, ProviderBuilder},
    rpc::types::TransactionRequest,
    signers::local::PrivateKeySigner,
};
use changenow_simulator::{config::LOCAL_NOWPAYMENTS_API_KEY, nowpayments_flow::outcome_of};
use integration_tests::{chain::HOT_WALLET, TestApp};
use rust_decimal::Decimal;
use serde_json::{json, Value};
use std::{str::FromStr, time::Duration};
use workflows::domain::{to_base_units, ChainAsset, PayoutStrategy};

/// anvil's third dev account: the subscriber who pays (neither the hot wallet nor the treasury).
const PAYER_KEY: &str = "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a";

fn decimal(value: &Value) -> Decimal {
    let text = value.as_str().map(str::to_owned).unwrap_or_else(|| value.to_string());
    Decimal::from_str(&text).unwrap_or_else(|e| panic!("{value} is not an amount: {e}"))
}

async fn create_payment(app: &TestApp, body: Value) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("{}/v1/payment", app.chain.changenow_url()))
        .header("x-api-key", LOCAL_NOWPAYMENTS_API_KEY)
        .json(&body)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

async fn record(app: &TestApp, payment_id: i64) -> Value {
    reqwest::Client::new()
        .get(format!("{}/v1/payment/{payment_id}", app.chain.changenow_url()))
        .header("x-api-key", LOCAL_NOWPAYMENTS_API_KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_payment_created_in_the_sandbox_is_paid_on_chain_confirmed_and_accumulated() {
    let app = TestApp::spawn().await;
    let client = "-100951";
    app.add_client(client, PayoutStrategy::Threshold).await;

    let (status, refused) = create_payment(
        &app,
        json!({"price_amount": 40, "price_currency": "usd", "pay_currency": "btc", "order_id": format!("PGP-1|{client}")}),
    )
    .await;
    assert_eq!(status, 400, "{refused}");
    assert_eq!(
        (refused["status"].clone(), refused["statusCode"].clone()),
        (json!(false), json!(400)),
        "NOWPayments' error shape: {refused}"
    );

    let (status, created) = create_payment(
        &app,
        json!({"price_amount": 40, "price_currency": "usd", "pay_currency": "eth", "order_id": format!("PGP-1|{client}"),
               "order_description": "subscription", "ipn_callback_url": app.webhook_url()}),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["payment_status"], "waiting");
    let payment_id = created["payment_id"].as_i64().expect("an integer payment_id");
    let pay_amount = decimal(&created["pay_amount"]);
    // 40 USD at the sandbox's 3000 USD an ETH, to 8 decimals.
    assert_eq!(pay_amount, Decimal::from_str("0.01333333").unwrap());
    let pay_address: Address = created["pay_address"].as_str().unwrap().parse().unwrap();

    let hot_wallet: Address = HOT_WALLET.parse().unwrap();
    let hot_before = app.chain.anvil.balance(hot_wallet).await;
    let payer = ProviderBuilder::new()
        .wallet(EthereumWallet::from(PrivateKeySigner::from_str(PAYER_KEY).unwrap()))
        .connect_http(app.chain.anvil.url.parse().unwrap());
    let wei = to_base_units(pay_amount, ChainAsset::Eth).unwrap();
    let sent = payer.send_transaction(TransactionRequest::default().with_to(pay_address).with_value(U256::from(wei))).await.unwrap();
    assert!(sent.get_receipt().await.unwrap().status());

    assert!(app.wait_for_status(payment_id, "accumulated", Duration::from_secs(90)).await, "the paid payment is accumulated");
    let finished = record(&app, payment_id).await;
    assert_eq!(finished["payment_status"], "finished", "{finished}");
    assert_eq!(decimal(&finished["actually_paid"]), pay_amount);
    let outcome = decimal(&finished["outcome_amount"]);
    assert_eq!(outcome, outcome_of(pay_amount), "0.5 % less, to the wei");
    assert_eq!(finished["outcome_currency"], "eth");

    let stored: (String, Decimal) = sqlx::query_as("SELECT payment_status, outcome_amount FROM payments WHERE payment_id = $1")
        .bind(payment_id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(stored.1, outcome, "the engine routed the record's outcome");
    let hot_after = app.chain.anvil.balance(hot_wallet).await;
    assert_eq!(hot_after - hot_before, U256::from(to_base_units(outcome, ChainAsset::Eth).unwrap()), "the outcome is in the hot wallet");
}

async fn status_of(app: &TestApp, payment_id: i64) -> String {
    record(app, payment_id).await["payment_status"].as_str().unwrap_or_default().to_owned()
}

/// The treasury's forward is sent at a base fee that then jumps a thousandfold: the attempt can
/// no longer be mined, so the sandbox re-signs it at the same nonce with a fee that meets the new
/// base fee. One transfer, one nonce, no gap, and the payment still finishes.
#[tokio::test]
async fn a_forward_priced_out_by_a_base_fee_jump_is_re_signed_at_the_same_nonce() {
    let app = TestApp::spawn().await;
    let anvil = &app.chain.anvil;
    let (status, created) =
        create_payment(&app, json!({"price_amount": 40, "price_currency": "usd", "pay_currency": "eth", "order_id": "PGP-1|-100952"}))
            .await;
    assert_eq!(status, 201, "{created}");
    let payment_id = created["payment_id"].as_i64().unwrap();
    let pay_amount = decimal(&created["pay_amount"]);
    let pay_address: Address = created["pay_address"].as_str().unwrap().parse().unwrap();
    let treasury = PrivateKeySigner::from_str(changenow_simulator::config::ANVIL_TREASURY_KEY).unwrap().address();
    let hot_wallet: Address = HOT_WALLET.parse().unwrap();
    let (treasury_nonce, hot_before) = (anvil.transaction_count(treasury).await, anvil.balance(hot_wallet).await);

    anvil.rpc("evm_setAutomine", json!([false])).await;
    let payer = ProviderBuilder::new()
        .wallet(EthereumWallet::from(PrivateKeySigner::from_str(PAYER_KEY).unwrap()))
        .connect_http(anvil.url.parse().unwrap());
    let wei = to_base_units(pay_amount, ChainAsset::Eth).unwrap();
    let _deposit = payer.send_transaction(TransactionRequest::default().with_to(pay_address).with_value(U256::from(wei))).await.unwrap();
    anvil.rpc("evm_mine", json!([])).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while status_of(&app, payment_id).await != "confirming" {
        assert!(std::time::Instant::now() < deadline, "the deposit was not seen");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The forward goes out one step (200 ms) later, priced at today's base fee ...
    tokio::time::sleep(Duration::from_secs(1)).await;
    // ... which then jumps to 1,000 gwei: the attempt is below it and stays unmined.
    anvil.rpc("anvil_setNextBlockBaseFeePerGas", json!(["0xe8d4a51000"])).await;
    anvil.rpc("evm_mine", json!([])).await;
    assert_eq!(anvil.transaction_count(treasury).await, treasury_nonce, "the priced-out attempt is not mined");

    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while status_of(&app, payment_id).await != "finished" {
        assert!(std::time::Instant::now() < deadline, "the forward was never re-signed into a block");
        anvil.rpc("evm_mine", json!([])).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    assert_eq!(anvil.transaction_count(treasury).await, treasury_nonce + 1, "one transfer at one nonce: no gap, no second payment");
    let outcome = decimal(&record(&app, payment_id).await["outcome_amount"]);
    assert_eq!(anvil.balance(hot_wallet).await - hot_before, U256::from(to_base_units(outcome, ChainAsset::Eth).unwrap()));
    anvil.rpc("evm_setAutomine", json!([true])).await;
}
