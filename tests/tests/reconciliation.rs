//! The reconciliation (`starter reconcile`, the daily `reconciliation` schedule): a ledger the
//! engine wrote itself holds against the chain and ChangeNow; a ledger or a wallet tampered with
//! shows each difference once, raised as one alert however many runs find it.

use activities::{
    ethereum::erc20_transfer_calldata,
    reconciliation::{raise_alerts, reconcile, Check, ReconciliationReport, Sources},
};
use alloy::primitives::Address;
use integration_tests::{accumulate, batch_in, chain::HOT_WALLET, run_conversion, TestApp};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use serde_json::json;
use std::{collections::BTreeSet, time::Duration};
use temporalio_client::{WorkflowGetResultOptions, WorkflowStartOptions};
use workflows::{DailyReconciliationInput, DailyReconciliationWorkflow};

const DAY: Duration = Duration::from_secs(24 * 60 * 60);

async fn run(app: &TestApp) -> ReconciliationReport {
    let services = app.services().await;
    let sources = Sources {
        wallet: &services.hot_wallet,
        changenow: Some(&services.changenow),
        usdt_contract: services.usdt_contract,
        usdc_contract: services.usdc_contract,
    };
    reconcile(&app.pool, &sources, DAY).await.expect("reconciliation runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_ledger_reconciles_and_each_difference_is_found_and_alerted_once() {
    let app = TestApp::spawn().await;
    // One client paid out, one holding converted USDT below its threshold.
    accumulate(&app, "-101801", &[dec!(300), dec!(205)]).await;
    accumulate(&app, "-101802", &[dec!(50)]).await;
    sqlx::query("UPDATE clients SET payout_threshold_usd = 2000 WHERE client_id = '-101802'").execute(&app.pool).await.unwrap();
    run_conversion(&app, "reconcile").await.expect("converted");
    batch_in(&app, "-101801", "completed").await;

    let clean = run(&app).await;
    assert_eq!(clean.differences, vec![], "{clean}");
    assert!(clean.intents_checked >= 2 && clean.exchanges_checked >= 2 && clean.batches_checked >= 2, "{clean}");
    assert_eq!(clean.exchanges_unreachable, 0);
    let unpaid: Decimal = sqlx::query_scalar("SELECT sum(accumulated_amount_usdt) FROM payout_accumulation WHERE client_id = '-101802'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let usdt = clean.coverage.iter().find(|c| c.asset == "usdt").expect("usdt coverage");
    assert_eq!(usdt.owed_to_clients, unpaid, "the unpaid client's converted USDT is owed: {clean}");
    assert!(usdt.surplus() > Decimal::ZERO);

    // The ledger claims one unit more than its payout moved on chain ...
    sqlx::query("UPDATE transfer_intents SET amount_base_units = amount_base_units + 1 WHERE purpose_key LIKE 'payout-%'")
        .execute(&app.pool)
        .await
        .unwrap();
    // ... and the hot wallet's USDT leaves by a transaction the ledger never made.
    let balance = app.chain.usdt_balance(HOT_WALLET.parse().unwrap()).await;
    let drain = erc20_transfer_calldata(Address::repeat_byte(0xde), balance);
    let sent = app
        .chain
        .anvil
        .rpc("eth_sendTransaction", json!([{ "from": HOT_WALLET, "to": app.chain.usdt.to_checksum(None), "data": drain.to_string() }]))
        .await;
    assert!(sent.is_string(), "anvil sends from its unlocked account: {sent}");

    let tampered = run(&app).await;
    let checks: BTreeSet<Check> = tampered.differences.iter().map(|d| d.check).collect();
    assert_eq!(
        checks,
        BTreeSet::from([Check::IntentOnChain, Check::ExchangeDeposit, Check::BatchOutflow, Check::WalletCoverage]),
        "{tampered}"
    );
    let shortfall = tampered.differences.iter().find(|d| d.check == Check::WalletCoverage).unwrap();
    assert!(shortfall.message.ends_with(&format!("short by {}", unpaid.normalize())), "{}", shortfall.message);

    let raised = raise_alerts(&app.pool, &tampered).await.unwrap();
    assert_eq!(raised, tampered.differences.len());
    assert_eq!(raise_alerts(&app.pool, &run(&app).await).await.unwrap(), 0, "a difference still open is not raised again");

    // The daily schedule's workflow runs the same check on the worker.
    let client = app.temporal().await;
    let id = format!("reconciliation-test-{}", uuid::Uuid::new_v4().simple());
    let input = DailyReconciliationInput { window_secs: Some(DAY.as_secs()) };
    let handle = client
        .start_workflow(DailyReconciliationWorkflow::run, input, WorkflowStartOptions::new(app.task_queue.clone(), id).build())
        .await
        .unwrap();
    let summary = handle.get_result(WorkflowGetResultOptions::default()).await.unwrap();
    assert_eq!(summary.differences_found as usize, tampered.differences.len(), "{summary:?}");
    assert_eq!(summary.differences.len(), tampered.differences.len(), "{summary:?}");
    assert_eq!(summary.alerts_raised, 0);
    let open: i64 = sqlx::query_scalar("SELECT count(*) FROM alerts WHERE kind = 'reconciliation_difference' AND acknowledged_at IS NULL")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(open as usize, tampered.differences.len());
}
