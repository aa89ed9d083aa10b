//! The hot wallet's outbox against a real chain: each test runs its own anvil, so switching
//! automine off for one test cannot stall another.

use activities::ethereum::{Asset, HotWallet, IncomingState, OutboxSettings, TransferRequest, TransferState};
use alloy::primitives::{Address, U256};
use changenow_simulator::chain_setup::{deploy_test_usdt, mint_test_usdt};
use integration_tests::chain::wait_confirmed;
use integration_tests::{
    chain::{Anvil, HOT_WALLET_KEY},
    config, fresh_database,
};
use serde_json::json;
use std::time::Duration;

type OwnChain = Anvil;

async fn wallet(chain: &OwnChain, stuck_after: Duration) -> HotWallet {
    let (pool, _) = fresh_database(&config()).await;
    let settings = OutboxSettings {
        confirmations: 1,
        stuck_after,
        max_fee_per_gas: 200_000_000_000,
        abandon_unsent_after: OutboxSettings::ABANDON_UNSENT_AFTER,
    };
    HotWallet::connect(pool, &chain.url, HOT_WALLET_KEY, settings).await.expect("hot wallet")
}

fn eth(purpose_key: &str, to: Address, amount: U256) -> TransferRequest {
    TransferRequest { purpose_key: purpose_key.into(), asset: Asset::Eth, to: to.to_string(), amount }
}

fn recipient(seed: u8) -> Address {
    Address::from([seed; 20])
}

#[tokio::test]
async fn prepared_twice_and_broadcast_three_times_pays_once() {
    let chain = OwnChain::start().await;
    let wallet = wallet(&chain, Duration::from_secs(600)).await;
    let to = recipient(0x11);
    let amount = U256::from(1_234_567_890_123_456_789u128);
    let request = eth("payment:1", to, amount);

    let first = wallet.prepare_transfer(&request).await.unwrap();
    let again = wallet.prepare_transfer(&request).await.unwrap();
    assert_eq!(first, again, "a retried prepare returns the stored transaction");
    for _ in 0..3 {
        assert_eq!(wallet.broadcast("payment:1").await.unwrap(), first);
    }
    assert_eq!(wait_confirmed(&wallet, "payment:1").await, first);

    assert_eq!(chain.balance(to).await, amount, "exactly one transfer landed");
    assert_eq!(chain.transaction_count(wallet.address()).await, 1);
    // Broadcasting again after confirmation changes nothing.
    wallet.broadcast("payment:1").await.unwrap();
    assert_eq!(chain.balance(to).await, amount);
}

#[tokio::test]
async fn one_purpose_cannot_be_reused_for_another_transfer() {
    let chain = OwnChain::start().await;
    let wallet = wallet(&chain, Duration::from_secs(600)).await;
    let request = eth("payment:2", recipient(0x22), U256::from(10));
    wallet.prepare_transfer(&request).await.unwrap();
    let other = TransferRequest { amount: U256::from(11), ..request.clone() };
    let error = wallet.prepare_transfer(&other).await.unwrap_err();
    assert!(!error.is_retryable(), "{error}");
    assert!(error.to_string().contains("payment:2"), "{error}");
}

#[tokio::test]
async fn different_purposes_take_consecutive_nonces_and_all_land() {
    let chain = OwnChain::start().await;
    let wallet = wallet(&chain, Duration::from_secs(600)).await;
    let mut total = U256::ZERO;
    for i in 0..5u64 {
        let key = format!("payment:{i}");
        let amount = U256::from(1_000_000_000_000u64 + i);
        total += amount;
        wallet.prepare_transfer(&eth(&key, recipient(0x33), amount)).await.unwrap();
        wallet.broadcast(&key).await.unwrap();
    }
    for i in 0..5u64 {
        wait_confirmed(&wallet, &format!("payment:{i}")).await;
    }
    assert_eq!(chain.balance(recipient(0x33)).await, total);
    assert_eq!(chain.transaction_count(wallet.address()).await, 5);
}

