//! The ledger belongs to one chain: a database is bound to the chain (chain id and genesis hash)
//! its first hot wallet connected to, and refuses to sign for any other; a nonce gap in front of
//! the outbox's open intents is alerted by the outbox watch and named by the reconciliation;
//! `make up` refuses a database that belongs to another chain.

use activities::{
    ethereum::{chain_binding::bound_chain, Asset, HotWallet, HotWalletError, OutboxSettings, TransferRequest},
    reconciliation::{reconcile, Check, Sources},
};
use alloy::primitives::{Address, U256};
use integration_tests::{
    chain::{wait_confirmed, Anvil, HOT_WALLET_KEY},
    config, fresh_database,
};
use serde_json::json;
use sqlx::PgPool;
use std::{process::Command, time::Duration};

fn settings() -> OutboxSettings {
    integration_tests::chain::test_outbox_settings()
}

async fn connect(pool: &PgPool, chain: &Anvil) -> Result<HotWallet, HotWalletError> {
    HotWallet::connect(pool.clone(), &chain.url, HOT_WALLET_KEY, settings()).await
}

fn eth(purpose_key: &str, wei: u64) -> TransferRequest {
    TransferRequest {
        purpose_key: purpose_key.into(),
        asset: Asset::Eth,
        to: Address::from([0x42; 20]).to_string(),
        amount: U256::from(wei),
    }
}

/// Two anvils with chain id 31337 and the same dev accounts, but different genesis blocks: what
/// two checkouts on one machine run.
async fn two_local_chains() -> (Anvil, Anvil) {
    (Anvil::start_with_genesis_timestamp(1_700_000_000).await, Anvil::start_with_genesis_timestamp(1_700_000_100).await)
}

#[tokio::test]
async fn a_database_used_with_one_chain_refuses_to_sign_for_another_naming_both() {
    let (ours, theirs) = two_local_chains().await;
    let (pool, _) = fresh_database(&config()).await;
    assert_eq!(bound_chain(&pool).await.unwrap(), None, "a new database is bound to nothing");

    let wallet = connect(&pool, &ours).await.expect("the first chain binds the database");
    let bound = bound_chain(&pool).await.unwrap().expect("bound on first connect");
    assert_eq!(&bound, wallet.chain());
    assert_eq!(bound.chain_id, 31337);
    let key = wallet.prepare_transfer(&eth("payment:bound", 1_000)).await.unwrap();
    assert!(!key.is_empty());
    drop(wallet);

    let Err(error) = connect(&pool, &theirs).await else { panic!("a second chain was accepted for a bound database") };
    let message = error.to_string();
    let other_genesis = genesis_of(&theirs).await;
    assert!(matches!(error, HotWalletError::ForeignChain { .. }), "{message}");
    assert!(message.contains(&bound.genesis_hash) && message.contains(&other_genesis), "names both chains: {message}");
    assert!(message.contains("DATABASE_URL") && message.contains("ETH_RPC_URL"), "says what to change: {message}");
    assert_eq!(bound_chain(&pool).await.unwrap(), Some(bound.clone()), "the binding is unchanged");

    // Changing the binding is refused by the database itself.
    let update = sqlx::query("UPDATE chain_binding SET genesis_hash = $1").bind(&other_genesis).execute(&pool).await;
    assert!(update.unwrap_err().to_string().contains("use a new database"));
    assert!(sqlx::query("DELETE FROM chain_binding").execute(&pool).await.is_err());

    // The chain it belongs to is still fine, and what it signed is still there.
    let wallet = connect(&pool, &ours).await.expect("its own chain");
    wallet.broadcast("payment:bound").await.unwrap();
    wait_confirmed(&wallet, "payment:bound").await;
}

#[tokio::test]
async fn a_ledger_from_before_the_binding_binds_only_to_the_chain_that_holds_its_transfers() {
    let (ours, theirs) = two_local_chains().await;
    let (pool, _) = fresh_database(&config()).await;
    let wallet = connect(&pool, &ours).await.unwrap();
    wallet.prepare_transfer(&eth("payment:old", 5_000)).await.unwrap();
    wallet.broadcast("payment:old").await.unwrap();
    let tx_hash = wait_confirmed(&wallet, "payment:old").await;
    drop(wallet);
    // As a database migrated from before the binding: the outbox has history, no binding.
    sqlx::query("TRUNCATE chain_binding").execute(&pool).await.unwrap();

    let Err(error) = connect(&pool, &theirs).await else { panic!("bound to a chain that never saw its transfers") };
    let message = error.to_string();
    assert!(message.contains("payment:old") && message.contains(&tx_hash), "names the transfer: {message}");
    assert_eq!(bound_chain(&pool).await.unwrap(), None, "nothing bound");

    let wallet = connect(&pool, &ours).await.expect("the chain holding its transfers binds it");
    assert_eq!(bound_chain(&pool).await.unwrap().as_ref(), Some(wallet.chain()));
}

