//! Signed IPN -> stored payment -> PaymentWorkflow -> one accumulation row, on the real stack.

use activities::db::payments;
use integration_tests::{fresh_payment_id, test_ipn, TestApp};
use payout_starter::{
    cli::{
        route_payment::{self, RouteError, WorkflowStart},
        test_ipn::TestIpn,
    },
    signature::{self, SigningForm},
    temporal_gateway::TemporalGateway,
};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use serde_json::json;
use std::time::Duration;
use temporalio_client::{WorkflowCountOptions, WorkflowGetResultOptions};
use workflows::{domain::PayoutStrategy, payment_workflow_id, PaymentWorkflow};

const PROCESSED_WITHIN: Duration = Duration::from_secs(30);

#[tokio::test]
async fn a_signed_ipn_makes_exactly_one_accumulation_row_with_the_net_amount() {
    let app = TestApp::spawn().await;
    app.add_client("-100111", PayoutStrategy::Threshold).await;
    let payment_id = fresh_payment_id();

    let (status, answer) = app.send_ipn(&test_ipn(payment_id, "-100111", dec!(25.00), dec!(0.0125))).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["workflow"], "scheduled", "{answer}");
    assert!(app.wait_for_status(payment_id, "accumulated", PROCESSED_WITHIN).await);

    let (net_usd, accumulated_eth, fee_usd, conversion_status, wallet): (Decimal, Decimal, Decimal, String, String) = sqlx::query_as(
        "SELECT net_amount_usd, accumulated_eth, fee_amount_usd, conversion_status, client_wallet_address
             FROM payout_accumulation WHERE nowpayments_payment_id = $1",
    )
    .bind(payment_id)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    // 3 % of 25.00 = 0.75; 3 % of 0.0125 ETH = 0.000375 ETH.
    assert_eq!(fee_usd, dec!(0.75));
    assert_eq!(net_usd, dec!(24.25));
    assert_eq!(accumulated_eth, dec!(0.012125));
    assert_eq!(conversion_status, "pending");
    assert_eq!(wallet, integration_tests::XMR_WALLET);
    assert_eq!(app.accumulation_rows(payment_id).await, 1);

    // The workflow's own result agrees with the ledger.
    let handle = app.temporal().await.get_workflow_handle::<PaymentWorkflow>(payment_workflow_id(payment_id));
    let outcome = handle.get_result(WorkflowGetResultOptions::default()).await.unwrap();
    assert_eq!(outcome.fee.net_usd, dec!(24.25));
    assert!(outcome.receipt.accumulation_id.is_some());
}

