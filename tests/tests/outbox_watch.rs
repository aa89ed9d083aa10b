//! Transfers after their run stops watching them: an intent signed but never broadcast by a run
//! that ended is cancelled at its nonce (never sent for nobody, never blocking the nonces after
//! it, and no longer reserving its amount), and the `outbox-watch` schedule's workflow checks
//! every open intent until it ends.

use activities::ethereum::{Asset, HotWallet, HotWalletError, OutboxSettings, TransferRequest, TransferState};
use alloy::{
    consensus::Transaction as _,
    network::TransactionResponse as _,
    primitives::{Address, TxHash, U256},
    providers::{Provider, ProviderBuilder},
};
use integration_tests::{
    chain::{wait_confirmed, Anvil, HOT_WALLET_KEY},
    config, fresh_database, TestApp,
};
use sqlx::PgPool;
use std::{str::FromStr, time::Duration};
use temporalio_client::{WorkflowGetResultOptions, WorkflowStartOptions};
use workflows::{activity_definitions::OutboxWatchReport, OutboxWatchInput, OutboxWatchWorkflow};

const ETH: u128 = 1_000_000_000_000_000_000;

fn settings() -> OutboxSettings {
    integration_tests::chain::test_outbox_settings()
}

async fn wallet(chain: &Anvil) -> (HotWallet, PgPool) {
    let (pool, _) = fresh_database(&config()).await;
    let wallet = HotWallet::connect(pool.clone(), &chain.url, HOT_WALLET_KEY, settings()).await.expect("hot wallet");
    (wallet, pool)
}

fn eth(purpose_key: &str, to: Address, wei: U256) -> TransferRequest {
    TransferRequest { purpose_key: purpose_key.into(), asset: Asset::Eth, to: to.to_string(), amount: wei }
}

/// The injectable clock: the intent was signed `age` ago (and, like every intent here, never
/// broadcast), as if its run had ended that long ago.
async fn sign_ago(pool: &PgPool, purpose_key: &str, age: Duration) {
    let secs = age.as_secs_f64();
    sqlx::query("UPDATE transfer_intents SET created_at = now() - make_interval(secs => $2) WHERE purpose_key = $1")
        .bind(purpose_key)
        .bind(secs)
        .execute(pool)
        .await
        .unwrap();
    sqlx::query("UPDATE transfer_attempts SET signed_at = now() - make_interval(secs => $2) WHERE purpose_key = $1")
        .bind(purpose_key)
        .bind(secs)
        .execute(pool)
        .await
        .unwrap();
}

async fn status(pool: &PgPool, purpose_key: &str) -> String {
    sqlx::query_scalar("SELECT status FROM transfer_intents WHERE purpose_key = $1").bind(purpose_key).fetch_one(pool).await.unwrap()
}

