//! Determinism: recorded histories must replay against the current workflow code. A change that
//! would break runs in flight (reordered activities, a new step without `ctx.patched`) fails here.

use integration_tests::{fresh_payment_id, test_ipn, TestApp};
use rust_decimal_macros::dec;
use std::{path::Path, time::Duration};
use temporalio_client::{WorkflowFetchHistoryOptions, WorkflowHistory};
use temporalio_sdk::workflow_replayer::{WorkflowReplayer, WorkflowReplayerOptions};
use workflows::{
    domain::PayoutStrategy, instant_payout::instant_payout_workflow_id, payment_workflow_id, ClientPayoutWorkflow, InstantPayoutWorkflow,
    MicroBatchConversionWorkflow, PaymentWorkflow,
};

fn replayer() -> WorkflowReplayer {
    let options = WorkflowReplayerOptions::new()
        .register_workflow::<PaymentWorkflow>()
        .and_then(|o| o.register_workflow::<InstantPayoutWorkflow>())
        .and_then(|o| o.register_workflow::<MicroBatchConversionWorkflow>())
        .and_then(|o| o.register_workflow::<ClientPayoutWorkflow>())
        .expect("register")
        .build();
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
    // Payment (threshold, instant before and after the child), the instant payout child, a
    // conversion that started one payout child at a time, and a payout whose ledger steps were
    // regular activities: each recorded before a patch that changed its commands.
    assert!(replayed >= 6, "expected every committed history to replay, replayed {replayed}");
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_instant_payout_and_its_parent_replay_deterministically() {
    let app = TestApp::spawn().await;
    let wallet = alloy::primitives::Address::from([0x78; 20]).to_checksum(None);
    app.add_instant_client("-100778", "usdt", "eth", &wallet).await;
    let payment_id = fresh_payment_id();
    let (status, _) = app.send_ipn(&test_ipn(payment_id, "-100778", dec!(100), dec!(0.04))).await;
    assert_eq!(status, 200);

    let client = app.temporal().await;
    let parent = client.get_workflow_handle::<PaymentWorkflow>(payment_workflow_id(payment_id));
    let mut outcome = None;
    for _ in 0..60 {
        match parent.get_result(Default::default()).await {
            Ok(result) => {
                outcome = Some(result);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
    let outcome = outcome.expect("the payment workflow completed");
    assert!(outcome.instant_payout.is_some(), "the parent waited for its child: {outcome:?}");
    replayer().replay_workflow(parent.fetch_history(WorkflowFetchHistoryOptions::default())).await.expect("parent replays");
    let child = client.get_workflow_handle::<InstantPayoutWorkflow>(instant_payout_workflow_id(payment_id));
    replayer().replay_workflow(child.fetch_history(WorkflowFetchHistoryOptions::default())).await.expect("child replays");
}