#[tokio::test]
async fn the_same_ipn_three_times_makes_one_payment_one_workflow_one_row() {
    let app = TestApp::spawn().await;
    app.add_client("-100222", PayoutStrategy::Threshold).await;
    let payment_id = fresh_payment_id();
    let ipn = test_ipn(payment_id, "-100222", dec!(10.05), dec!(0.005));

    let mut answers = Vec::new();
    for _ in 0..3 {
        let (status, answer) = app.send_ipn(&ipn).await;
        assert_eq!(status, 200, "{answer}");
        answers.push(answer);
    }
    assert_eq!(answers[0]["status"], "accepted");
    assert_eq!(answers[1]["status"], "duplicate");
    assert_eq!(answers[2]["status"], "duplicate");
    assert!(app.wait_for_status(payment_id, "accumulated", PROCESSED_WITHIN).await);
    // Once the start is recorded, a fourth copy does not even try to start anything.
    assert!(app.wait_for_workflow_start(payment_id, PROCESSED_WITHIN).await);
    let (_, fourth) = app.send_ipn(&ipn).await;
    assert_eq!(fourth["workflow"], "already_started", "{fourth}");

    assert_eq!(app.payment_rows(payment_id).await, 1);
    assert_eq!(app.accumulation_rows(payment_id).await, 1);
    let ipn_count = app.count("SELECT ipn_count::bigint FROM payments WHERE payment_id = $1", payment_id).await;
    assert_eq!(ipn_count, 4);
    // Temporal's visibility store is eventually consistent: wait for it to see the run.
    let temporal = app.temporal().await;
    let query = format!("WorkflowId = '{}'", payment_workflow_id(payment_id));
    let mut runs = 0;
    for _ in 0..50 {
        runs = temporal.count_workflows(query.clone(), WorkflowCountOptions::default()).await.unwrap().count();
        if runs > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(runs, 1, "one payment, one workflow run");
    // 3 % of 10.05 is 0.3015: the fee rounds to 0.30, the client keeps 9.75.
    let net: Decimal = sqlx::query_scalar("SELECT net_amount_usd FROM payout_accumulation WHERE nowpayments_payment_id = $1")
        .bind(payment_id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(net, dec!(9.75));
}

#[tokio::test]
async fn a_wrong_or_missing_signature_gets_401_and_stores_nothing() {
    let app = TestApp::spawn().await;
    app.add_client("-100333", PayoutStrategy::Threshold).await;
    let payment_id = fresh_payment_id();
    let body = test_ipn(payment_id, "-100333", dec!(25), dec!(0.01)).body();

    let (status, answer) = app.post(body.to_string(), None).await;
    assert_eq!(status, 401);
    assert!(answer["error"].as_str().unwrap().contains("missing"), "{answer}");

    let wrong = signature::sign("not-the-secret", &body);
    let (status, answer) = app.post(body.to_string(), Some(wrong)).await;
    assert_eq!(status, 401);
    assert!(answer["error"].is_string());

    // Signed, then tampered with: the amount changed after signing.
    let good = signature::sign(app.secret().expose(), &body);
    let mut tampered = body.clone();
    tampered["price_amount"] = json!(2500);
    let (status, _) = app.post(tampered.to_string(), Some(good)).await;
    assert_eq!(status, 401);

    assert_eq!(app.payment_rows(payment_id).await, 0);
}

#[tokio::test]
async fn an_ipn_signed_in_the_api_references_form_is_accepted() {
    let app = TestApp::spawn().await;
    app.add_client("-100664", PayoutStrategy::Threshold).await;
    let payment_id = fresh_payment_id();
    let mut body = test_ipn(payment_id, "-100664", dec!(25), dec!(0.0125)).body();
    // As current IPNs carry it; the key-list form signs it as {}.
    body["fee"] = serde_json::from_str(r#"{"currency":"eth","depositFee":1e-7,"serviceFee":0.0001}"#).unwrap();
    let key_list = signature::sign_as(SigningForm::TopLevelKeyList, app.secret().expose(), &body);
    assert_ne!(key_list, signature::sign(app.secret().expose(), &body), "the two forms differ for this body");

    let mut tampered = body.clone();
    tampered["price_amount"] = json!(2500);
    let (status, _) = app.post(tampered.to_string(), Some(key_list.clone())).await;
    assert_eq!(status, 401, "the key-list form still covers every top-level field");

    app.nowpayments_knows(&body).await;
    let (status, answer) = app.post(body.to_string(), Some(key_list)).await;
    assert_eq!(status, 200, "{answer}");
    assert!(app.wait_for_status(payment_id, "accumulated", PROCESSED_WITHIN).await);
}

#[tokio::test]
async fn malformed_json_gets_400_with_a_json_error() {
    let app = TestApp::spawn().await;
    let (status, answer) = app.post("{\"payment_id\": 1,".into(), Some("00".into())).await;
    assert_eq!(status, 400);
    assert!(answer["error"].as_str().unwrap().contains("JSON"), "{answer}");

    // Well-formed and correctly signed, but missing what an IPN must carry.
    let body = json!({"payment_id": fresh_payment_id(), "payment_status": "finished"});
    let sig = signature::sign(app.secret().expose(), &body);
    let (status, answer) = app.post(body.to_string(), Some(sig)).await;
    assert_eq!(status, 400);
    assert!(answer["error"].as_str().unwrap().contains("order_id"), "{answer}");
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM payments").fetch_one(&app.pool).await.unwrap();
    assert_eq!(stored, 0);
}

#[tokio::test]
async fn an_oversized_body_is_refused() {
    let app = TestApp::spawn().await;
    let (status, _) = app.post(format!("{{\"pad\":\"{}\"}}", "x".repeat(100_000)), Some("00".into())).await;
    assert_eq!(status, 413);
}

#[tokio::test]
async fn a_signed_ipn_for_an_unknown_client_gets_422_and_is_kept_as_unroutable_with_an_alert() {
    let app = TestApp::spawn().await;
    let payment_id = fresh_payment_id();
    let mut ipn = test_ipn(payment_id, "-100999", dec!(25), dec!(0.01));
    ipn.status = "confirming".into();
    let (status, answer) = app.send_ipn(&ipn).await;
    assert_eq!(status, 422);
    assert!(answer["error"].as_str().unwrap().contains("-100999"), "{answer}");
    // The later `finished` IPN is kept too, in place of the earlier status.
    ipn.status = "finished".into();
    let (status, _) = app.send_ipn(&ipn).await;
    assert_eq!(status, 422);

    assert_eq!(app.payment_rows(payment_id).await, 0, "payments only holds known clients");
    let kept: Option<(String, String, i32)> =
        sqlx::query_as("SELECT client_id, payment_status, ipn_count FROM unroutable_ipns WHERE payment_id = $1")
            .bind(payment_id)
            .fetch_optional(&app.pool)
            .await
            .unwrap_or(None);
    assert_eq!(kept, Some(("-100999".to_owned(), "finished".to_owned(), 2)), "the signed IPN is kept");
    let alerts: Vec<(String, String)> = sqlx::query_as("SELECT kind, message FROM alerts WHERE subject = $1 AND acknowledged_at IS NULL")
        .bind(payment_id.to_string())
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert_eq!(alerts.len(), 1, "one alert per payment, however many IPNs: {alerts:?}");
    assert_eq!(alerts[0].0, "unroutable_ipn");
    assert!(alerts[0].1.contains("-100999") && alerts[0].1.contains("payment route"), "{alerts:?}");

    // A wrong signature for an unknown client keeps nothing: only NOWPayments' word counts.
    let other = fresh_payment_id();
    let body = test_ipn(other, "-100998", dec!(25), dec!(0.01)).body();
    let (status, _) = app.post(body.to_string(), Some(signature::sign("not-the-secret", &body))).await;
    assert_eq!(status, 401);
    let kept = app.count("SELECT count(*) FROM unroutable_ipns WHERE payment_id = $1", other).await;
    assert_eq!(kept, 0);
}

#[tokio::test]
async fn an_unroutable_ipn_is_paid_by_payment_route_once_its_owner_registered() {
    let app = TestApp::spawn().await;
    let payment_id = fresh_payment_id();
    let (status, _) = app.send_ipn(&test_ipn(payment_id, "-100777", dec!(25.00), dec!(0.0125))).await;
    assert_eq!(status, 422);
    let gateway = TemporalGateway::new(&app.temporal_address, &app.config.temporal_namespace, &app.task_queue, app.config.platform_fee);

    // Before the client exists, routing refuses and changes nothing.
    let early = route_payment::route(&app.pool, &gateway, payment_id, "ops-test").await;
    assert!(matches!(early, Err(RouteError::ClientStillUnknown { .. })), "{early:?}");
    assert_eq!(app.payment_rows(payment_id).await, 0);

    let (registered, body) = integration_tests::telegram::register_with_proof(
        &app,
        serde_json::json!({"client_id": "-100777", "wallet_address": integration_tests::XMR_WALLET, "payout_currency": "xmr",
                           "payout_strategy": "threshold", "payout_threshold_usd": 100}),
    )
    .await;
    assert_eq!(registered, 201, "{body}");
    let routed = route_payment::route(&app.pool, &gateway, payment_id, "ops-test").await.expect("route");
    assert_eq!(routed.workflow, WorkflowStart::Started, "{routed:?}");
    assert!(app.wait_for_status(payment_id, "accumulated", PROCESSED_WITHIN).await);
    assert_eq!(app.accumulation_rows(payment_id).await, 1);
    let payment = payments::find(&app.pool, payment_id).await.unwrap().expect("routed into payments");
    assert_eq!(payment.net_amount_usd, Some(dec!(24.25)), "the same payment as through the webhook");

    // Routing again is harmless; the alert was closed by the first routing.
    let again = route_payment::route(&app.pool, &gateway, payment_id, "ops-test").await.expect("route again");
    assert!(again.already_routed, "{again:?}");
    assert_eq!(again.workflow, WorkflowStart::AlreadyStarted, "{again:?}");
    assert_eq!(app.accumulation_rows(payment_id).await, 1);
    let open = app.count("SELECT count(*) FROM alerts WHERE subject = $1::bigint::text AND acknowledged_at IS NULL", payment_id).await;
    assert_eq!(open, 0);
    let unknown = route_payment::route(&app.pool, &gateway, fresh_payment_id(), "ops-test").await;
    assert!(matches!(unknown, Err(RouteError::NotUnroutable(_))), "{unknown:?}");
}

/// Sends the payment's IPN once with each status, in turn; returns the NOWPayments status and
/// the workflow each answer reports (every answer must be 200).
async fn send_statuses(app: &TestApp, ipn: &TestIpn, statuses: &[&str]) -> Vec<(String, String)> {
    let mut seen = Vec::new();
    for status in statuses {
        let (code, answer) = app.send_ipn(&TestIpn { status: (*status).into(), ..ipn.clone() }).await;
        assert_eq!(code, 200, "{status}: {answer}");
        seen.push((answer["payment_status"].as_str().unwrap().to_owned(), answer["workflow"].as_str().unwrap().to_owned()));
    }
    seen
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected.iter().map(|(a, b)| ((*a).to_owned(), (*b).to_owned())).collect()
}

#[tokio::test]
async fn a_finished_ipn_after_failed_or_expired_is_paid() {
    let app = TestApp::spawn().await;
    app.add_client("-100666", PayoutStrategy::Threshold).await;
    for closed in ["failed", "expired"] {
        let payment_id = fresh_payment_id();
        let ipn = test_ipn(payment_id, "-100666", dec!(30), dec!(0.015));
        // The money arrived late: NOWPayments reports `finished` after all.
        let seen = send_statuses(&app, &ipn, &[closed, "finished"]).await;
        assert_eq!(seen, pairs(&[(closed, "not_payable"), ("finished", "scheduled")]), "after {closed}");
        assert!(app.wait_for_status(payment_id, "accumulated", PROCESSED_WITHIN).await, "after {closed}");
        assert_eq!(app.accumulation_rows(payment_id).await, 1);
    }
}

#[tokio::test]
async fn finished_and_refunded_are_never_overwritten() {
    let app = TestApp::spawn().await;
    app.add_client("-100665", PayoutStrategy::Threshold).await;
    let finished = test_ipn(fresh_payment_id(), "-100665", dec!(30), dec!(0.015));
    send_statuses(&app, &finished, &["finished"]).await;
    assert!(app.wait_for_status(finished.payment_id, "accumulated", PROCESSED_WITHIN).await);
    let later = ["refunded", "failed", "expired", "partially_paid", "waiting"];
    let seen = send_statuses(&app, &finished, &later).await;
    assert!(seen.iter().all(|(status, _)| status == "finished"), "{seen:?}");

    let refunded = test_ipn(fresh_payment_id(), "-100665", dec!(30), dec!(0.015));
    let seen = send_statuses(&app, &refunded, &["refunded", "finished", "failed", "confirming"]).await;
    assert_eq!(seen, pairs(&[("refunded", "not_payable"); 4]));
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(app.accumulation_rows(refunded.payment_id).await, 0);
    assert_eq!(app.accumulation_rows(finished.payment_id).await, 1);
}

#[tokio::test]
async fn a_non_final_status_is_recorded_without_an_accumulation_and_finished_later_pays() {
    let app = TestApp::spawn().await;
    app.add_client("-100444", PayoutStrategy::Threshold).await;
    let payment_id = fresh_payment_id();
    let mut ipn = test_ipn(payment_id, "-100444", dec!(40), dec!(0.02));
    ipn.status = "confirming".into();

    let (status, answer) = app.send_ipn(&ipn).await;
    assert_eq!(status, 200);
    assert_eq!(answer["workflow"], "not_payable");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(app.payment_status(payment_id).await.as_deref(), Some("received"));
    assert_eq!(app.accumulation_rows(payment_id).await, 0);

    // The later `finished` IPN updates the same payment and starts its workflow.
    ipn.status = "finished".into();
    let (status, answer) = app.send_ipn(&ipn).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["workflow"], "scheduled");
    assert!(app.wait_for_status(payment_id, "accumulated", PROCESSED_WITHIN).await);

    // A late, out-of-order `confirming` cannot undo `finished`.
    ipn.status = "confirming".into();
    let (_, answer) = app.send_ipn(&ipn).await;
    assert_eq!(answer["payment_status"], "finished");
    assert_eq!(app.accumulation_rows(payment_id).await, 1);
}

#[tokio::test]
async fn an_instant_client_payment_is_handed_off_without_an_accumulation() {
    let app = TestApp::spawn().await;
    app.add_client("-100555", PayoutStrategy::Instant).await;
    let payment_id = fresh_payment_id();
    let (status, _) = app.send_ipn(&test_ipn(payment_id, "-100555", dec!(19.99), dec!(0.01))).await;
    assert_eq!(status, 200);
    assert!(app.wait_for_status(payment_id, "awaiting_instant_payout", PROCESSED_WITHIN).await);
    assert_eq!(app.accumulation_rows(payment_id).await, 0);
    let (net_usd, net_eth): (Decimal, Decimal) =
        sqlx::query_as("SELECT net_amount_usd, net_amount_eth FROM payments WHERE payment_id = $1")
            .bind(payment_id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(net_usd, dec!(19.39)); // fee 0.5997 -> 0.60
    assert_eq!(net_eth, dec!(0.0097));
}

#[tokio::test]
async fn a_payment_not_priced_in_usd_fails_its_workflow_routes_nothing_and_ends_unverified() {
    let app = TestApp::spawn().await;
    app.add_client("-100888", PayoutStrategy::Threshold).await;
    let payment_id = fresh_payment_id();
    let mut body = test_ipn(payment_id, "-100888", dec!(25), dec!(0.01)).body();
    body["price_currency"] = json!("eur");
    app.nowpayments_knows(&body).await;
    let sig = signature::sign(app.secret().expose(), &body);
    let (status, _) = app.post(body.to_string(), Some(sig)).await;
    assert_eq!(status, 200, "recorded like any IPN");

    assert!(app.wait_for_workflow_start(payment_id, PROCESSED_WITHIN).await);
    let handle = app.temporal().await.get_workflow_handle::<PaymentWorkflow>(payment_workflow_id(payment_id));
    let result = handle.get_result(WorkflowGetResultOptions::default()).await;
    let error = format!("{:?}", result.expect_err("the workflow must fail"));
    assert!(error.contains("eur"), "the failure names the currency: {error}");
    assert_eq!(app.accumulation_rows(payment_id).await, 0);
    // Judged on NOWPayments' record before it is taken: left unverified with the reason, not processing.
    assert_eq!(app.payment_status(payment_id).await.as_deref(), Some("unverified"));
}
