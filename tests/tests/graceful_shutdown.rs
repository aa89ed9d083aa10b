//! Issue 13, item 5: on SIGTERM the worker stops polling, lets what runs finish and exits 0; the
//! webhook server stops accepting, answers the requests in flight and exits 0. The real binaries.

use integration_tests::{binary, free_port, fresh_payment_id, test_ipn, worker_binary, TestApp};
use rust_decimal_macros::dec;
use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, ExitStatus, Stdio},
    time::{Duration, Instant},
};
use workflows::domain::PayoutStrategy;

fn terminate(child: &Child) {
    let sent = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("kill");
    assert!(sent.success());
}

/// Waits for the process to end (at most `limit`), killing it if it does not.
async fn wait_for_exit(mut child: Child, limit: Duration) -> ExitStatus {
    tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        loop {
            if let Some(status) = child.try_wait().expect("child process") {
                return status;
            }
            if started.elapsed() > limit {
                let _ = child.kill();
                panic!("the process did not exit within {limit:?} of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    })
    .await
    .unwrap()
}

/// Reads the child's stdout on a thread until a line contains `text` (at most 60 s).
fn wait_for_line(child: &mut Child, text: &'static str) -> std::thread::JoinHandle<Vec<String>> {
    let stdout = child.stdout.take().expect("piped stdout");
    let (seen_tx, seen_rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut lines = Vec::new();
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.contains(text) {
                seen_tx.send(()).ok();
            }
            lines.push(line);
        }
        lines
    });
    seen_rx.recv_timeout(Duration::from_secs(60)).unwrap_or_else(|_| panic!("no '{text}' in the output within 60 s"));
    reader
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_finishes_its_work_and_exits_0_on_sigterm() {
    let app = TestApp::spawn_without_worker(integration_tests::config(), &integration_tests::config().temporal_address).await;
    app.add_client("-101500", PayoutStrategy::Threshold).await;
    let mut worker = Command::new(worker_binary())
        .envs(app.worker_env())
        .env("LOG_FORMAT", "json")
        // Tuned small, as a production worker may be: it still does its work.
        .env("WORKER_MAX_ACTIVITIES", "4")
        .env("WORKER_WORKFLOW_POLLERS", "2")
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the worker");
    let output = wait_for_line(&mut worker, "worker running");

    let payment_id = fresh_payment_id();
    let (status, _) = app.send_ipn(&test_ipn(payment_id, "-101500", dec!(30), dec!(0.01))).await;
    assert_eq!(status, 200);
    assert!(app.wait_for_status(payment_id, "accumulated", Duration::from_secs(60)).await, "the binary worker processes it");

    terminate(&worker);
    let status = wait_for_exit(worker, Duration::from_secs(40)).await;
    assert!(status.success(), "exit 0 after SIGTERM, got {status:?}");
    let lines = output.join().unwrap();
    let stopped = lines.iter().find(|l| l.contains("worker stopped")).unwrap_or_else(|| panic!("{lines:?}"));
    let json: serde_json::Value = serde_json::from_str(stopped).expect("LOG_FORMAT=json: one JSON object per line");
    assert_eq!((json["level"].as_str(), json["message"].as_str()), (Some("INFO"), Some("worker stopped")), "{json}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_server_answers_requests_in_flight_then_exits_0_on_sigterm() {
    let app = TestApp::spawn_without_worker(integration_tests::config(), "127.0.0.1:1").await;
    // A "Temporal" that accepts connections and never answers: `/ready` waits for its deadline.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_addr = silent.local_addr().unwrap();
    let _held = std::thread::spawn(move || silent.incoming().map_while(Result::ok).collect::<Vec<_>>());
    let addr = format!("127.0.0.1:{}", free_port());
    let mut server = Command::new(binary("starter"))
        .arg("serve")
        .envs(app.worker_env())
        .env("TEMPORAL_ADDRESS", silent_addr.to_string())
        .env("HTTP_ADDR", &addr)
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the server");
    let _output = wait_for_line(&mut server, "webhook listening");

    let slow = tokio::spawn({
        let url = format!("http://{addr}/ready");
        async move {
            let started = Instant::now();
            let answer = reqwest::get(url).await.expect("the request in flight is answered");
            (answer.status().as_u16(), started.elapsed())
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    terminate(&server);
    let (status, took) = slow.await.unwrap();
    assert_eq!(status, 503, "answered although the server was stopping");
    assert!(took >= Duration::from_millis(500), "it really was in flight: {took:?}");
    let exit = wait_for_exit(server, Duration::from_secs(20)).await;
    assert!(exit.success(), "exit 0 after SIGTERM, got {exit:?}");
    assert!(reqwest::get(format!("http://{addr}/health")).await.is_err(), "nothing listens any more");
}
