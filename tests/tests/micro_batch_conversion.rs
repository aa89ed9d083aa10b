//! Micro-batch ETH -> USDT conversion on the real stack: threshold payments accumulate, a run
//! converts the pool in one exchange, and the USDT that reached the hot wallet on chain is split
//! back over the rows exactly.

use alloy::primitives::{Address, U256};
use integration_tests::{
    accumulate, chain::HOT_WALLET, conversion_result, fresh_payment_id, only_batch, run_conversion, start_conversion, test_ipn, TestApp,
};
use payout_starter::cli::threshold;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use std::{os::unix::process::ExitStatusExt, str::FromStr, time::Duration};
use workflows::{
    domain::{from_base_units, split_proportionally, to_base_units, ChainAsset, PayoutStrategy},
    micro_batch_conversion::BatchConverted,
    MicroBatchConversionInput, MicroBatchConversionOutcome,
};

async fn hot_wallet_usdt(app: &TestApp) -> U256 {
    app.chain.usdt_balance(Address::from_str(HOT_WALLET).unwrap()).await
}

/// Every row of `batch_id`, in id order: (the ETH it brought, its USDT share).
async fn shares(app: &TestApp, batch_id: &str) -> Vec<(Decimal, Decimal)> {
    sqlx::query_as(
        "SELECT accumulated_eth, accumulated_amount_usdt FROM payout_accumulation
         WHERE batch_conversion_id = $1::uuid AND conversion_status = 'completed' ORDER BY id",
    )
    .bind(batch_id)
    .fetch_all(&app.pool)
    .await
    .unwrap()
}

