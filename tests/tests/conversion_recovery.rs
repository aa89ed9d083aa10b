//! Conversion batches on their failure paths: a run that is reset after its ETH left resumes
//! its batch instead of treating it as fresh, every failure ends in a failed batch with an
//! alert, and rows go back to the pool only while their ETH is provably in the hot wallet.

use activities::db::conversion_ledger;
use alloy::primitives::Address;
use integration_tests::{accumulate, chain::HOT_WALLET, conversion_result, only_batch, run_conversion, start_conversion, TestApp};
use payout_starter::cli::conversions::ResumeOutcome;
use rust_decimal_macros::dec;
use serde_json::json;
use std::{str::FromStr, time::Duration};
use workflows::{activity_definitions::FailedBatch, MicroBatchConversionInput, MicroBatchConversionWorkflow};

async fn count(app: &TestApp, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(&app.pool).await.unwrap()
}

/// Polls `sql` (a count) until it is at least 1.
async fn wait_until(app: &TestApp, sql: &str, timeout: Duration) {
    let started = std::time::Instant::now();
    while count(app, sql).await < 1 {
        assert!(started.elapsed() < timeout, "waited {timeout:?} for: {sql}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn open_alerts(app: &TestApp, kind: &str) -> Vec<String> {
    sqlx::query_scalar("SELECT message FROM alerts WHERE kind = $1 AND acknowledged_at IS NULL")
        .bind(kind)
        .fetch_all(&app.pool)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_reset_after_its_eth_left_resumes_the_batch_and_sends_nothing_twice() {
    let app = TestApp::spawn().await;
    accumulate(&app, "-100811", &[dec!(30)]).await; // 29.10 USD net, 0.0097 ETH
                                                    // The exchange takes the deposit and then waits, so the reset lands mid-batch.
    app.chain.control("/sim/rules", json!({"payout_address": HOT_WALLET, "rule": "stall"})).await;
    let workflow_id = start_conversion(&app, "reset", MicroBatchConversionInput::default()).await;
    wait_until(&app, "SELECT count(*) FROM transfer_intents WHERE status = 'confirmed'", Duration::from_secs(60)).await;

    // Meanwhile ChangeNow's minimum rises far above the batch: judged afresh, the batch would be
    // released and its rows, whose ETH already left, converted (sent) a second time.
    app.chain.control("/sim/market", json!({"min_usd": "1000"})).await;
    app.reset_to_first_workflow_task(&workflow_id).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(count(&app, "SELECT count(*) FROM payout_accumulation WHERE conversion_status = 'pending'").await, 0);

    // The exchange finishes late; the reset run completes the batch it resumed.
    app.chain.reset_faults().await;
    let exchange_id = app.chain.exchanges().await[0]["id"].as_str().unwrap().to_owned();
    app.chain.control(&format!("/sim/exchanges/{exchange_id}/outcome"), json!({"outcome": null})).await;
    let outcome = conversion_result(&app, &workflow_id).await.expect("the reset run converts");
    assert_eq!(only_batch(outcome).rows, 1);
    assert_eq!(app.chain.exchanges().await.len(), 1, "one exchange");
    assert_eq!(count(&app, "SELECT count(*) FROM transfer_attempts").await, 1, "one signed transfer");
    assert_eq!(app.chain.anvil.transaction_count(Address::from_str(HOT_WALLET).unwrap()).await, 1, "one transaction");
    assert_eq!(count(&app, "SELECT count(*) FROM payout_accumulation WHERE conversion_status = 'completed'").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_range_request_fails_the_batch_with_an_alert_and_returns_its_rows() {
    let app = TestApp::spawn().await;
    accumulate(&app, "-100812", &[dec!(30)]).await;
    app.chain.control("/sim/faults", json!({"fail_next": {"range": 1}, "http_status": 400})).await;
    let error = run_conversion(&app, "range-refused").await.expect_err("the run fails visibly");
    assert!(error.contains("range"), "{error}");
    // Recorded, not left `swapping` by a run that has ended.
    let reason: String = sqlx::query_scalar("SELECT failure_reason FROM batch_conversions WHERE conversion_status = 'failed'")
        .fetch_one(&app.pool)
        .await
        .expect("the batch is failed");
    assert!(reason.contains("range"), "{reason}");
    assert_eq!(open_alerts(&app, "conversion_batch_failed").await.len(), 1);
    // Nothing was sent, so the rows are provably in the hot wallet: back to the pool.
    assert_eq!(count(&app, "SELECT count(*) FROM payout_accumulation WHERE conversion_status = 'pending'").await, 1);
    assert_eq!(count(&app, "SELECT count(*) FROM transfer_intents").await, 0);
    let again = run_conversion(&app, "after-range-refused").await.unwrap();
    assert_eq!(only_batch(again).rows, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partial_refund_keeps_the_rows_and_the_alert_names_the_shortfall() {
    let app = TestApp::spawn().await;
    accumulate(&app, "-100813", &[dec!(45)]).await; // 0.01455 ETH net
    app.chain.control("/sim/rules", json!({"payout_address": HOT_WALLET, "rule": "refunded_partially"})).await;
    let error = run_conversion(&app, "partial-refund").await.expect_err("the run fails visibly");
    assert!(error.contains("ended 'refunded'"), "{error}");
    // 90 % came back: sending the rows' full ETH again would spend ETH the wallet does not hold
    // for them, so the rows stay with the failed batch.
    assert_eq!(count(&app, "SELECT count(*) FROM payout_accumulation WHERE conversion_status = 'swapping'").await, 1);
    let (amount, released): (rust_decimal::Decimal, bool) =
        sqlx::query_as("SELECT refund_amount_eth, rows_released FROM batch_conversions").fetch_one(&app.pool).await.unwrap();
    assert_eq!(amount, dec!(0.013095));
    assert!(!released);
    let alerts = open_alerts(&app, "conversion_batch_failed").await;
    assert_eq!(alerts.len(), 1);
    assert!(alerts[0].contains("0.001455 ETH short"), "{}", alerts[0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_completes_a_failed_batch_whose_exchange_finished_late() {
    let app = TestApp::spawn().await;
    accumulate(&app, "-100814", &[dec!(30), dec!(40)]).await;
    app.chain.control("/sim/rules", json!({"payout_address": HOT_WALLET, "rule": "stall"})).await;
    let workflow_id = start_conversion(&app, "late", MicroBatchConversionInput::default()).await;
    wait_until(&app, "SELECT count(*) FROM transfer_intents WHERE status = 'confirmed'", Duration::from_secs(60)).await;
    // The exchange sits in ChangeNow's review for longer than the run waits: the run ends and
    // the failure step records the batch (as the run's own deadline does).
    app.temporal()
        .await
        .get_workflow_handle::<MicroBatchConversionWorkflow>(workflow_id)
        .terminate(temporalio_client::WorkflowTerminateOptions::builder().reason("test: deadline").build())
        .await
        .unwrap();
    let batch_id: uuid::Uuid = sqlx::query_scalar("SELECT batch_conversion_id FROM batch_conversions").fetch_one(&app.pool).await.unwrap();
    let exchange_id = app.chain.exchanges().await[0]["id"].as_str().unwrap().to_owned();
    let failed = FailedBatch {
        batch_id: batch_id.to_string(),
        exchange_id: Some(exchange_id.clone()),
        reason: "exchange still 'exchanging' after 6h".into(),
        refund: None,
    };
    conversion_ledger::record_failure(&app.pool, &failed).await.unwrap();
    assert_eq!(count(&app, "SELECT count(*) FROM payout_accumulation WHERE conversion_status = 'swapping'").await, 2);

    let services = app.services().await;
    let recovery = app.recovery(&services);
    let early = recovery.resume(batch_id).await.unwrap();
    assert!(matches!(early, ResumeOutcome::NotFinished { .. }), "{early:?}");
    assert_eq!(count(&app, "SELECT count(*) FROM batch_conversions WHERE conversion_status = 'failed'").await, 1);

    // Days later the exchange finishes; resume completes the batch, split exactly.
    app.chain.reset_faults().await;
    app.chain.control(&format!("/sim/exchanges/{exchange_id}/outcome"), json!({"outcome": null})).await;
    let started = std::time::Instant::now();
    while app.chain.exchanges().await[0]["status"] != "finished" {
        assert!(started.elapsed() < Duration::from_secs(60), "the exchange did not finish");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let ResumeOutcome::Completed { usdt_received, .. } = recovery.resume(batch_id).await.unwrap() else { panic!("the batch completes") };
    let split: rust_decimal::Decimal = sqlx::query_scalar(
        "SELECT sum(accumulated_amount_usdt) FROM payout_accumulation WHERE batch_conversion_id = $1 AND conversion_status = 'completed'",
    )
    .bind(batch_id)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(split, usdt_received);
    assert_eq!(count(&app, "SELECT count(*) FROM batch_conversions WHERE conversion_status = 'completed'").await, 1);
    assert!(recovery.resume(batch_id).await.is_err(), "a completed batch is not resumed again");
    assert_eq!(count(&app, "SELECT count(*) FROM transfer_intents").await, 1, "nothing was sent again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_past_its_deadline_is_recorded_sent_unconfirmed_and_the_batch_completes_when_it_lands() {
    let app = TestApp::spawn().await;
    accumulate(&app, "-100816", &[dec!(30)]).await;
    // No blocks: the ETH transfer is broadcast and stays in the mempool.
    app.chain.anvil.rpc("evm_setAutomine", json!([false])).await;
    let input = MicroBatchConversionInput { transfer_deadline_secs: Some(6), ..Default::default() };
    let workflow_id = start_conversion(&app, "unconfirmed", input).await;
    wait_until(&app, "SELECT count(*) FROM transfer_intents WHERE unconfirmed_since IS NOT NULL", Duration::from_secs(60)).await;

    // Past the deadline it can still land: not failed, the rows stay with their batch, and one
    // alert says so.
    let alerts = open_alerts(&app, "transfer_unconfirmed").await;
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert!(alerts[0].contains("may still land"), "{}", alerts[0]);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(count(&app, "SELECT count(*) FROM batch_conversions WHERE conversion_status = 'swapping'").await, 1);
    assert_eq!(count(&app, "SELECT count(*) FROM payout_accumulation WHERE conversion_status = 'swapping'").await, 1);
    assert!(open_alerts(&app, "conversion_batch_failed").await.is_empty());
    assert_eq!(open_alerts(&app, "transfer_unconfirmed").await.len(), 1, "one alert however long it waits");

    // Blocks again: the transfer lands, and the run that waited on completes the batch.
    app.chain.anvil.rpc("evm_setAutomine", json!([true])).await;
    app.chain.anvil.rpc("evm_mine", json!([])).await;
    let outcome = conversion_result(&app, &workflow_id).await.expect("the run completes the batch");
    assert_eq!(only_batch(outcome).rows, 1);
    assert_eq!(count(&app, "SELECT count(*) FROM payout_accumulation WHERE conversion_status = 'completed'").await, 1);
    assert!(open_alerts(&app, "transfer_unconfirmed").await.is_empty(), "settled when the transfer confirmed");
    assert_eq!(count(&app, "SELECT count(*) FROM transfer_attempts").await, 1, "the same transaction throughout");
}
