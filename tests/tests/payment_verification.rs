//! A signed IPN is only a trigger: what is paid is what NOWPayments' own record says (the
//! sandbox's `GET /v1/payment/{id}`). A lying IPN, an unknown payment, a record that is not
//! finished, an order for an unregistered client, and NOWPayments down, on the real stack.

use integration_tests::{fresh_payment_id, test_ipn, TestApp};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use serde_json::json;
use std::time::Duration;
use workflows::domain::PayoutStrategy;

const PROCESSED_WITHIN: Duration = Duration::from_secs(60);

async fn alerts_of(app: &TestApp, kind: &str, payment_id: i64) -> Vec<String> {
    sqlx::query_scalar("SELECT message FROM alerts WHERE kind = $1 AND subject = $2")
        .bind(kind)
        .bind(format!("payment {payment_id}"))
        .fetch_all(&app.pool)
        .await
        .unwrap()
}

async fn net_of_row(app: &TestApp, payment_id: i64) -> Option<(Decimal, Decimal)> {
    sqlx::query_as("SELECT net_amount_usd, accumulated_eth FROM payout_accumulation WHERE nowpayments_payment_id = $1")
        .bind(payment_id)
        .fetch_optional(&app.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_lying_ipn_is_paid_what_nowpayments_recorded_and_alerted() {
    let app = TestApp::spawn().await;
    app.add_client("-100901", PayoutStrategy::Threshold).await;
    let payment_id = fresh_payment_id();
    // NOWPayments saw a 40 USD subscription settle 0.0133 ETH ...
    app.nowpayments_knows(&test_ipn(payment_id, "-100901", dec!(40), dec!(0.0133)).body()).await;
    // ... and someone with the IPN secret claims 1,500 USD and 0.5 ETH.
    let (status, answer) = app.send_ipn_only(&test_ipn(payment_id, "-100901", dec!(1500), dec!(0.5))).await;
    assert_eq!(status, 200, "{answer}");
    assert!(app.wait_for_status(payment_id, "accumulated", PROCESSED_WITHIN).await, "the real payment is still paid");

    // 3 % of 40 = 1.20; 3 % of 0.0133 ETH = 0.000399.
    assert_eq!(net_of_row(&app, payment_id).await, Some((dec!(38.80), dec!(0.012901))));
    let (price, outcome): (Decimal, Decimal) = sqlx::query_as("SELECT price_amount, outcome_amount FROM payments WHERE payment_id = $1")
        .bind(payment_id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!((price, outcome), (dec!(40), dec!(0.0133)), "the record's facts replace the IPN's");
    let alerts = alerts_of(&app, "payment_mismatch", payment_id).await;
    assert_eq!(alerts.len(), 1, "one payment_mismatch alert");
    assert!(alerts[0].contains("price_amount: IPN '1500', NOWPayments '40'"), "{}", alerts[0]);
}

#[tokio::test]
async fn a_payment_nowpayments_does_not_know_is_stored_unverified_and_never_paid() {
    let app = TestApp::spawn().await;
    app.add_instant_client("-100902", "xmr", "xmr", integration_tests::XMR_WALLET).await;
    let payment_id = fresh_payment_id();
    let (status, _) = app.send_ipn_only(&test_ipn(payment_id, "-100902", dec!(1500), dec!(0.5))).await;
    assert_eq!(status, 200, "the IPN is stored (NOWPayments must not retry it forever)");
    assert!(app.wait_for_status(payment_id, "unverified", PROCESSED_WITHIN).await);

    let reason: String = sqlx::query_scalar("SELECT unverified_reason FROM payments WHERE payment_id = $1")
        .bind(payment_id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert!(reason.contains("does not know payment"), "{reason}");
    assert_eq!(alerts_of(&app, "payment_unverified", payment_id).await.len(), 1);
    assert_eq!(app.accumulation_rows(payment_id).await, 0);
    let instant: i64 = app.count("SELECT count(*) FROM instant_payouts WHERE payment_id = $1", payment_id).await;
    assert_eq!(instant, 0, "no instant payout for an unverified payment");
    assert!(app.chain.exchanges().await.is_empty(), "nothing went to ChangeNow");
}

#[tokio::test]
async fn a_record_that_is_not_finished_or_names_an_unregistered_client_is_not_paid() {
    let app = TestApp::spawn().await;
    app.add_client("-100903", PayoutStrategy::Threshold).await;

    let refunded = fresh_payment_id();
    let mut record = test_ipn(refunded, "-100903", dec!(40), dec!(0.0133)).body();
    record["payment_status"] = json!("refunded");
    app.nowpayments_knows(&record).await;
    app.send_ipn_only(&test_ipn(refunded, "-100903", dec!(40), dec!(0.0133))).await;

    let elsewhere = fresh_payment_id();
    app.nowpayments_knows(&test_ipn(elsewhere, "-100999", dec!(40), dec!(0.0133)).body()).await;
    app.send_ipn_only(&test_ipn(elsewhere, "-100903", dec!(40), dec!(0.0133))).await;

    for payment_id in [refunded, elsewhere] {
        assert!(app.wait_for_status(payment_id, "unverified", PROCESSED_WITHIN).await, "payment {payment_id}");
        assert_eq!(app.accumulation_rows(payment_id).await, 0);
        assert_eq!(alerts_of(&app, "payment_mismatch", payment_id).await.len(), 1);
    }
    let reason: String = sqlx::query_scalar("SELECT unverified_reason FROM payments WHERE payment_id = $1")
        .bind(elsewhere)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert!(reason.contains("client -100999, which is not registered"), "{reason}");
}

#[tokio::test]
async fn nowpayments_down_pays_nothing_loses_nothing_and_recovers() {
    let app = TestApp::spawn().await;
    app.add_client("-100904", PayoutStrategy::Threshold).await;
    app.chain.control("/sim/nowpayments/faults", json!({"status": 503, "for_secs": 6})).await;
    let payment_id = fresh_payment_id();
    let (status, _) = app.send_ipn(&test_ipn(payment_id, "-100904", dec!(25), dec!(0.0125))).await;
    assert_eq!(status, 200);

    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(app.payment_status(payment_id).await.as_deref(), Some("received"), "nothing routed while NOWPayments is down");
    assert_eq!(app.accumulation_rows(payment_id).await, 0);

    assert!(app.wait_for_status(payment_id, "accumulated", PROCESSED_WITHIN).await, "routed once NOWPayments answers");
    assert_eq!(net_of_row(&app, payment_id).await, Some((dec!(24.25), dec!(0.012125))));
    assert!(alerts_of(&app, "payment_mismatch", payment_id).await.is_empty());

    // Rate-limited as well: 429 with Retry-After, a few times.
    app.chain.control("/sim/nowpayments/faults", json!({"status": 429, "retry_after": 1, "count": 3})).await;
    let second = fresh_payment_id();
    app.send_ipn(&test_ipn(second, "-100904", dec!(25), dec!(0.0125))).await;
    assert!(app.wait_for_status(second, "accumulated", PROCESSED_WITHIN).await);
}

#[tokio::test]
async fn the_sandbox_answers_as_nowpayments_does() {
    let app = TestApp::spawn().await;
    let http = reqwest::Client::new();
    let url = |id: i64| format!("{}/v1/payment/{id}", app.chain.changenow_url());
    let payment_id = fresh_payment_id();
    app.nowpayments_knows(&test_ipn(payment_id, "-100905", dec!(40), dec!(0.0133)).body()).await;

    let no_key = http.get(url(payment_id)).send().await.unwrap();
    assert_eq!(no_key.status(), 401);
    let key = changenow_simulator::config::LOCAL_NOWPAYMENTS_API_KEY;
    let known = http.get(url(payment_id)).header("x-api-key", key).send().await.unwrap();
    assert_eq!(known.status(), 200);
    let record: serde_json::Value = known.json().await.unwrap();
    assert_eq!(record["payment_status"], "finished");
    assert_eq!(record["order_id"], "PGP-6271402111|-100905");
    let unknown = http.get(url(payment_id + 1)).header("x-api-key", key).send().await.unwrap();
    assert_eq!(unknown.status(), 404);
    let body: serde_json::Value = unknown.json().await.unwrap();
    assert_eq!((body["statusCode"].as_u64(), body["status"].as_bool()), (Some(404), Some(false)));
}

#[tokio::test]
async fn an_unverified_payment_is_verified_again_by_an_operator_and_paid_once() {
    use payout_starter::{cli::verify_payment::verify_again, temporal_gateway::TemporalGateway};
    let app = TestApp::spawn().await;
    app.add_client("-100906", PayoutStrategy::Threshold).await;
    let payment_id = fresh_payment_id();
    // The IPN arrives before NOWPayments' API knows the payment (a leaked secret racing it, or
    // an account mix-up since fixed): unverified.
    app.send_ipn_only(&test_ipn(payment_id, "-100906", dec!(40), dec!(0.0133))).await;
    assert!(app.wait_for_status(payment_id, "unverified", PROCESSED_WITHIN).await);
    let gateway = TemporalGateway::new(&app.temporal_address, &app.config.temporal_namespace, &app.task_queue, app.config.platform_fee);
    let accumulated = verify_again(&app.pool, &gateway, payment_id).await;
    assert!(accumulated.is_ok(), "{accumulated:?}");
    // Still unknown: unverified again, with a new alert.
    assert!(app.wait_for_status(payment_id, "unverified", PROCESSED_WITHIN).await);

    app.nowpayments_knows(&test_ipn(payment_id, "-100906", dec!(40), dec!(0.0133)).body()).await;
    verify_again(&app.pool, &gateway, payment_id).await.expect("a second verify");
    assert!(app.wait_for_status(payment_id, "accumulated", PROCESSED_WITHIN).await);
    assert_eq!(net_of_row(&app, payment_id).await, Some((dec!(38.80), dec!(0.012901))));
    let open: i64 = sqlx::query_scalar("SELECT count(*) FROM alerts WHERE subject = $1 AND acknowledged_at IS NULL")
        .bind(format!("payment {payment_id}"))
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(open, 0, "the verify settled the payment's alerts");

    let again = verify_again(&app.pool, &gateway, payment_id).await;
    assert!(again.is_err_and(|e| e.to_string().contains("only unverified payments")), "a routed payment is never run again");
    assert_eq!(app.accumulation_rows(payment_id).await, 1);
}
