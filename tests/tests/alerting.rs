//! Issue 12: what operators are told, and what Prometheus sees. Against the real stack: the
//! alert rules run as `AlertRulesWorkflow` through Temporal, alerts reach a local HTTP receiver,
//! the stablecoin price comes from the ChangeNow simulator.

use activities::db::alert_rules;
use axum::{extract::State, routing::post, Json, Router};
use integration_tests::{accumulate, fill_pending_pool, free_port, run_conversion, TestApp};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use temporalio_client::{WorkflowGetResultOptions, WorkflowStartOptions};
use workflows::{
    activity_definitions::{AlertRulesInput, HotWalletBalances},
    AlertRulesOutcome, AlertRulesWorkflow, AlertRulesWorkflowInput,
};

/// One pass of the alert schedule's workflow, as the Schedule starts it.
async fn run_alert_rules(app: &TestApp) -> AlertRulesOutcome {
    let id = format!("alert-rules-test-{}", uuid::Uuid::new_v4().simple());
    let handle = app
        .temporal()
        .await
        .start_workflow(
            AlertRulesWorkflow::run,
            AlertRulesWorkflowInput::default(),
            WorkflowStartOptions::new(app.task_queue.clone(), id).build(),
        )
        .await
        .expect("start the alert rules");
    handle.get_result(WorkflowGetResultOptions::default()).await.expect("the alert rules complete")
}

/// An HTTP receiver for alerts on `port`, keeping what it was sent.
async fn start_receiver(port: u16) -> (Arc<Mutex<Vec<Value>>>, tokio::task::JoinHandle<()>) {
    let received = Arc::new(Mutex::new(Vec::new()));
    let app = Router::new()
        .route(
            "/alerts",
            post(|State(seen): State<Arc<Mutex<Vec<Value>>>>, Json(alert): Json<Value>| async move {
                seen.lock().unwrap().push(alert);
                "ok"
            }),
        )
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.expect("bind the receiver");
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.ok();
    });
    (received, task)
}