#[tokio::test]
async fn a_nonce_gap_is_alerted_by_the_outbox_watch_named_by_the_reconciliation_and_settled_when_it_closes() {
    let chain = Anvil::start().await;
    let (pool, _) = fresh_database(&config()).await;
    let wallet = connect(&pool, &chain).await.unwrap();
    let from = wallet.address().to_checksum(None);
    // The ledger says nonce 0 was confirmed; the chain never saw it (the second checkout's case).
    sqlx::query(
        "INSERT INTO transfer_intents (purpose_key, chain_id, from_address, nonce, asset, to_address, amount_base_units,
                                       status, confirmed_tx_hash, confirmed_block)
         VALUES ('payment:elsewhere', 31337, $1, 0, 'ETH', $2, 1, 'confirmed', $3, 1)",
    )
    .bind(&from)
    .bind(Address::from([0x42; 20]).to_checksum(None))
    .bind(format!("0x{}", "ab".repeat(32)))
    .execute(&pool)
    .await
    .unwrap();
    wallet.prepare_transfer(&eth("payment:behind", 7_000)).await.unwrap();
    wallet.broadcast("payment:behind").await.unwrap();

    let no_beat = || async {};
    wallet.watch_open_transfers(Duration::ZERO, 100, Duration::from_secs(60), no_beat).await.unwrap();
    let open = open_gap_alerts(&pool).await;
    assert_eq!(open.len(), 1, "one alert: {open:?}");
    let message = &open[0];
    assert!(message.contains("nonce 0 is held by no transaction"), "{message}");
    assert!(message.contains("payment:behind") && message.contains("payment:elsewhere at nonce 0 (confirmed)"), "{message}");
    wallet.watch_open_transfers(Duration::ZERO, 100, Duration::from_secs(60), no_beat).await.unwrap();
    assert_eq!(open_gap_alerts(&pool).await.len(), 1, "still one while it lasts");

    let sources = Sources { wallet: &wallet, changenow: None, usdt_contract: None, usdc_contract: None };
    let report = reconcile(&pool, &sources, Duration::from_secs(3600)).await.unwrap();
    let gap = report.differences.iter().find(|d| d.check == Check::NonceSequence).expect("the reconciliation names the gap");
    assert_eq!(gap.subject, "nonce 0");

    // Something takes nonce 0 after all: the waiting transfer lands, and the alert is settled.
    chain.rpc("eth_sendTransaction", json!([{ "from": from, "to": from, "value": "0x0", "nonce": "0x0" }])).await;
    wait_confirmed(&wallet, "payment:behind").await;
    wallet.watch_open_transfers(Duration::ZERO, 100, Duration::from_secs(60), no_beat).await.unwrap();
    assert!(open_gap_alerts(&pool).await.is_empty(), "settled once the gap closed");
    let report = reconcile(&pool, &sources, Duration::from_secs(3600)).await.unwrap();
    assert!(report.differences.iter().all(|d| d.check != Check::NonceSequence));
}

#[tokio::test]
async fn open_transfers_in_nonce_order_are_no_gap() {
    let chain = Anvil::start().await;
    let (pool, _) = fresh_database(&config()).await;
    let wallet = connect(&pool, &chain).await.unwrap();
    chain.rpc("evm_setAutomine", json!([false])).await;
    for i in 0..3 {
        wallet.prepare_transfer(&eth(&format!("payment:{i}"), 1_000 + i)).await.unwrap();
    }
    // Signed, not yet broadcast: the lowest is the chain's next nonce.
    assert_eq!(wallet.nonce_gap().await.unwrap(), None);
    for i in 0..3 {
        wallet.broadcast(&format!("payment:{i}")).await.unwrap();
    }
    assert_eq!(wallet.nonce_gap().await.unwrap(), None, "waiting in the mempool, in order");
    chain.rpc("evm_setAutomine", json!([true])).await;
    chain.rpc("evm_mine", json!([])).await;
    for i in 0..3 {
        wait_confirmed(&wallet, &format!("payment:{i}")).await;
    }
    wallet.watch_open_transfers(Duration::ZERO, 100, Duration::from_secs(60), || async {}).await.unwrap();
    assert!(open_gap_alerts(&pool).await.is_empty());
}

#[tokio::test]
async fn make_up_refuses_a_database_that_belongs_to_another_chain() {
    let (ours, theirs) = two_local_chains().await;
    let (pool, database_url) = fresh_database(&config()).await;
    let check = |rpc: &str| {
        Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/check-chain-binding.sh"))
            .args([database_url.as_str(), rpc])
            .output()
            .expect("run scripts/check-chain-binding.sh")
    };
    assert!(check(&theirs.url).status.success(), "a database bound to nothing passes");
    connect(&pool, &ours).await.unwrap();
    assert!(check(&ours.url).status.success(), "its own chain passes");

    let refused = check(&theirs.url);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "another chain is refused");
    let bound = bound_chain(&pool).await.unwrap().unwrap();
    assert!(stderr.contains(&bound.genesis_hash) && stderr.contains(&genesis_of(&theirs).await), "names both: {stderr}");
    assert!(stderr.contains("DATABASE_URL"), "says what to do: {stderr}");
}

async fn genesis_of(chain: &Anvil) -> String {
    let block = chain.rpc("eth_getBlockByNumber", json!(["0x0", false])).await;
    block["hash"].as_str().expect("genesis hash").to_ascii_lowercase()
}

async fn open_gap_alerts(pool: &PgPool) -> Vec<String> {
    sqlx::query_scalar("SELECT message FROM alerts WHERE kind = 'nonce_gap' AND acknowledged_at IS NULL").fetch_all(pool).await.unwrap()
}
