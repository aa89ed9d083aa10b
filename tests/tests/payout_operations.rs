//! When a threshold payout goes wrong: the batch fails with an alert, its rows stay unpaid, and an
//! operator's retry (the CLI, or the `retry` signal the Temporal UI sends) pays them exactly once;
//! a cancelled or crashed payout never sends its USDT twice. Also the cap on client thresholds.

use integration_tests::{accumulate, chain::HOT_WALLET, config, fresh_database, run_conversion, TestApp, XMR_WALLET};
use payout_starter::cli::payout_batches::{self, RetryOutcome};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use serde_json::json;
use std::{
    os::unix::process::ExitStatusExt,
    str::FromStr,
    time::{Duration, Instant},
};
use temporalio_client::{WorkflowCancelOptions, WorkflowGetResultOptions, WorkflowStartOptions, WorkflowTerminateOptions};
use uuid::Uuid;
use workflows::{
    activity_definitions::PayoutGroup, client_payout_workflow_id, ClientPayoutInput, ClientPayoutOutcome, ClientPayoutWorkflow,
};

/// The client's latest payout batch once it is `status`: (batch id, total USDT).
async fn wait_for_batch(app: &TestApp, client_id: &str, status: &str) -> (Uuid, Decimal) {
    let started = Instant::now();
    loop {
        let row: Option<(Uuid, Decimal)> = sqlx::query_as(
            "SELECT batch_id, total_amount_usdt FROM payout_batches
             WHERE client_id = $1 AND status = $2 ORDER BY created_at DESC LIMIT 1",
        )
        .bind(client_id)
        .bind(status)
        .fetch_optional(&app.pool)
        .await
        .unwrap();
        if let Some(row) = row {
            return row;
        }
        assert!(started.elapsed() < Duration::from_secs(90), "no '{status}' payout batch for {client_id} after 90 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn scalar_i64(app: &TestApp, sql: &str, batch_id: Uuid) -> i64 {
    sqlx::query_scalar(sql).bind(batch_id).fetch_one(&app.pool).await.unwrap()
}

/// Outbox transfers (USDT to ChangeNow) made for one payout batch.
async fn payout_transfers(app: &TestApp, batch_id: Uuid) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM transfer_attempts WHERE purpose_key LIKE 'payout-' || $1 || '-%'")
        .bind(batch_id.to_string())
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

/// The simulator's USDT -> XMR exchanges (payouts to the test client's wallet).
async fn payout_exchanges(app: &TestApp) -> Vec<serde_json::Value> {
    app.chain.exchanges().await.into_iter().filter(|x| x["payoutAddress"] == XMR_WALLET).collect()
}

/// The id of the payout exchange the simulator holds at `exchanging` (rule `stall`), once it exists.
async fn stalled_exchange(app: &TestApp) -> String {
    loop {
        let stalled = payout_exchanges(app).await.into_iter().find(|x| x["status"] == "exchanging");
        if let Some(x) = stalled {
            return x["id"].as_str().unwrap().to_owned();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn retry(app: &TestApp, batch_id: Uuid) -> RetryOutcome {
    payout_batches::retry(&app.pool, &app.temporal().await, &app.task_queue, batch_id).await.expect("batch retry")
}

fn group(client_id: &str) -> PayoutGroup {
    PayoutGroup {
        client_id: client_id.into(),
        wallet_address: XMR_WALLET.into(),
        payout_currency: "xmr".into(),
        payout_network: "xmr".into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refunded_payout_keeps_its_rows_and_retries_pay_them_exactly_once() {
    let app = TestApp::spawn().await;
    app.chain.control("/sim/rules", json!({"payout_address": XMR_WALLET, "rule": "refunded"})).await;
    accumulate(&app, "-100950", &[dec!(150)]).await;
    let hot_wallet = alloy::primitives::Address::from_str(HOT_WALLET).unwrap();
    run_conversion(&app, "refunded-payout").await.unwrap();

    let (batch_id, total) = wait_for_batch(&app, "-100950", "failed").await;
    let usdt_after_refund = app.chain.usdt_balance(hot_wallet).await;
    let kept = scalar_i64(&app, "SELECT count(*) FROM payout_accumulation WHERE payout_batch_id = $1 AND NOT is_paid_out", batch_id);
    assert_eq!(kept.await, 1, "USDT left the wallet, so the row stays with the batch, unpaid");
    let alerts = scalar_i64(&app, "SELECT count(*) FROM alerts WHERE kind = 'payout_batch_failed' AND subject::uuid = $1", batch_id);
    assert_eq!(alerts.await, 1);

    app.chain.reset_faults().await;
    // The failed run waits for an operator: the retry is the `retry` signal. Asking again while
    // it pays (or once it has paid) changes nothing.
    assert!(matches!(retry(&app, batch_id).await, RetryOutcome::Signalled { .. }));
    let again = retry(&app, batch_id).await;
    assert!(matches!(again, RetryOutcome::InProgress { .. } | RetryOutcome::AlreadyPaid), "{again:?}");
    assert_eq!(wait_for_batch(&app, "-100950", "completed").await.0, batch_id, "the same batch is paid");
    assert_eq!(retry(&app, batch_id).await, RetryOutcome::AlreadyPaid);

    let exchanges = payout_exchanges(&app).await;
    let statuses: Vec<&str> = exchanges.iter().map(|x| x["status"].as_str().unwrap()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == "finished").count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == "refunded").count(), 1, "{statuses:?}");
    assert_eq!(payout_transfers(&app, batch_id).await, 2, "the refunded transfer and its one re-send");
    let paid = scalar_i64(&app, "SELECT count(*) FROM payout_accumulation WHERE payout_batch_id = $1 AND is_paid_out", batch_id);
    assert_eq!(paid.await, 1);
    let spent = usdt_after_refund - app.chain.usdt_balance(hot_wallet).await;
    assert_eq!(Decimal::from_i128_with_scale(spent.to::<i128>(), 6), total, "the client's USDT left the wallet once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_exchange_releases_the_rows_and_a_retry_pays_them_in_a_new_batch() {
    let app = TestApp::spawn().await;
    app.chain.control("/sim/rules", json!({"payout_address": XMR_WALLET, "rule": "reject"})).await;
    accumulate(&app, "-100951", &[dec!(150)]).await;
    run_conversion(&app, "refused-payout").await.unwrap();

    let (failed_batch, _) = wait_for_batch(&app, "-100951", "failed").await;
    let claimed = scalar_i64(&app, "SELECT count(*) FROM payout_accumulation WHERE payout_batch_id = $1", failed_batch);
    assert_eq!(claimed.await, 0, "nothing was sent, so the rows are released");
    assert_eq!(payout_transfers(&app, failed_batch).await, 0);

    app.chain.reset_faults().await;
    // Released rows need no operator, so the run has ended; the retry starts a new one.
    assert!(matches!(retry(&app, failed_batch).await, RetryOutcome::Started { .. }));
    let (paid_batch, _) = wait_for_batch(&app, "-100951", "completed").await;
    assert_ne!(paid_batch, failed_batch, "released rows are paid by a new batch");
    let paid = scalar_i64(&app, "SELECT count(*) FROM payout_accumulation WHERE payout_batch_id = $1 AND is_paid_out", paid_batch);
    assert_eq!(paid.await, 1);
    assert_eq!(payout_exchanges(&app).await.len(), 1);
    assert_eq!(retry(&app, paid_batch).await, RetryOutcome::AlreadyPaid);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_stalled_payout_then_retrying_reuses_its_exchange_and_transfer() {
    let app = TestApp::spawn().await;
    app.chain.control("/sim/rules", json!({"payout_address": XMR_WALLET, "rule": "stall"})).await;
    accumulate(&app, "-100952", &[dec!(150)]).await;
    run_conversion(&app, "stalled-payout").await.unwrap();
    let exchange_id = stalled_exchange(&app).await;

    // What the Temporal UI's "Request Cancellation" does.
    let workflow_id = client_payout_workflow_id(&group("-100952"));
    let handle = app.temporal().await.get_workflow_handle::<ClientPayoutWorkflow>(workflow_id);
    handle.cancel(WorkflowCancelOptions::builder().reason("stuck at ChangeNow".to_owned()).build()).await.unwrap();
    let ended = handle.get_result(WorkflowGetResultOptions::default()).await;
    assert!(format!("{ended:?}").contains("ancel"), "the run ends cancelled: {ended:?}");
    let (batch_id, _) = wait_for_batch(&app, "-100952", "failed").await;
    let reason: String = sqlx::query_scalar("SELECT failure_reason FROM payout_batches WHERE batch_id = $1")
        .bind(batch_id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert!(reason.starts_with("cancelled by an operator: stuck at ChangeNow"), "{reason}");

    app.chain.reset_faults().await;
    app.chain.control(&format!("/sim/exchanges/{exchange_id}/outcome"), json!({"outcome": null})).await;
    assert!(matches!(retry(&app, batch_id).await, RetryOutcome::Started { .. }), "no run was open, so one starts");
    assert_eq!(wait_for_batch(&app, "-100952", "completed").await.0, batch_id);
    let exchanges = payout_exchanges(&app).await;
    assert_eq!(exchanges.len(), 1, "the stalled exchange is the one that finished");
    assert_eq!(exchanges[0]["status"], "finished");
    assert_eq!(payout_transfers(&app, batch_id).await, 1, "its USDT was sent once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_payout_sends_one_usdt_transfer_per_exchange() {
    let mut app = TestApp::spawn().await;
    // 6,000 USD over two payments: two exchanges, paid only when asked (threshold far above).
    sqlx::query("UPDATE settings SET value = '100000.00' WHERE key = 'max_client_threshold_usd'").execute(&app.pool).await.unwrap();
    accumulate(&app, "-100953", &[dec!(3000), dec!(3000)]).await;
    sqlx::query("UPDATE clients SET payout_threshold_usd = 50000 WHERE client_id = '-100953'").execute(&app.pool).await.unwrap();
    run_conversion(&app, "before-crash").await.unwrap();
    let hot_wallet = alloy::primitives::Address::from_str(HOT_WALLET).unwrap();
    let usdt_before = app.chain.usdt_balance(hot_wallet).await;

    // From here the crashing worker binary runs the payout alone.
    app.worker = None;
    let doomed = app.spawn_worker_that_dies_after_broadcast();
    let input = ClientPayoutInput { group: group("-100953"), resume_batch_id: None };
    let options = WorkflowStartOptions::new(app.task_queue.clone(), client_payout_workflow_id(&input.group)).build();
    let run = app.temporal().await.start_workflow(ClientPayoutWorkflow::run, input, options).await.unwrap();
    let status = integration_tests::wait_for_self_kill(doomed).await;
    assert_eq!(status.signal(), Some(9));

    app.start_worker();
    let outcome = run.get_result(WorkflowGetResultOptions::default()).await.expect("the payout finishes");
    let ClientPayoutOutcome::Paid { batch_id, total_usdt, exchanges, .. } = outcome else { panic!("{outcome:?}") };
    assert_eq!(exchanges, 2);
    let batch_id = Uuid::parse_str(&batch_id).unwrap();
    assert_eq!(payout_transfers(&app, batch_id).await, 2, "one USDT transfer per exchange");
    assert_eq!(payout_exchanges(&app).await.len(), 2, "one exchange per part");
    let spent = usdt_before - app.chain.usdt_balance(hot_wallet).await;
    assert_eq!(Decimal::from_i128_with_scale(spent.to::<i128>(), 6), total_usdt, "exactly the payout left the wallet");
}

#[tokio::test]
async fn the_database_refuses_thresholds_above_the_configured_maximum() {
    let (pool, _) = fresh_database(&config()).await;
    let insert = |threshold: i64| {
        sqlx::query(
            "INSERT INTO clients (client_id, wallet_address, payout_currency, payout_network, payout_strategy, payout_threshold_usd)
             VALUES ($1, 'w', 'xmr', 'xmr', 'threshold', $2)",
        )
        .bind(format!("-1{threshold}"))
        .bind(threshold)
    };
    insert(2000).execute(&pool).await.expect("the default maximum is 2000 USD");
    let error = insert(2001).execute(&pool).await.unwrap_err().to_string();
    assert!(error.contains("above the maximum of 2000"), "{error}");

    let lowering = activities::db::clients::set_max_threshold(&pool, dec!(1500)).await.unwrap_err().to_string();
    assert!(lowering.contains("1 threshold clients are above 1500.00"), "{lowering}");
    activities::db::clients::set_max_threshold(&pool, dec!(5000)).await.unwrap();
    insert(4000).execute(&pool).await.expect("a raised maximum applies at once");
    assert_eq!(activities::db::clients::max_threshold(&pool).await.unwrap(), dec!(5000));
}

/// `payout_group_balances` equals the GROUP BY it replaces, over every claimable row.
async fn assert_balances_match_rows(pool: &sqlx::PgPool, step: &str) {
    let differing: i64 = sqlx::query_scalar(
        "WITH kept AS (SELECT client_id, client_wallet_address, client_payout_currency, client_payout_network,
                              unpaid_usdt, unpaid_rows, oldest_unpaid_at, due_at_usdt
                       FROM payout_group_balances WHERE unpaid_rows > 0),
              truth AS (SELECT a.client_id, client_wallet_address, client_payout_currency, client_payout_network,
                               sum(accumulated_amount_usdt) AS unpaid_usdt, count(*)::int AS unpaid_rows,
                               min(a.created_at) AS oldest_unpaid_at,
                               CASE WHEN c.payout_strategy = 'threshold' THEN c.payout_threshold_usd ELSE 0 END AS due_at_usdt
                        FROM payout_accumulation a JOIN clients c ON c.client_id = a.client_id
                        WHERE conversion_status = 'completed' AND NOT is_paid_out AND payout_batch_id IS NULL
                        GROUP BY 1, 2, 3, 4, 8)
         SELECT (SELECT count(*) FROM (SELECT * FROM kept EXCEPT SELECT * FROM truth) a)
              + (SELECT count(*) FROM (SELECT * FROM truth EXCEPT SELECT * FROM kept) b)",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(differing, 0, "balances differ from the rows after: {step}");
}

#[tokio::test]
async fn the_group_balances_follow_every_change_of_the_rows() {
    let (pool, _) = fresh_database(&config()).await;
    let exec = |sql: &'static str| sqlx::query(sql).execute(&pool);
    exec(
        "INSERT INTO clients (client_id, wallet_address, payout_currency, payout_network, payout_strategy, payout_threshold_usd)
          SELECT 'c' || c, 'w', 'xmr', 'xmr', 'threshold', 50 FROM generate_series(1, 3) c",
    )
    .await
    .unwrap();
    exec(
        "INSERT INTO batch_conversions (batch_conversion_id, total_eth_usd, total_eth, threshold_at_creation, conversion_status)
          VALUES ('00000000-0000-0000-0000-00000000000a', 0, 0, 20, 'swapping')",
    )
    .await
    .unwrap();
    exec(
        "INSERT INTO payments (payment_id, order_id, user_id, client_id, payment_status, status, price_amount, price_currency,
              outcome_amount, outcome_currency, raw_ipn, fee_percent, fee_amount_usd, net_amount_usd, fee_amount_eth, net_amount_eth)
          SELECT g, 'PGP-1|c' || (1 + g % 3), 1, 'c' || (1 + g % 3), 'finished', 'accumulated', 10, 'usd', 0.0033, 'eth', '{}',
                 3, 0.30, 9.70, 0.000099, 0.003201 FROM generate_series(1, 30) g",
    )
    .await
    .unwrap();
    // Two wallets for client c1: two groups.
    exec(
        "INSERT INTO payout_accumulation (nowpayments_payment_id, client_id, user_id, payment_amount_usd, payment_currency,
              payment_timestamp, fee_amount_usd, net_amount_usd, accumulated_eth, client_wallet_address,
              client_payout_currency, client_payout_network, created_at)
          SELECT g, 'c' || (1 + g % 3), 1, 10, 'usd', now(), 0.30, 9.70, 0.003201,
                 CASE WHEN g > 20 AND g % 3 = 0 THEN 'w2' ELSE 'w' END, 'xmr', 'xmr', now() - g * interval '1 day'
          FROM generate_series(1, 30) g",
    )
    .await
    .unwrap();
    assert_balances_match_rows(&pool, "pending rows (none counted)").await;
    exec("UPDATE payout_accumulation SET conversion_status = 'swapping', batch_conversion_id = '00000000-0000-0000-0000-00000000000a'")
        .await
        .unwrap();
    exec("UPDATE payout_accumulation SET conversion_status = 'completed', accumulated_amount_usdt = 9.55 + id / 100.0").await.unwrap();
    assert_balances_match_rows(&pool, "conversion completed").await;
    exec(
        "INSERT INTO payout_batches (batch_id, client_id, client_wallet_address, client_payout_currency, client_payout_network,
              total_amount_usdt, total_payments_count, status)
          VALUES ('00000000-0000-0000-0000-0000000000b1', 'c1', 'w', 'xmr', 'xmr', 0, 0, 'processing')",
    )
    .await
    .unwrap();
    exec(
        "UPDATE payout_accumulation SET payout_batch_id = '00000000-0000-0000-0000-0000000000b1'
          WHERE client_id = 'c1' AND client_wallet_address = 'w'",
    )
    .await
    .unwrap();
    assert_balances_match_rows(&pool, "a group claimed").await;
    exec("UPDATE payout_accumulation SET payout_batch_id = NULL WHERE payout_batch_id IS NOT NULL AND id % 2 = 0").await.unwrap();
    assert_balances_match_rows(&pool, "half of it released").await;
    exec("UPDATE payout_accumulation SET is_paid_out = true, paid_out_at = now() WHERE payout_batch_id IS NOT NULL").await.unwrap();
    assert_balances_match_rows(&pool, "the rest paid").await;
    exec("UPDATE payout_accumulation SET created_at = now() - interval '200 days' WHERE id = 5").await.unwrap();
    exec("UPDATE payout_accumulation SET accumulated_amount_usdt = accumulated_amount_usdt + 1 WHERE client_id = 'c2'").await.unwrap();
    assert_balances_match_rows(&pool, "an age and amounts changed").await;
    exec("UPDATE clients SET payout_threshold_usd = 75 WHERE client_id = 'c1'").await.unwrap();
    exec("UPDATE clients SET payout_strategy = 'instant', payout_threshold_usd = 0 WHERE client_id = 'c2'").await.unwrap();
    assert_balances_match_rows(&pool, "a threshold changed, a client switched to instant").await;
    exec("DELETE FROM payout_accumulation WHERE client_id = 'c3' AND NOT is_paid_out").await.unwrap();
    assert_balances_match_rows(&pool, "rows deleted").await;
}

/// Item 8 of issue 10: a failed batch whose USDT left the wallet waits (up to 7 days) for an
/// operator, but the client's newly converted rows are paid by a new batch meanwhile; the
/// operator's retry still pays the failed one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_batch_waiting_for_an_operator_does_not_hold_the_groups_next_payout() {
    let app = TestApp::spawn().await;
    app.chain.control("/sim/rules", json!({"payout_address": XMR_WALLET, "rule": "refunded"})).await;
    accumulate(&app, "-100954", &[dec!(150)]).await;
    run_conversion(&app, "refunded-first").await.unwrap();
    let (failed, _) = wait_for_batch(&app, "-100954", "failed").await;
    let kept = scalar_i64(&app, "SELECT count(*) FROM payout_accumulation WHERE payout_batch_id = $1 AND NOT is_paid_out", failed);
    assert_eq!(kept.await, 1, "USDT left the wallet, so the row stays with the failed batch");

    app.chain.reset_faults().await;
    accumulate(&app, "-100954", &[dec!(150)]).await;
    run_conversion(&app, "next-rows").await.unwrap();
    let (next, _) = wait_for_batch(&app, "-100954", "completed").await;
    assert_ne!(next, failed, "the new rows are paid by a new batch while the failed one waits");
    let status: String =
        sqlx::query_scalar("SELECT status FROM payout_batches WHERE batch_id = $1").bind(failed).fetch_one(&app.pool).await.unwrap();
    assert_eq!(status, "failed", "the failed batch still waits for its operator");

    // The failed batch still waits for its retry, out of the group's way.
    let outcome = retry(&app, failed).await;
    assert!(matches!(outcome, RetryOutcome::Signalled { .. }), "{outcome:?}");
    let started = Instant::now();
    while scalar_i64(&app, "SELECT count(*) FROM payout_batches WHERE batch_id = $1 AND status = 'completed'", failed).await == 0 {
        assert!(started.elapsed() < Duration::from_secs(90), "the retried batch was not paid");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let paid = scalar_i64(&app, "SELECT count(*) FROM payout_accumulation WHERE payout_batch_id = $1 AND is_paid_out", failed);
    assert_eq!(paid.await, 1);
    assert_eq!(payout_transfers(&app, next).await, 1);
    assert_eq!(payout_transfers(&app, failed).await, 2, "the refunded transfer and its one re-send");
}

/// Item 10 of issue 10: a run that ended mid-payout (terminated, or reset) leaves its batch
/// claimed; the group's next run finds it by its business id and resumes it under the same purpose
/// keys, instead of claiming nothing under a fresh random id and stranding it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_next_run_resumes_the_batch_a_terminated_run_left_processing() {
    let app = TestApp::spawn().await;
    app.chain.control("/sim/rules", json!({"payout_address": XMR_WALLET, "rule": "stall"})).await;
    accumulate(&app, "-100955", &[dec!(150)]).await;
    run_conversion(&app, "terminated-payout").await.unwrap();
    let exchange_id = stalled_exchange(&app).await;
    let workflow_id = client_payout_workflow_id(&group("-100955"));
    let client = app.temporal().await;
    let handle = client.get_workflow_handle::<ClientPayoutWorkflow>(workflow_id.clone());
    handle.terminate(WorkflowTerminateOptions::builder().reason("test: the run ends mid-payout".to_owned()).build()).await.unwrap();
    let (stranded, _) = wait_for_batch(&app, "-100955", "processing").await;

    app.chain.reset_faults().await;
    app.chain.control(&format!("/sim/exchanges/{exchange_id}/outcome"), json!({"outcome": null})).await;
    let input = ClientPayoutInput { group: group("-100955"), resume_batch_id: None };
    let run = client
        .start_workflow(ClientPayoutWorkflow::run, input, WorkflowStartOptions::new(app.task_queue.clone(), workflow_id).build())
        .await
        .unwrap();
    let outcome = run.get_result(WorkflowGetResultOptions::default()).await.expect("the next run pays");
    let ClientPayoutOutcome::Paid { batch_id, .. } = outcome else { panic!("the batch was left behind: {outcome:?}") };
    assert_eq!(batch_id, stranded.to_string(), "the claimed batch is resumed");
    assert_eq!(payout_exchanges(&app).await.len(), 1, "its exchange is found again");
    assert_eq!(payout_transfers(&app, stranded).await, 1, "its USDT was sent once");
    let sequence: i32 = sqlx::query_scalar("SELECT group_sequence FROM payout_batches WHERE batch_id = $1")
        .bind(stranded)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(sequence, 1, "the group's first batch");
}

/// Item 10 of issue 10: a batch left `processing` (payouts) or `swapping` (conversions) past any
/// deadline of its own run is alerted by the 5-minute sweep, once per batch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sweep_alerts_each_batch_left_processing_or_swapping_once() {
    let app = TestApp::spawn().await;
    app.add_client("-100956", workflows::domain::PayoutStrategy::Threshold).await;
    let (stuck_payout, fresh_payout, stuck_conversion) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    for (batch_id, hours) in [(stuck_payout, 13), (fresh_payout, 1)] {
        sqlx::query(
            "INSERT INTO payout_batches (batch_id, client_id, client_wallet_address, client_payout_currency, client_payout_network,
                 total_amount_usdt, total_payments_count, status, processing_started_at, created_at)
             VALUES ($1, '-100956', $2, 'xmr', 'xmr', 150, 1, 'processing', now() - make_interval(hours => $3),
                     now() - make_interval(hours => $3))",
        )
        .bind(batch_id)
        .bind(XMR_WALLET)
        .bind(hours)
        .execute(&app.pool)
        .await
        .unwrap();
    }
    sqlx::query(
        "INSERT INTO batch_conversions (batch_conversion_id, total_eth_usd, total_eth, threshold_at_creation, conversion_status,
             processing_started_at, created_at)
         VALUES ($1, 30, 0.01, 20, 'swapping', now() - interval '13 hours', now() - interval '13 hours')",
    )
    .bind(stuck_conversion)
    .execute(&app.pool)
    .await
    .unwrap();

    for _ in 0..2 {
        integration_tests::run_sweep(&app, 90, None).await;
    }
    let alerts = |id: Uuid| scalar_i64(&app, "SELECT count(*) FROM alerts WHERE subject = $1::text", id);
    assert_eq!(alerts(stuck_payout).await, 1, "the stranded payout batch is alerted once");
    assert_eq!(alerts(stuck_conversion).await, 1, "the stranded conversion is alerted once");
    assert_eq!(alerts(fresh_payout).await, 0, "a batch within its run's deadlines is left alone");
}

/// A lasting condition (a group ChangeNow cannot pay) keeps one open alert: raising it again
/// changes nothing until an operator acknowledges it; found again after that, it is alerted anew.
#[tokio::test]
async fn a_lasting_condition_has_one_open_alert_at_a_time() {
    use activities::db::alerts::{self, AlertKind, NewAlert};
    let (pool, _) = fresh_database(&config()).await;
    let alert = NewAlert {
        dedupe_key: "payout-group-below-minimum-c|w|xmr|xmr".into(),
        kind: AlertKind::PayoutBatchFailed,
        subject: "c".into(),
        message: "below the minimum",
    };
    let raise = || async {
        let mut tx = pool.begin().await.unwrap();
        let raised = alerts::raise_unless_open(&mut tx, &alert).await.unwrap();
        tx.commit().await.unwrap();
        raised
    };
    assert!(raise().await);
    assert!(!raise().await, "still open: not raised again");
    let open = alerts::open(&pool).await.unwrap();
    assert_eq!(open.len(), 1);
    assert!(alerts::acknowledge(&pool, open[0].alert_id).await.unwrap());
    assert!(raise().await, "acknowledged: the condition found again is a new alert");
    assert!(!raise().await);
    assert_eq!(alerts::open(&pool).await.unwrap().len(), 1);
}

/// Sets the test USDT's `balanceOf[owner]` (mapping at storage slot 1) straight in the chain's
/// state, so a transfer signed against one balance executes against another.
async fn set_usdt_balance(app: &TestApp, owner: alloy::primitives::Address, units: alloy::primitives::U256) {
    let mut key = [0u8; 64];
    key[12..32].copy_from_slice(owner.as_slice());
    key[63] = 1;
    let slot = alloy::primitives::keccak256(key);
    let value = alloy::primitives::B256::from(units.to_be_bytes::<32>());
    app.chain.anvil.rpc("anvil_setStorageAt", json!([app.chain.usdt.to_string(), slot.to_string(), value.to_string()])).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reverted_payout_transfer_is_paid_again_under_a_new_purpose_key_on_retry() {
    let app = TestApp::spawn().await;
    accumulate(&app, "-100960", &[dec!(30)]).await;
    run_conversion(&app, "reverted-payout").await.unwrap();
    let hot_wallet = alloy::primitives::Address::from_str(HOT_WALLET).unwrap();
    let usdt_before = app.chain.usdt_balance(hot_wallet).await;

    // The early payout signs and broadcasts its USDT transfer; before it is mined the wallet's
    // USDT is gone, so it reverts.
    app.chain.anvil.rpc("evm_setAutomine", json!([false])).await;
    integration_tests::run_sweep(&app, 90, Some("-100960")).await;
    let broadcast = "SELECT count(*) FROM transfer_attempts WHERE purpose_key LIKE 'payout-%' AND last_broadcast_at IS NOT NULL";
    let started = Instant::now();
    while sqlx::query_scalar::<_, i64>(broadcast).fetch_one(&app.pool).await.unwrap() == 0 {
        assert!(started.elapsed() < Duration::from_secs(60), "the payout never broadcast its transfer");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    set_usdt_balance(&app, hot_wallet, alloy::primitives::U256::ZERO).await;
    app.chain.anvil.rpc("evm_mine", json!([])).await;
    let (batch_id, total) = wait_for_batch(&app, "-100960", "failed").await;
    let reverted = scalar_i64(
        &app,
        "SELECT count(*) FROM transfer_intents WHERE purpose_key LIKE 'payout-' || $1 || '-%' AND status = 'reverted'",
        batch_id,
    );
    assert_eq!(reverted.await, 1);

    // The wallet is topped up again; the operator's retry pays under the next purpose key.
    set_usdt_balance(&app, hot_wallet, usdt_before).await;
    app.chain.anvil.rpc("evm_setAutomine", json!([true])).await;
    assert!(matches!(retry(&app, batch_id).await, RetryOutcome::Signalled { .. }));
    assert_eq!(wait_for_batch(&app, "-100960", "completed").await.0, batch_id, "the same batch is paid");
    let retried: String = sqlx::query_scalar(
        "SELECT purpose_key FROM transfer_intents WHERE purpose_key LIKE 'payout-' || $1 || '-%' AND status = 'confirmed'",
    )
    .bind(batch_id.to_string())
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert!(retried.ends_with("-retry1"), "{retried}");
    let spent = usdt_before - app.chain.usdt_balance(hot_wallet).await;
    assert_eq!(Decimal::from_i128_with_scale(spent.to::<i128>(), 6), total, "the client's USDT left the wallet once");
    let finished = payout_exchanges(&app).await.into_iter().filter(|x| x["status"] == "finished").count();
    assert_eq!(finished, 1);
}

/// Issue 11: `cancel <batch>` named a batch but cancelled whatever the group's run was paying.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_paid_batch_leaves_the_groups_run_paying_the_next_one() {
    let app = TestApp::spawn().await;
    accumulate(&app, "-101400", &[dec!(150)]).await;
    run_conversion(&app, "cancel-which-batch-1").await.unwrap();
    let (paid, _) = wait_for_batch(&app, "-101400", "completed").await;

    // The group's next payout stalls at ChangeNow: its run is busy with that batch.
    app.chain.control("/sim/rules", json!({"payout_address": XMR_WALLET, "rule": "stall"})).await;
    accumulate(&app, "-101400", &[dec!(150)]).await;
    run_conversion(&app, "cancel-which-batch-2").await.unwrap();
    stalled_exchange(&app).await;
    let (paying, _) = wait_for_batch(&app, "-101400", "processing").await;
    assert_ne!(paying, paid);

    // Over the operator API, as the console does.
    let cancel = |batch: Uuid| {
        let url = format!("http://{}/api/v1/payout-batches/{batch}/cancel", app.addr);
        let request = app.http.post(url).bearer_auth(integration_tests::ADMIN_TOKEN).json(&json!({"reason": "operator"}));
        async move {
            let answer = request.send().await.unwrap();
            assert_eq!(answer.status().as_u16(), 200);
            answer.json::<serde_json::Value>().await.unwrap()["outcome"].as_str().unwrap().to_owned()
        }
    };
    assert_eq!(cancel(paid).await, "not_running", "a paid batch has no run to cancel");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let status: String =
        sqlx::query_scalar("SELECT status FROM payout_batches WHERE batch_id = $1").bind(paying).fetch_one(&app.pool).await.unwrap();
    assert_eq!(status, "processing", "the batch being paid was not the one named");

    // Cancelling the batch being paid does stop it (and ends the run before the test does).
    assert_eq!(cancel(paying).await, "cancel_requested");
    wait_for_batch(&app, "-101400", "failed").await;
    let handle = app.temporal().await.get_workflow_handle::<ClientPayoutWorkflow>(client_payout_workflow_id(&group("-101400")));
    let _ = handle.get_result(WorkflowGetResultOptions::default()).await;
}
