//! Determinism: recorded histories must replay against the current workflow code. A change that
//! would break runs in flight (reordered activities, a new step without `ctx.patched`) fails here.

use integration_tests::{fresh_payment_id, test_ipn, TestApp};
use rust_decimal_macros::dec;
use std::{path::Path, time::Duration};
use temporalio_client::{WorkflowFetchHistoryOptions, WorkflowHistory};
use temporalio_sdk::workflow_replayer::{WorkflowReplayer, WorkflowReplayerOptions};
use workflows::{domain::PayoutStrategy, payment_workflow_id, PaymentWorkflow};

fn replayer() -> WorkflowReplayer {
    let options = WorkflowReplayerOptions::new().register_workflow::<PaymentWorkflow>().expect("register").build();
    WorkflowReplayer::new(options).expect("replayer")
}

/// Histories recorded from earlier versions (`temporal workflow show -w payment-N --output json`).
#[tokio::test]
async fn committed_histories_replay_against_the_current_code() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("histories");
    let mut replayed = 0;
    for entry in std::fs::read_dir(&dir).expect("tests/histories exists") {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let history = WorkflowHistory::from_json(&std::fs::read(&path).unwrap())
            .unwrap_or_else(|e| panic!("{} is not a history: {e}", path.display()));
        replayer().replay_workflow(history).await.unwrap_or_else(|e| panic!("{} no longer replays: {e}", path.display()));
        replayed += 1;
    }
    assert!(replayed >= 2, "expected the threshold and instant histories, replayed {replayed}");
}

#[tokio::test]
async fn a_fresh_payment_history_replays_deterministically() {
    let app = TestApp::spawn().await;
    app.add_client("-100777", PayoutStrategy::Threshold).await;
    let payment_id = fresh_payment_id();
    let (status, _) = app.send_ipn(&test_ipn(payment_id, "-100777", dec!(12.34), dec!(0.0061))).await;
    assert_eq!(status, 200);
    assert!(app.wait_for_status(payment_id, "accumulated", Duration::from_secs(30)).await);

    let handle = app.temporal().await.get_workflow_handle::<PaymentWorkflow>(payment_workflow_id(payment_id));
    // The status is written inside the last activity; wait for the workflow itself to close.
    handle.get_result(Default::default()).await.expect("workflow completed");
    let history = handle.fetch_history(WorkflowFetchHistoryOptions::default());
    replayer().replay_workflow(history).await.expect("replay must be deterministic");
}