/// Checks until the intent ends cancelled; returns the cancellation's hash.
async fn wait_cancelled(wallet: &HotWallet, purpose_key: &str) -> String {
    for _ in 0..100 {
        match wallet.check(purpose_key).await.unwrap() {
            TransferState::Cancelled { tx_hash, .. } => return tx_hash,
            TransferState::Confirmed { tx_hash, .. } => panic!("{purpose_key} was sent after all: {tx_hash}"),
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    panic!("{purpose_key} was never cancelled");
}

/// The transaction that took a nonce: a 0-value transfer from the hot wallet to itself.
async fn assert_is_cancellation(chain: &Anvil, tx_hash: &str, hot_wallet: Address, nonce: u64) {
    let provider = ProviderBuilder::new().connect_http(chain.url.parse().unwrap());
    let tx = provider.get_transaction_by_hash(TxHash::from_str(tx_hash).unwrap()).await.unwrap().expect("mined");
    assert_eq!(tx.from(), hot_wallet);
    assert_eq!(tx.to(), Some(hot_wallet), "to the hot wallet itself");
    assert_eq!(tx.value(), U256::ZERO);
    assert_eq!(tx.nonce(), nonce, "at the abandoned intent's nonce");
}

#[tokio::test]
async fn an_intent_abandoned_unsent_is_cancelled_at_its_nonce_and_the_transfer_after_it_lands() {
    let chain = Anvil::start().await;
    let (wallet, pool) = wallet(&chain).await;
    let (abandoned_to, next_to) = (Address::from([0x51; 20]), Address::from([0x52; 20]));
    wallet.prepare_transfer(&eth("payout-abandoned-0", abandoned_to, U256::from(ETH))).await.unwrap();
    sign_ago(&pool, "payout-abandoned-0", Duration::from_secs(2 * 3600)).await;

    // The next transfer takes the next nonce and waits behind the one never sent.
    wallet.prepare_transfer(&eth("payout-next-0", next_to, U256::from(2 * ETH))).await.unwrap();
    wallet.broadcast("payout-next-0").await.unwrap();
    wait_confirmed(&wallet, "payout-next-0").await;
    assert_eq!(chain.balance(next_to).await, U256::from(2 * ETH));

    let cancellation = wait_cancelled(&wallet, "payout-abandoned-0").await;
    assert_eq!(chain.balance(abandoned_to).await, U256::ZERO, "an abandoned transfer is never sent for nobody");
    assert_is_cancellation(&chain, &cancellation, wallet.address(), 0).await;
    assert_eq!(status(&pool, "payout-abandoned-0").await, "cancelled");
    assert_eq!(chain.transaction_count(wallet.address()).await, 2);
    // Its run's retry, days later, sends the cancellation again, never the transfer.
    assert_eq!(wallet.broadcast("payout-abandoned-0").await.unwrap(), cancellation);
    assert_eq!(chain.balance(abandoned_to).await, U256::ZERO);
}

#[tokio::test]
async fn a_retry_that_finds_its_intent_abandoned_unsent_sends_the_cancellation_not_the_transfer() {
    let chain = Anvil::start().await;
    let (wallet, pool) = wallet(&chain).await;
    let to = Address::from([0x58; 20]);
    let original = wallet.prepare_transfer(&eth("payout-retried-0", to, U256::from(ETH))).await.unwrap();
    sign_ago(&pool, "payout-retried-0", Duration::from_secs(2 * 3600)).await;

    // What an operator's retry of the batch does, days later: prepare (finds the intent), broadcast.
    assert_eq!(wallet.prepare_transfer(&eth("payout-retried-0", to, U256::from(ETH))).await.unwrap(), original);
    let sent = wallet.broadcast("payout-retried-0").await.unwrap();
    assert_ne!(sent, original, "the cancellation went out instead");
    assert_eq!(wait_cancelled(&wallet, "payout-retried-0").await, sent);
    assert_is_cancellation(&chain, &sent, wallet.address(), 0).await;
    assert_eq!(chain.balance(to).await, U256::ZERO);
}

#[tokio::test]
async fn an_old_transfer_that_was_broadcast_is_re_sent_by_the_watch_never_cancelled() {
    let chain = Anvil::start().await;
    let (wallet, pool) = wallet(&chain).await;
    let to = Address::from([0x59; 20]);
    chain.rpc("evm_setAutomine", serde_json::json!([false])).await;
    let original = wallet.prepare_transfer(&eth("conversion-slow", to, U256::from(ETH))).await.unwrap();
    wallet.broadcast("conversion-slow").await.unwrap();
    // Hours old and still pending (a node that dropped it): its run gave up, the watch carries on.
    sign_ago(&pool, "conversion-slow", Duration::from_secs(2 * 3600)).await;
    chain.rpc("anvil_dropAllTransactions", serde_json::json!([])).await;
    let pass = wallet.watch_open_transfers(Duration::ZERO, 100, Duration::from_secs(30), || async {}).await.unwrap();
    assert_eq!((pass.checked, pass.still_open, pass.cancelled), (1, 1, 0), "{pass:?}");
    chain.rpc("evm_mine", serde_json::json!([])).await;
    let pass = wallet.watch_open_transfers(Duration::ZERO, 100, Duration::from_secs(30), || async {}).await.unwrap();
    assert_eq!(pass.confirmed, 1, "{pass:?}");
    assert_eq!(status(&pool, "conversion-slow").await, "confirmed");
    assert_eq!(chain.balance(to).await, U256::from(ETH), "the very transfer landed, once");
    let attempts: i64 =
        sqlx::query_scalar("SELECT count(*) FROM transfer_attempts WHERE purpose_key = 'conversion-slow'").fetch_one(&pool).await.unwrap();
    assert_eq!(attempts, 1, "the same bytes, no cancellation: {original}");
}

#[tokio::test]
async fn an_intent_still_within_its_runs_reach_is_sent_not_cancelled() {
    let chain = Anvil::start().await;
    let (wallet, pool) = wallet(&chain).await;
    let to = Address::from([0x53; 20]);
    wallet.prepare_transfer(&eth("conversion-young", to, U256::from(ETH))).await.unwrap();
    // Signed 20 minutes ago: its send step may still be retrying (it gives up after 30).
    sign_ago(&pool, "conversion-young", Duration::from_secs(20 * 60)).await;
    wallet.broadcast("conversion-young").await.unwrap();
    wait_confirmed(&wallet, "conversion-young").await;
    assert_eq!(chain.balance(to).await, U256::from(ETH));
}

#[tokio::test]
async fn the_watch_cancels_an_abandoned_intent_and_frees_what_it_reserved() {
    let chain = Anvil::start().await;
    let (wallet, pool) = wallet(&chain).await;
    let balance = chain.balance(wallet.address()).await;
    let reserved = balance - U256::from(5 * ETH);
    wallet.prepare_transfer(&eth("conversion-abandoned", Address::from([0x54; 20]), reserved)).await.unwrap();
    sign_ago(&pool, "conversion-abandoned", Duration::from_secs(2 * 3600)).await;

    let later = eth("conversion-later", Address::from([0x55; 20]), U256::from(10 * ETH));
    let refused = wallet.prepare_transfer(&later).await.unwrap_err();
    assert!(matches!(refused, HotWalletError::InsufficientFunds { .. }), "{refused}");

    let mut seen = OutboxWatchReport::default();
    for _ in 0..20 {
        let pass = wallet.watch_open_transfers(Duration::ZERO, 100, Duration::from_secs(30), || async {}).await.unwrap();
        assert_eq!(pass.errors, 0, "{pass:?}");
        seen.cancelled += pass.cancelled;
        if seen.cancelled == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(seen.cancelled, 1, "the watch cancelled the abandoned intent");
    assert_eq!(status(&pool, "conversion-abandoned").await, "cancelled");
    // Ended: what it reserved is free again.
    wallet.prepare_transfer(&later).await.expect("the reservation was freed");
    wallet.broadcast("conversion-later").await.unwrap();
    wait_confirmed(&wallet, "conversion-later").await;
    assert_eq!(chain.balance(Address::from([0x54; 20])).await, U256::ZERO);
    assert_eq!(chain.balance(Address::from([0x55; 20])).await, U256::from(10 * ETH));
    let nothing_open = wallet.watch_open_transfers(Duration::ZERO, 100, Duration::from_secs(30), || async {}).await.unwrap();
    assert_eq!(nothing_open.checked, 0, "{nothing_open:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_schedules_workflow_checks_open_transfers_until_they_end() {
    let app = TestApp::spawn().await;
    let services = app.services().await;
    let wallet = &services.hot_wallet;
    let (sent_to, abandoned_to) = (Address::from([0x56; 20]), Address::from([0x57; 20]));
    // One its run gave up on after sending it, one its run abandoned before sending it.
    wallet.prepare_transfer(&eth("instant-gave-up", sent_to, U256::from(ETH))).await.unwrap();
    wallet.broadcast("instant-gave-up").await.unwrap();
    wallet.prepare_transfer(&eth("instant-abandoned", abandoned_to, U256::from(ETH))).await.unwrap();
    sign_ago(&app.pool, "instant-abandoned", Duration::from_secs(2 * 3600)).await;

    let client = app.temporal().await;
    let mut ended = 0;
    for pass in 0..10 {
        let id = format!("outbox-watch-test-{pass}-{}", uuid::Uuid::new_v4().simple());
        let options = WorkflowStartOptions::new(app.task_queue.clone(), id).build();
        let handle = client.start_workflow(OutboxWatchWorkflow::run, OutboxWatchInput { min_age_secs: Some(0) }, options).await.unwrap();
        let report = handle.get_result(WorkflowGetResultOptions::default()).await.expect("the watch runs");
        ended += report.confirmed + report.cancelled;
        if ended == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(ended, 2, "both intents ended");
    assert_eq!(status(&app.pool, "instant-gave-up").await, "confirmed");
    assert_eq!(status(&app.pool, "instant-abandoned").await, "cancelled");
    assert_eq!(app.chain.anvil.balance(sent_to).await, U256::from(ETH));
    assert_eq!(app.chain.anvil.balance(abandoned_to).await, U256::ZERO);
}
