//! Nothing is lost while Temporal is away: the IPN is stored and answered, and the re-driver
//! starts the workflow once Temporal is back. `/ready` says 503 meanwhile, 200 after.

use integration_tests::{config, free_port, fresh_payment_id, test_ipn, TestApp};
use rust_decimal_macros::dec;
use std::{
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};
use workflows::domain::PayoutStrategy;

/// A Temporal dev server this test owns (in memory, no UI), killed when dropped.
struct OwnTemporal(Child);

impl OwnTemporal {
    fn start(port: u16) -> Self {
        let child = Command::new("temporal")
            .args(["server", "start-dev", "--headless", "--ip", "127.0.0.1", "--port", &port.to_string()])
            .args(["--log-level", "error", "--search-attribute", "ClientId=Keyword", "--search-attribute", "PaymentId=Keyword"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the temporal CLI must be on PATH (make test installs it)");
        Self(child)
    }
}

impl Drop for OwnTemporal {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Until the server answers for the namespace: its port opens well before it serves, and on a
/// loaded machine a worker connecting in that gap gave up (CI failed this way once).
async fn wait_until_serving(address: &str, namespace: &str) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let described = tokio::process::Command::new("temporal")
            .args(["operator", "namespace", "describe", "--namespace", namespace, "--address", address])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .await
            .is_ok_and(|status| status.success());
        if described {
            return;
        }
        assert!(Instant::now() < deadline, "the test's Temporal server did not start serving {namespace}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test]
async fn an_ipn_accepted_while_temporal_is_down_is_processed_once_it_is_back() {
    let port = free_port();
    let address = format!("127.0.0.1:{port}");
    let mut app = TestApp::spawn_without_worker(config(), &address).await;
    app.add_client("-100666", PayoutStrategy::Threshold).await;
    let payment_id = fresh_payment_id();

    let sent = Instant::now();
    let (status, answer) = app.send_ipn(&test_ipn(payment_id, "-100666", dec!(30), dec!(0.015))).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["workflow"], "scheduled");
    assert!(sent.elapsed() < Duration::from_secs(5), "the webhook must answer while Temporal is down");
    assert_eq!(app.payment_rows(payment_id).await, 1, "the IPN is stored before anything else");
    assert_eq!(app.payment_status(payment_id).await.as_deref(), Some("received"));

    // Not ready without Temporal, and the answer says why.
    let ready = format!("http://{}/ready", app.addr);
    let answer = reqwest::get(&ready).await.unwrap();
    assert_eq!(answer.status().as_u16(), 503);
    let body: serde_json::Value = answer.json().await.unwrap();
    assert_eq!((body["postgres"].as_str(), body["status"].as_str()), (Some("ok"), Some("not_ready")), "{body}");
    assert!(body["temporal"].as_str().unwrap().starts_with("unavailable"), "{body}");

    let _temporal = OwnTemporal::start(port);
    wait_until_serving(&address, &app.config.temporal_namespace).await;
    let answer = reqwest::get(&ready).await.unwrap();
    assert_eq!(answer.status().as_u16(), 200, "{}", answer.text().await.unwrap());
    app.start_worker();

    assert!(
        app.wait_for_status(payment_id, "accumulated", Duration::from_secs(60)).await,
        "the re-driver should have started the workflow once Temporal was back"
    );
    assert_eq!(app.accumulation_rows(payment_id).await, 1);
    let started: bool = sqlx::query_scalar("SELECT workflow_started_at IS NOT NULL FROM payments WHERE payment_id = $1")
        .bind(payment_id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert!(started);
}