async fn count(app: &TestApp, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(&app.pool).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn below_the_threshold_nothing_is_exchanged() {
    let app = TestApp::spawn().await;
    accumulate(&app, "-100801", &[dec!(5), dec!(6)]).await; // 10.67 USD net, threshold 20
    let outcome = run_conversion(&app, "below").await.unwrap();
    assert!(
        matches!(outcome, MicroBatchConversionOutcome::BelowThreshold { pending_rows: 2, threshold_usd, .. } if threshold_usd == dec!(20)),
        "{outcome:?}"
    );
    assert!(app.chain.exchanges().await.is_empty());
    assert_eq!(count(&app, "SELECT count(*) FROM batch_conversions").await, 0);
    assert_eq!(count(&app, "SELECT count(*) FROM payout_accumulation WHERE conversion_status = 'pending'").await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_over_the_threshold_is_converted_once_and_split_exactly() {
    let app = TestApp::spawn().await;
    accumulate(&app, "-100802", &[dec!(10), dec!(15), dec!(25), dec!(7.77)]).await;
    let usdt_before = hot_wallet_usdt(&app).await;

    let outcome = run_conversion(&app, "over").await.unwrap();
    let BatchConverted { batch_id, rows, usdt_received, .. } = only_batch(outcome);
    assert_eq!(rows, 4);
    assert_eq!(app.chain.exchanges().await.len(), 1, "one exchange for the whole pool");
    assert_eq!(count(&app, "SELECT count(*) FROM transfer_intents").await, 1, "one transaction");

    // The USDT recorded is what reached the hot wallet on chain.
    let on_chain = hot_wallet_usdt(&app).await - usdt_before;
    let on_chain = from_base_units(u128::try_from(on_chain).unwrap(), ChainAsset::Usdt).unwrap();
    assert_eq!(usdt_received, on_chain);
    let rows = shares(&app, &batch_id).await;
    assert_eq!(rows.len(), 4);
    assert_eq!(rows.iter().map(|(_, s)| *s).sum::<Decimal>(), on_chain, "shares sum exactly to the USDT received");
    let weights: Vec<Decimal> = rows.iter().map(|(eth, _)| *eth).collect();
    let expected = split_proportionally(on_chain, &weights, 6).unwrap();
    assert_eq!(rows.iter().map(|(_, s)| *s).collect::<Vec<_>>(), expected);
    let status: String = sqlx::query_scalar("SELECT conversion_status FROM batch_conversions WHERE batch_conversion_id = $1::uuid")
        .bind(&batch_id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(status, "completed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_usdt_is_split_by_the_eth_each_row_brought_not_by_its_usd_value() {
    let app = TestApp::spawn().await;
    app.add_client("-100810", PayoutStrategy::Threshold).await;
    // Above the ~230 USDT converted, so no payout starts and moves the USDT being measured.
    sqlx::query("UPDATE clients SET payout_threshold_usd = 500 WHERE client_id = '-100810'").execute(&app.pool).await.unwrap();
    // Two payments of the same price whose ETH differs (the ETH price moved between them): the
    // same 97.00 USD net each, but 0.0291 and 0.0485 ETH net (3 % fee taken from each).
    for outcome_eth in [dec!(0.03), dec!(0.05)] {
        let payment_id = fresh_payment_id();
        let (status, _) = app.send_ipn(&test_ipn(payment_id, "-100810", dec!(100), outcome_eth)).await;
        assert_eq!(status, 200);
        assert!(app.wait_for_status(payment_id, "accumulated", Duration::from_secs(90)).await, "payment {payment_id}");
    }
    let usdt_before = hot_wallet_usdt(&app).await;

    let BatchConverted { batch_id, rows, usdt_received, .. } = only_batch(run_conversion(&app, "by-eth").await.unwrap());
    assert_eq!(rows, 2);
    let on_chain = hot_wallet_usdt(&app).await - usdt_before;
    assert_eq!(usdt_received, from_base_units(u128::try_from(on_chain).unwrap(), ChainAsset::Usdt).unwrap());

    let rows: Vec<(Decimal, Decimal, Decimal)> = sqlx::query_as(
        "SELECT net_amount_usd, accumulated_eth, accumulated_amount_usdt FROM payout_accumulation
         WHERE batch_conversion_id = $1::uuid AND conversion_status = 'completed' ORDER BY id",
    )
    .bind(&batch_id)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    let [(usd_a, eth_a, usdt_a), (usd_b, eth_b, usdt_b)] = rows[..] else { panic!("two rows expected: {rows:?}") };
    assert_eq!((usd_a, usd_b), (dec!(97), dec!(97)), "the same USD value each");
    assert_eq!((eth_a, eth_b), (dec!(0.0291), dec!(0.0485)), "different ETH each");

    // In USDT base units: the first row gets its exact ETH proportion rounded down, the last
    // the rest; 0.0291 : 0.0485 = 291 : 485 of 776.
    let total = to_base_units(usdt_received, ChainAsset::Usdt).unwrap();
    let first = total * 291 / 776;
    assert_eq!(to_base_units(usdt_a, ChainAsset::Usdt).unwrap(), first, "first row: {usdt_a} of {usdt_received} USDT");
    assert_eq!(to_base_units(usdt_b, ChainAsset::Usdt).unwrap(), total - first, "last row: {usdt_b} of {usdt_received} USDT");
    assert_eq!(usdt_a + usdt_b, usdt_received, "shares sum exactly to the USDT received");
    assert!(usdt_b > usdt_a, "the row that brought more ETH gets more USDT: {usdt_a} vs {usdt_b}");

    // What thresholds and pages count stays the USD value.
    let total_usd: Decimal = sqlx::query_scalar("SELECT total_eth_usd FROM batch_conversions WHERE batch_conversion_id = $1::uuid")
        .bind(&batch_id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(total_usd, dec!(194));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_threshold_changed_at_run_time_applies_to_the_next_run() {
    let app = TestApp::spawn().await;
    accumulate(&app, "-100803", &[dec!(30)]).await; // 29.10 USD net
    threshold::set(&app.pool, dec!(50)).await.unwrap();
    let first = run_conversion(&app, "high").await.unwrap();
    assert!(matches!(first, MicroBatchConversionOutcome::BelowThreshold { threshold_usd, .. } if threshold_usd == dec!(50)));

    threshold::set(&app.pool, dec!(25)).await.unwrap();
    let second = run_conversion(&app, "lowered").await.unwrap();
    let batch_id = only_batch(second).batch_id;
    let recorded: Decimal = sqlx::query_scalar("SELECT threshold_at_creation FROM batch_conversions WHERE batch_conversion_id = $1::uuid")
        .bind(&batch_id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(recorded, dec!(25), "the batch records the threshold in force");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_runs_started_at_once_claim_disjoint_rows() {
    let app = TestApp::spawn().await;
    accumulate(&app, "-100804", &[dec!(12), dec!(13), dec!(14)]).await;
    let (a, b) = tokio::join!(run_conversion(&app, "a"), run_conversion(&app, "b"));
    let outcomes = [a.unwrap(), b.unwrap()];
    let converted: Vec<_> = outcomes.iter().filter(|o| matches!(o, MicroBatchConversionOutcome::Converted { .. })).collect();
    assert_eq!(converted.len(), 1, "the pool is claimed once: {outcomes:?}");
    assert!(
        outcomes.iter().any(|o| matches!(o, MicroBatchConversionOutcome::BelowThreshold { pending_rows: 0, .. })),
        "the other run found the pool empty: {outcomes:?}"
    );
    assert_eq!(count(&app, "SELECT count(*) FROM batch_conversions").await, 1);
    assert_eq!(app.chain.exchanges().await.len(), 1);
    assert_eq!(count(&app, "SELECT count(DISTINCT batch_conversion_id) FROM payout_accumulation").await, 1);
    assert_eq!(count(&app, "SELECT count(*) FROM payout_accumulation WHERE conversion_status = 'completed'").await, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exchange_failed_after_the_deposit_keeps_its_rows_out_of_the_pool() {
    let app = TestApp::spawn().await;
    accumulate(&app, "-100805", &[dec!(40)]).await;
    app.chain.control("/sim/rules", serde_json::json!({"payout_address": HOT_WALLET, "rule": "failed"})).await;
    let error = run_conversion(&app, "fails").await.expect_err("the run fails visibly");
    assert!(error.contains("ended 'failed'"), "{error}");
    // The ETH went to ChangeNow and did not come back: sending it again in a later batch would
    // pay it twice, so the row stays with the failed batch for an operator.
    assert_eq!(count(&app, "SELECT count(*) FROM payout_accumulation WHERE conversion_status = 'swapping'").await, 1);
    assert_eq!(
        count(&app, "SELECT count(*) FROM batch_conversions WHERE conversion_status = 'failed' AND failure_reason LIKE '%stay swapping%'")
            .await,
        1
    );
    let next = run_conversion(&app, "after-failure").await.unwrap();
    assert!(matches!(next, MicroBatchConversionOutcome::BelowThreshold { pending_rows: 0, .. }), "{next:?}");
    assert_eq!(count(&app, "SELECT count(*) FROM transfer_intents").await, 1, "the ETH was sent once");

    // No refund is seen on chain: `conversion return-rows` refuses; an operator who recovered
    // the ETH through ChangeNow's support forces it, and the rows return to the pool once.
    let batch_id: uuid::Uuid = sqlx::query_scalar("SELECT batch_conversion_id FROM batch_conversions").fetch_one(&app.pool).await.unwrap();
    let services = app.services().await;
    let recovery = app.recovery(&services);
    let refused = recovery.return_rows(batch_id, false).await.expect_err("no refund seen on chain");
    assert!(refused.to_string().contains("no refund was seen"), "{refused}");
    assert_eq!(count(&app, "SELECT count(*) FROM payout_accumulation WHERE conversion_status = 'swapping'").await, 1);
    let (returned, found) = recovery.return_rows(batch_id, true).await.unwrap();
    assert_eq!(returned, 1);
    assert!(found.contains("no refund"), "{found}");
    assert!(recovery.return_rows(batch_id, true).await.is_err(), "the rows are returned once");
    app.chain.reset_faults().await;
    let again = run_conversion(&app, "recovered").await.unwrap();
    assert_eq!(only_batch(again).rows, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_batch_finishes_it_exactly_once() {
    let mut app = TestApp::spawn().await;
    accumulate(&app, "-100806", &[dec!(11), dec!(22)]).await;
    // From here the crashing worker binary runs the conversion alone.
    app.worker = None;
    let doomed = app.spawn_worker_that_dies_after_broadcast();
    let run = start_conversion(&app, "crash", MicroBatchConversionInput::default()).await;
    let status = integration_tests::wait_for_self_kill(doomed).await;
    assert_eq!(status.signal(), Some(9));

    app.start_worker();
    let outcome = conversion_result(&app, &run).await.expect("the batch finishes");
    let BatchConverted { batch_id, usdt_received, .. } = only_batch(outcome);
    assert_eq!(app.chain.exchanges().await.len(), 1);
    assert_eq!(count(&app, "SELECT count(*) FROM transfer_attempts").await, 1);
    assert_eq!(app.chain.anvil.transaction_count(Address::from_str(HOT_WALLET).unwrap()).await, 1);
    assert_eq!(shares(&app, &batch_id).await.iter().map(|(_, s)| *s).sum::<Decimal>(), usdt_received);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refunded_exchange_records_the_refund_seen_on_chain_and_releases_the_rows() {
    let app = TestApp::spawn().await;
    accumulate(&app, "-100807", &[dec!(45)]).await; // 43.65 USD net = 0.01455 ETH net
    app.chain.control("/sim/rules", serde_json::json!({"payout_address": HOT_WALLET, "rule": "refunded"})).await;
    let error = run_conversion(&app, "refunded").await.expect_err("the run fails visibly");
    assert!(error.contains("ended 'refunded'"), "{error}");
    let reason: String = sqlx::query_scalar("SELECT failure_reason FROM batch_conversions").fetch_one(&app.pool).await.unwrap();
    assert!(reason.contains("returned 0.01455 ETH on chain"), "{reason}");
    assert_eq!(count(&app, "SELECT count(*) FROM payout_accumulation WHERE conversion_status = 'pending'").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_larger_than_a_batch_converts_in_bounded_batches_each_split_exactly() {
    let app = TestApp::spawn().await;
    accumulate(&app, "-100808", &[dec!(25), dec!(26), dec!(27), dec!(28), dec!(29)]).await; // each over 20 USD net
    let id = start_conversion(&app, "bounded", MicroBatchConversionInput { max_rows_per_batch: Some(2), ..Default::default() }).await;
    let MicroBatchConversionOutcome::Converted { batches } = conversion_result(&app, &id).await.unwrap() else {
        panic!("expected conversions")
    };
    // The oldest rows first, at most two per batch, one batch after the other in the same run.
    assert_eq!(batches.iter().map(|b| b.rows).collect::<Vec<_>>(), vec![2, 2, 1]);
    // (The client's payout, started once it crossed its threshold, has an exchange of its own.)
    assert_eq!(count(&app, "SELECT count(DISTINCT cn_api_id) FROM batch_conversions WHERE conversion_status = 'completed'").await, 3);
    let mut previous_last_id = 0i64;
    for batch in &batches {
        let rows = shares(&app, &batch.batch_id).await;
        assert_eq!(rows.iter().map(|(_, s)| *s).sum::<Decimal>(), batch.usdt_received, "batch {} is exact", batch.batch_id);
        let weights: Vec<Decimal> = rows.iter().map(|(eth, _)| *eth).collect();
        assert_eq!(rows.iter().map(|(_, s)| *s).collect::<Vec<_>>(), split_proportionally(batch.usdt_received, &weights, 6).unwrap());
        let (first, last): (i64, i64) =
            sqlx::query_as("SELECT min(id), max(id) FROM payout_accumulation WHERE batch_conversion_id = $1::uuid")
                .bind(&batch.batch_id)
                .fetch_one(&app.pool)
                .await
                .unwrap();
        assert!(first > previous_last_id, "batches take the oldest rows in order");
        previous_last_id = last;
    }
    assert_pool_totals_exact(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_of_25000_rows_converts_without_passing_rows_through_history() {
    let app = TestApp::spawn().await;
    // A backlog after a ChangeNow outage: one claim of every row made a payload Temporal
    // refuses (PayloadsTooLarge), retried forever with all rows stuck `swapping`.
    integration_tests::fill_pending_pool(&app.pool, "-100809", 25_000).await;
    assert_pool_totals_exact(&app).await;
    let outcome = tokio::time::timeout(std::time::Duration::from_secs(300), run_conversion(&app, "backlog"))
        .await
        .expect("the backlog converts within 5 minutes")
        .unwrap();
    let MicroBatchConversionOutcome::Converted { batches } = outcome else { panic!("{outcome:?}") };
    assert_eq!(batches.iter().map(|b| b.rows).collect::<Vec<_>>(), vec![10_000, 10_000, 5_000]);
    for batch in &batches {
        let total: Decimal =
            sqlx::query_scalar("SELECT sum(accumulated_amount_usdt) FROM payout_accumulation WHERE batch_conversion_id = $1::uuid")
                .bind(&batch.batch_id)
                .fetch_one(&app.pool)
                .await
                .unwrap();
        assert_eq!(total, batch.usdt_received, "batch {} is exact", batch.batch_id);
    }
    assert_eq!(count(&app, "SELECT count(*) FROM payout_accumulation WHERE conversion_status <> 'completed'").await, 0);
    assert_pool_totals_exact(&app).await;
}

/// The pool's one-row totals equal the sum over the pending rows.
async fn assert_pool_totals_exact(app: &TestApp) {
    let kept: (i64, Decimal, Decimal) =
        sqlx::query_as("SELECT pending_rows, pending_usd, pending_eth FROM conversion_pool_totals").fetch_one(&app.pool).await.unwrap();
    let summed: (i64, Decimal, Decimal) = sqlx::query_as(
        "SELECT count(*), COALESCE(sum(net_amount_usd), 0), COALESCE(sum(accumulated_eth), 0)
         FROM payout_accumulation WHERE conversion_status = 'pending'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(kept, summed);
}