#[tokio::test]
async fn a_stuck_transfer_is_replaced_with_the_same_nonce_and_lands_once() {
    let chain = OwnChain::start().await;
    let wallet = wallet(&chain, Duration::from_secs(1)).await;
    let to = recipient(0x44);
    let amount = U256::from(5_000_000_000_000_000u64);
    chain.rpc("evm_setAutomine", json!([false])).await;

    let first = wallet.prepare_transfer(&eth("conversion:stuck", to, amount)).await.unwrap();
    wallet.broadcast("conversion:stuck").await.unwrap();
    // Nothing is mined. Checks before `stuck_after` re-send the same bytes, and must not restart
    // the clock: the workflow checks every few seconds.
    for _ in 0..3 {
        let state = wallet.check("conversion:stuck").await.unwrap();
        assert_eq!(state, TransferState::Pending { latest_tx_hash: first.clone(), replaced: false });
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_millis(600)).await;
    // Stuck because the base fee rose above what it offers (20 gwei, far above a fresh anvil's).
    chain.rpc("anvil_setNextBlockBaseFeePerGas", json!(["0x4a817c800"])).await;
    let state = wallet.check("conversion:stuck").await.unwrap();
    let TransferState::Pending { latest_tx_hash: replacement, replaced: true } = state else {
        panic!("expected a replacement, got {state:?}");
    };
    assert_ne!(replacement, first);

    chain.rpc("evm_mine", json!([])).await;
    chain.rpc("evm_setAutomine", json!([true])).await;
    let landed = wait_confirmed(&wallet, "conversion:stuck").await;
    assert_eq!(landed, replacement, "the higher-fee replacement wins the shared nonce");
    assert_eq!(chain.balance(to).await, amount, "paid exactly once");
    assert_eq!(chain.transaction_count(wallet.address()).await, 1);
}

#[tokio::test]
async fn a_usdt_transfer_moves_exact_base_units_once_and_is_read_back_from_its_receipt() {
    let chain = OwnChain::start().await;
    let (usdt, _) = deploy_test_usdt(&chain.url).await.unwrap();
    let wallet = wallet(&chain, Duration::from_secs(600)).await;
    mint_test_usdt(&chain.url, usdt, wallet.address(), 1_000_000_000).await.unwrap();
    let to = recipient(0x55);
    let request = TransferRequest {
        purpose_key: "payout-batch:7:0".into(),
        asset: Asset::Erc20(usdt),
        to: to.to_string(),
        amount: U256::from(48_500_000u64),
    };
    let tx_hash = wallet.prepare_transfer(&request).await.unwrap();
    wallet.broadcast(&request.purpose_key).await.unwrap();
    wallet.broadcast(&request.purpose_key).await.unwrap();
    assert_eq!(wait_confirmed(&wallet, &request.purpose_key).await, tx_hash);

    assert_eq!(wallet.balance(Asset::Erc20(usdt)).await.unwrap(), U256::from(1_000_000_000u64 - 48_500_000));
    let provider = alloy::providers::RootProvider::new_http(chain.url.parse().unwrap());
    let received = activities::ethereum::balance_of(&provider, Asset::Erc20(usdt), to).await.unwrap();
    assert_eq!(received, U256::from(48_500_000u64));
    // The transfer paid the hot wallet nothing: `incoming` reads Transfer events to the wallet only.
    let incoming = wallet.incoming(&tx_hash, Asset::Erc20(usdt), None).await.unwrap();
    assert!(matches!(incoming, IncomingState::Confirmed { amount, .. } if amount.is_zero()), "{incoming:?}");
}

#[tokio::test]
async fn a_transfer_beyond_the_balance_is_refused_before_anything_is_signed() {
    let chain = OwnChain::start().await;
    let (usdt, _) = deploy_test_usdt(&chain.url).await.unwrap();
    let wallet = wallet(&chain, Duration::from_secs(600)).await;
    let request = TransferRequest {
        purpose_key: "payout-batch:8:0".into(),
        asset: Asset::Erc20(usdt),
        to: recipient(0x66).to_string(),
        amount: U256::from(1u64),
    };
    let error = wallet.prepare_transfer(&request).await.unwrap_err();
    assert!(error.is_retryable(), "an operator can top the wallet up: {error}");
    assert!(error.to_string().contains("top it up"), "{error}");
    assert_eq!(chain.transaction_count(wallet.address()).await, 0);
}