/// (kind, open, delivered) of every alert, oldest first.
async fn alerts(app: &TestApp) -> Vec<(String, bool, bool)> {
    sqlx::query_as(
        "SELECT kind, acknowledged_at IS NULL, delivered_at IS NOT NULL FROM alerts WHERE kind <> 'daily_digest' ORDER BY alert_id",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_depeg_is_alerted_once_delivered_to_a_receiver_that_was_down_and_closed_when_the_price_recovers() {
    let mut app = TestApp::spawn_without_worker(integration_tests::config(), &integration_tests::config().temporal_address).await;
    let receiver_port = free_port();
    app.config.alert_webhook_url = Some(activities::config::Secret::new(format!("http://127.0.0.1:{receiver_port}/alerts")));
    app.start_worker();

    // At the peg: nothing to say.
    let calm = run_alert_rules(&app).await;
    assert!(calm.price_read && calm.wallet_read, "{calm:?}");
    assert_eq!(alerts(&app).await, vec![]);

    app.chain.control("/sim/prices", json!({"usdt": "0.97"})).await;
    let first = run_alert_rules(&app).await;
    assert_eq!(first.rules.raised, 1, "{first:?}");
    assert_eq!(first.delivery, None, "the receiver is down: delivery fails and is left for later");
    let second = run_alert_rules(&app).await;
    assert_eq!(second.rules.raised, 0, "one open alert per condition, not one per evaluation");
    assert_eq!(alerts(&app).await, vec![("stablecoin_depeg".to_owned(), true, false)]);
    let attempts: i32 =
        sqlx::query_scalar("SELECT delivery_attempts FROM alerts WHERE kind = 'stablecoin_depeg'").fetch_one(&app.pool).await.unwrap();
    assert!(attempts >= 2, "each run tried the receiver: {attempts}");

    let (received, receiver) = start_receiver(receiver_port).await;
    let third = run_alert_rules(&app).await;
    assert_eq!(third.delivery.map(|d| d.delivered), Some(1));
    assert_eq!(alerts(&app).await, vec![("stablecoin_depeg".to_owned(), true, true)]);
    {
        let received = received.lock().unwrap();
        assert_eq!(received.len(), 1, "{received:?}");
        let alert = &received[0];
        assert_eq!(alert["kind"], "stablecoin_depeg");
        assert_eq!(alert["severity"], "critical");
        assert_eq!(alert["details"]["subject"], "usdt");
        assert!(alert["summary"].as_str().unwrap().contains("0.97 USD"), "{alert}");
        assert!(alert["summary"].as_str().unwrap().contains("USDC"), "names the remedy: {alert}");
        assert!(alert["alert_id"].is_i64() && alert["raised_at"].is_string(), "{alert}");
    }
    run_alert_rules(&app).await;
    assert_eq!(received.lock().unwrap().len(), 1, "delivered once");

    app.chain.control("/sim/prices", json!({"usdt": "1"})).await;
    let recovered = run_alert_rules(&app).await;
    assert_eq!(recovered.rules.resolved, 1, "{recovered:?}");
    assert_eq!(alerts(&app).await, vec![("stablecoin_depeg".to_owned(), false, true)]);
    let resolved: bool = sqlx::query_scalar("SELECT resolved_at IS NOT NULL FROM alerts WHERE kind = 'stablecoin_depeg'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert!(resolved, "closed by the rule, not by an operator");
    receiver.abort();
}

fn rules_input(hot_wallet: Option<HotWalletBalances>) -> AlertRulesInput {
    AlertRulesInput { stablecoin_price: None, hot_wallet, over_threshold_days: 7, pool_max_wait_minutes: 60 }
}

async fn open_kinds(app: &TestApp) -> Vec<String> {
    sqlx::query_scalar("SELECT kind FROM alerts WHERE acknowledged_at IS NULL AND kind <> 'daily_digest' ORDER BY kind")
        .fetch_all(&app.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_waiting_pool_a_client_over_threshold_for_a_week_and_a_low_wallet_are_each_alerted_once_and_closed() {
    let app = TestApp::spawn().await;
    // A client whose converted USDT passed its 100 USD threshold: converted, then aged 8 days.
    // (Its threshold is raised while it converts, so the conversion starts no payout for it.)
    accumulate(&app, "-101200", &[dec!(60), dec!(60)]).await;
    let set_threshold = |usd: i32| {
        sqlx::query("UPDATE clients SET payout_threshold_usd = $1 WHERE client_id = '-101200'").bind(Decimal::from(usd)).execute(&app.pool)
    };
    set_threshold(1000).await.unwrap();
    run_conversion(&app, "over-threshold").await.expect("the conversion completes");
    set_threshold(100).await.unwrap();
    sqlx::query("UPDATE payout_accumulation SET conversion_timestamp = now() - interval '8 days' WHERE client_id = '-101200'")
        .execute(&app.pool)
        .await
        .unwrap();
    // A pool whose oldest payment has waited 2 hours (the limit given is 60 minutes).
    fill_pending_pool(&app.pool, "-101201", 3).await;
    sqlx::query("UPDATE payout_accumulation SET created_at = now() - interval '2 hours' WHERE client_id = '-101201'")
        .execute(&app.pool)
        .await
        .unwrap();
    let poor = HotWalletBalances { eth_wei: dec!(1e15), base_fee_wei: dec!(1e9), usdt_base_units: None, usdc_base_units: None };

    let first = alert_rules::evaluate(&app.pool, &rules_input(Some(poor.clone()))).await.unwrap();
    assert_eq!(open_kinds(&app).await, ["client_over_threshold_7d", "conversion_pool_waiting", "hot_wallet_low"]);
    assert_eq!(first.raised, 3, "{first:?}");
    let message: String =
        sqlx::query_scalar("SELECT message FROM alerts WHERE kind = 'client_over_threshold_7d'").fetch_one(&app.pool).await.unwrap();
    assert!(message.contains("-101200"), "{message}");
    assert!(first.digest_raised, "open warnings make the day's digest");

    let again = alert_rules::evaluate(&app.pool, &rules_input(Some(poor))).await.unwrap();
    assert_eq!((again.raised, again.resolved, again.digest_raised), (0, 0, false), "deduplicated: {again:?}");

    // A reading that failed changes nothing about its rule.
    let blind = alert_rules::evaluate(&app.pool, &rules_input(None)).await.unwrap();
    assert_eq!(blind.resolved, 0);
    assert!(open_kinds(&app).await.contains(&"hot_wallet_low".to_owned()));

    // Each condition clears: funded, the pool converted recently, the client paid.
    sqlx::query("UPDATE payout_accumulation SET created_at = now() WHERE client_id = '-101201'").execute(&app.pool).await.unwrap();
    sqlx::query("UPDATE payout_accumulation SET conversion_timestamp = now() WHERE client_id = '-101200'")
        .execute(&app.pool)
        .await
        .unwrap();
    let funded = HotWalletBalances { eth_wei: dec!(1e21), base_fee_wei: dec!(1e9), usdt_base_units: None, usdc_base_units: None };
    let cleared = alert_rules::evaluate(&app.pool, &rules_input(Some(funded))).await.unwrap();
    assert_eq!(cleared.resolved, 3, "{cleared:?}");
    assert_eq!(open_kinds(&app).await, Vec::<String>::new());
}

/// The value of the sample `name` (with its labels, as printed) in a Prometheus text page.
fn sample(page: &str, name: &str) -> Option<Decimal> {
    page.lines().find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

#[tokio::test]
async fn metrics_show_intake_payments_the_ledger_and_batch_outcomes_and_the_worker_serves_the_sdks() {
    let mut app = TestApp::spawn_without_worker(integration_tests::config(), &integration_tests::config().temporal_address).await;
    let worker_metrics = format!("127.0.0.1:{}", free_port());
    app.config.metrics_addr = Some(worker_metrics.parse().unwrap());
    app.start_worker();

    // 80 USD: below the client's 100 USD threshold, so no payout moves the figures meanwhile.
    accumulate(&app, "-101210", &[dec!(30), dec!(30), dec!(20)]).await;
    let (code, _) = app.post(r#"{"payment_id": 1}"#.to_owned(), Some("0".repeat(128))).await;
    assert_eq!(code, 401);
    let page = |url: String| async move { reqwest::get(url).await.expect("metrics").text().await.unwrap() };
    let before = page(format!("http://{}/metrics", app.addr)).await;
    assert_eq!(sample(&before, r#"payout_ipn_requests_total{code="200"}"#), Some(dec!(3)), "{before}");
    assert_eq!(sample(&before, r#"payout_ipn_requests_total{code="401"}"#), Some(dec!(1)));
    assert_eq!(sample(&before, r#"payout_payments_total{strategy="threshold"}"#), Some(dec!(3)));
    assert_eq!(sample(&before, r#"payout_payments_total{strategy="instant"}"#), Some(dec!(0)));
    // 80 USD less the 3 % fee, pending.
    assert_eq!(sample(&before, "payout_pending_pool_usd"), Some(dec!(77.6)), "{before}");
    assert_eq!(sample(&before, "payout_unpaid_usdt"), Some(dec!(0)));
    assert!(sample(&before, "payout_micro_batch_threshold_usd").is_some());
    assert_eq!(sample(&before, r#"payout_open_alerts{severity="critical"}"#), Some(dec!(0)));

    run_conversion(&app, "metrics").await.expect("the conversion completes");
    let after = page(format!("http://{}/metrics", app.addr)).await;
    let converted: Decimal = sqlx::query_scalar("SELECT actual_usdt_received FROM batch_conversions").fetch_one(&app.pool).await.unwrap();
    assert_eq!(sample(&after, "payout_unpaid_usdt"), Some(converted.normalize()), "{after}");
    assert_eq!(sample(&after, "payout_pending_pool_usd"), Some(dec!(0)));
    assert_eq!(sample(&after, r#"payout_conversions_total{outcome="completed"}"#), Some(dec!(1)), "{after}");
    assert_eq!(sample(&after, r#"payout_batch_duration_seconds_count{kind="conversion",outcome="completed"}"#), Some(dec!(1)));
    assert_eq!(
        sample(&after, r#"payout_batch_duration_seconds_bucket{le="+Inf",kind="conversion",outcome="completed"}"#)
            .or_else(|| sample(&after, r#"payout_batch_duration_seconds_bucket{kind="conversion",outcome="completed",le="+Inf"}"#)),
        Some(dec!(1)),
        "{after}"
    );

    // The worker: the SDK's own metrics and ours, on METRICS_ADDR.
    run_alert_rules(&app).await;
    let worker = page(format!("http://{worker_metrics}/metrics")).await;
    assert!(worker.contains("temporal_workflow_completed"), "the SDK's worker metrics: {worker}");
    assert!(worker.contains("temporal_activity_execution_latency"), "{worker}");
    let eth = worker.lines().find(|l| l.starts_with("payout_hot_wallet_balance{") && l.contains(r#"asset="eth""#));
    assert!(eth.is_some_and(|l| !l.ends_with(" 0")), "the hot wallet's ETH: {worker}");
    assert!(worker.contains("payout_over_threshold_query"), "{worker}");
}
