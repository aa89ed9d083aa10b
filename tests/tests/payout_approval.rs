//! The approval gate (BTCPay's AwaitingApproval): a payout batch above the approval amount is
//! claimed `awaiting_approval` with an alert, sends nothing, and waits for an operator's `approve`
//! (it is paid) or `reject` (it ends `rejected`, its rows released), sent from the API, the CLI's
//! code path or the Temporal UI: the same workflow signal.

use activities::db::payout_approval;
use integration_tests::{accumulate, batch_in, run_conversion, run_sweep, TestApp, ADMIN_TOKEN, XMR_WALLET};
use payout_starter::cli::payout_batches::{self, Approval};
use rust_decimal_macros::dec;
use std::time::Duration;
use uuid::Uuid;


async fn count(app: &TestApp, sql: &str, batch_id: Uuid) -> i64 {
    sqlx::query_scalar(sql).bind(batch_id).fetch_one(&app.pool).await.unwrap()
}

async fn open_approval_alerts(app: &TestApp, batch_id: Uuid) -> i64 {
    count(app, "SELECT count(*) FROM alerts WHERE kind = 'payout_awaiting_approval' AND subject = $1::text AND acknowledged_at IS NULL", batch_id).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payout_above_the_approval_amount_waits_for_an_operator_and_an_approval_pays_it() {
    let app = TestApp::spawn().await;
    payout_approval::set_approval_amount(&app.pool, Some(dec!(100))).await.unwrap();
    accumulate(&app, "-100740", &[dec!(150)]).await;
    run_conversion(&app, "approval").await.unwrap();

    let batch_id = batch_in(&app, "-100740", "awaiting_approval").await;
    assert_eq!(open_approval_alerts(&app, batch_id).await, 1);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let sent = count(&app, "SELECT count(*) FROM transfer_intents WHERE purpose_key LIKE 'payout-' || $1::text || '-%'", batch_id).await;
    assert_eq!(sent, 0, "nothing is sent before the approval");
    assert!(app.chain.exchanges().await.iter().all(|x| x["payoutAddress"] != XMR_WALLET), "no payout exchange either");

    let approve = format!("http://{}/api/v1/payout-batches/{batch_id}/approve", app.addr);
    let refused = app.http.post(&approve).send().await.unwrap();
    assert_eq!(refused.status().as_u16(), 401);
    let approved = app.http.post(&approve).bearer_auth(ADMIN_TOKEN).send().await.unwrap();
    assert_eq!(approved.status().as_u16(), 200, "{}", approved.text().await.unwrap());

    assert_eq!(batch_in(&app, "-100740", "completed").await, batch_id, "the approved batch is paid");
    assert_eq!(open_approval_alerts(&app, batch_id).await, 0, "the alert is settled");
    let again = app.http.post(&approve).bearer_auth(ADMIN_TOKEN).send().await.unwrap();
    assert_eq!(again.status().as_u16(), 409, "only a batch awaiting approval can be approved");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_payout_ends_with_its_reason_and_its_rows_are_paid_by_a_later_batch() {
    let app = TestApp::spawn().await;
    payout_approval::set_approval_amount(&app.pool, Some(dec!(100))).await.unwrap();
    accumulate(&app, "-100741", &[dec!(150)]).await;
    run_conversion(&app, "rejection").await.unwrap();
    let batch_id = batch_in(&app, "-100741", "awaiting_approval").await;

    let temporal = app.temporal().await;
    // Over HTTP, as the console and scripts do: a reason is required.
    let reject = format!("http://{}/api/v1/payout-batches/{batch_id}/reject", app.addr);
    let reasonless = app.http.post(&reject).bearer_auth(ADMIN_TOKEN).json(&serde_json::json!({"reason": " "})).send().await.unwrap();
    assert_eq!(reasonless.status().as_u16(), 422);
    let rejected = app
        .http
        .post(&reject)
        .bearer_auth(ADMIN_TOKEN)
        .json(&serde_json::json!({"reason": "the client asked to hold"}))
        .send()
        .await
        .unwrap();
    assert_eq!(rejected.status().as_u16(), 200, "{}", rejected.text().await.unwrap());
    assert_eq!(batch_in(&app, "-100741", "rejected").await, batch_id);
    let reason: String = sqlx::query_scalar("SELECT failure_reason FROM payout_batches WHERE batch_id = $1")
        .bind(batch_id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert!(reason.contains("the client asked to hold"), "{reason}");
    let kept = count(&app, "SELECT count(*) FROM payout_accumulation WHERE payout_batch_id = $1", batch_id).await;
    assert_eq!(kept, 0, "its rows are released");
    assert_eq!(open_approval_alerts(&app, batch_id).await, 0);
    let not_awaiting = payout_batches::decide(&app.pool, &temporal, &app.task_queue, batch_id, Approval::Approve).await.unwrap_err();
    assert!(not_awaiting.to_string().contains("not awaiting approval"), "{not_awaiting}");

    // With the gate off the released rows are paid by a new batch, at once.
    payout_approval::set_approval_amount(&app.pool, None).await.unwrap();
    assert_eq!(run_sweep(&app, 90, Some("-100741")).await, 1);
    let paid = batch_in(&app, "-100741", "completed").await;
    assert_ne!(paid, batch_id);
    let unpaid: i64 = sqlx::query_scalar("SELECT count(*) FROM payout_accumulation WHERE client_id = '-100741' AND NOT is_paid_out")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(unpaid, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_never_pays_a_batch_awaiting_approval_and_approval_survives_a_lost_run() {
    let app = TestApp::spawn().await;
    payout_approval::set_approval_amount(&app.pool, Some(dec!(100))).await.unwrap();
    accumulate(&app, "-100742", &[dec!(150)]).await;
    run_conversion(&app, "approval-retry").await.unwrap();
    let batch_id = batch_in(&app, "-100742", "awaiting_approval").await;

    let retry = format!("http://{}/api/v1/payout-batches/{batch_id}/retry", app.addr);
    let refused = app.http.post(&retry).bearer_auth(ADMIN_TOKEN).send().await.unwrap();
    assert_eq!(refused.status().as_u16(), 409, "a retry is no way around the approval");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let sent = count(&app, "SELECT count(*) FROM transfer_intents WHERE purpose_key LIKE 'payout-' || $1::text || '-%'", batch_id).await;
    assert_eq!(sent, 0, "nothing was sent");
    let status: String = sqlx::query_scalar("SELECT status FROM payout_batches WHERE batch_id = $1").bind(batch_id).fetch_one(&app.pool).await.unwrap();
    assert_eq!(status, "awaiting_approval");

    // The run holding the batch is lost (terminated); the approval still reaches a run that pays it.
    let group_run = workflows::client_payout_workflow_id(&workflows::activity_definitions::PayoutGroup {
        client_id: "-100742".into(),
        wallet_address: integration_tests::XMR_WALLET.into(),
        payout_currency: "xmr".into(),
        payout_network: "xmr".into(),
    });
    let handle = app.temporal().await.get_workflow_handle::<workflows::ClientPayoutWorkflow>(group_run);
    handle.terminate(temporalio_client::WorkflowTerminateOptions::builder().reason("test: lost run").build()).await.unwrap();
    let approve = format!("http://{}/api/v1/payout-batches/{batch_id}/approve", app.addr);
    let approved = app.http.post(&approve).bearer_auth(ADMIN_TOKEN).send().await.unwrap();
    assert_eq!(approved.status().as_u16(), 200, "{}", approved.text().await.unwrap());
    assert_eq!(batch_in(&app, "-100742", "completed").await, batch_id);
}

/// Issue 11: the worker applied `PAYOUT_APPROVAL_ABOVE_USD` at every start, silently undoing an
/// operator's change made at run time. The environment now applies only when it changes.
#[tokio::test]
async fn a_restart_keeps_the_operators_approval_amount_and_a_changed_environment_applies() {
    let (pool, _) = integration_tests::fresh_database(&integration_tests::config()).await;
    let apply = |usd| payout_approval::apply_configured_amount(&pool, usd);
    assert!(apply(Some(dec!(100))).await.unwrap(), "first start: the environment's amount applies");
    assert_eq!(payout_approval::approval_amount(&pool).await.unwrap(), Some(dec!(100)));

    payout_approval::set_approval_amount(&pool, Some(dec!(250))).await.unwrap(); // the console
    assert!(!apply(Some(dec!(100))).await.unwrap(), "a restart with the same environment changes nothing");
    assert_eq!(payout_approval::approval_amount(&pool).await.unwrap(), Some(dec!(250)));

    assert!(apply(Some(dec!(300))).await.unwrap(), "a new value in the environment applies");
    assert_eq!(payout_approval::approval_amount(&pool).await.unwrap(), Some(dec!(300)));
    assert!(apply(None).await.unwrap(), "removed from the environment: off");
    assert_eq!(payout_approval::approval_amount(&pool).await.unwrap(), None);
}
