//! The approval gate (BTCPay's AwaitingApproval): a payout batch above the approval amount is
//! claimed `awaiting_approval` with an alert, sends nothing, and waits for an operator's `approve`
//! (it is paid) or `reject` (it ends `rejected`, its rows released), sent from the API, the CLI's
//! code path or the Temporal UI: the same workflow signal.

use activities::db::payout_approval;
use integration_tests::{
    accumulate, batch_in, chain::HOT_WALLET, fresh_payment_id, run_conversion, run_sweep, test_ipn, TestApp, ADMIN_TOKEN, XMR_WALLET,
};
use payout_starter::cli::{
    instant_payouts,
    payout_batches::{self, Approval},
};
use rust_decimal_macros::dec;
use std::time::Duration;
use temporalio_sdk::workflow_replayer::{WorkflowReplayer, WorkflowReplayerOptions};
use uuid::Uuid;
use workflows::{instant_payout::instant_payout_workflow_id, InstantPayoutWorkflow};

async fn count(app: &TestApp, sql: &str, batch_id: Uuid) -> i64 {
    sqlx::query_scalar(sql).bind(batch_id).fetch_one(&app.pool).await.unwrap()
}

async fn open_approval_alerts(app: &TestApp, batch_id: Uuid) -> i64 {
    count(
        app,
        "SELECT count(*) FROM alerts WHERE kind = 'payout_awaiting_approval' AND subject = $1::text AND acknowledged_at IS NULL",
        batch_id,
    )
    .await
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
    let status: String =
        sqlx::query_scalar("SELECT status FROM payout_batches WHERE batch_id = $1").bind(batch_id).fetch_one(&app.pool).await.unwrap();
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

// Issue 18, "Limits": the approval amount gates instant payouts too, and the daily limit per
// client holds whatever payout would take the client's last 24 h of payouts above it.

const WITHIN: Duration = Duration::from_secs(60);

/// The daily limit as the worker stores it from `CLIENT_DAILY_PAYOUT_LIMIT_USD` at start-up (the
/// test worker runs in-process, without the binary's start-up).
async fn set_daily_limit(app: &TestApp, usd: &str) {
    sqlx::query("INSERT INTO settings (key, value) VALUES ('client_daily_payout_limit_usd', $1)")
        .bind(usd)
        .execute(&app.pool)
        .await
        .unwrap();
}

async fn instant_approval_alerts(app: &TestApp, payment_id: i64) -> i64 {
    app.count(
        "SELECT count(*) FROM alerts WHERE kind = 'payout_awaiting_approval' AND subject = 'payment ' || $1::text
         AND acknowledged_at IS NULL",
        payment_id,
    )
    .await
}

async fn instant_intents(app: &TestApp, payment_id: i64) -> i64 {
    app.count("SELECT count(*) FROM transfer_intents WHERE purpose_key = 'instant-payout-' || $1::text", payment_id).await
}

/// An instant payment of `usd`, settled at 3000 USD/ETH (3 % fee: 0.97 of it is the payout).
async fn pay_instant(app: &TestApp, client_id: &str, usd: rust_decimal::Decimal) -> i64 {
    let payment_id = fresh_payment_id();
    let eth = (usd / dec!(3000)).round_dp(18);
    let (status, body) = app.send_ipn(&test_ipn(payment_id, client_id, usd, eth)).await;
    assert_eq!(status, 200, "{body}");
    payment_id
}

/// A while after the hold: no transfer signed and no exchange made for the payment.
async fn assert_nothing_sent(app: &TestApp, payment_id: i64, exchanges_before: usize) {
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(instant_intents(app, payment_id).await, 0, "no transfer is signed for a payout awaiting approval");
    assert_eq!(app.chain.exchanges().await.len(), exchanges_before, "no exchange is created for it either");
    let status: String =
        sqlx::query_scalar("SELECT status FROM instant_payouts WHERE payment_id = $1").bind(payment_id).fetch_one(&app.pool).await.unwrap();
    assert_eq!(status, "awaiting_approval", "it still waits");
}

fn instant_action(app: &TestApp, payment_id: i64, action: &str) -> String {
    format!("http://{}/api/v1/instant-payouts/{payment_id}/{action}", app.addr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instant_payout_above_the_approval_amount_waits_and_an_approval_sends_it() {
    let app = TestApp::spawn().await;
    payout_approval::set_approval_amount(&app.pool, Some(dec!(1000))).await.unwrap();
    app.add_instant_client("-100750", "xmr", "xmr", XMR_WALLET).await;
    // 1,500 USD: 1,455 USD (0.485 ETH) net, above the approval amount.
    let payment_id = pay_instant(&app, "-100750", dec!(1500)).await;

    let row = app.wait_for_instant_payout(payment_id, "awaiting_approval", WITHIN).await;
    assert!(row["reason"].as_str().is_some_and(|r| r.contains("approval amount")), "{row}");
    assert_eq!(instant_approval_alerts(&app, payment_id).await, 1, "one payout_awaiting_approval alert");
    assert_nothing_sent(&app, payment_id, 0).await;

    let approve = instant_action(&app, payment_id, "approve");
    let refused = app.http.post(&approve).send().await.unwrap();
    assert_eq!(refused.status().as_u16(), 401, "operators only");
    let approved = app.http.post(&approve).bearer_auth(ADMIN_TOKEN).send().await.unwrap();
    assert_eq!(approved.status().as_u16(), 200, "{}", approved.text().await.unwrap());

    let row = app.wait_for_instant_payout(payment_id, "completed", Duration::from_secs(90)).await;
    assert!(row["payout_hash"].as_str().is_some_and(|h| h.starts_with("simulated-xmr")), "{row}");
    assert_eq!(app.chain.exchanges().await.len(), 1, "one exchange");
    assert_eq!(instant_intents(&app, payment_id).await, 1, "one transfer");
    assert_eq!(instant_approval_alerts(&app, payment_id).await, 0, "the alert is settled");
    let again = app.http.post(&approve).bearer_auth(ADMIN_TOKEN).send().await.unwrap();
    assert_eq!(again.status().as_u16(), 409, "only a payout awaiting approval can be approved");

    // The run that waited for the signal replays deterministically.
    let handle = app.temporal().await.get_workflow_handle::<InstantPayoutWorkflow>(instant_payout_workflow_id(payment_id));
    handle.get_result(Default::default()).await.expect("the payout's run completed");
    let options = WorkflowReplayerOptions::new().register_workflow::<InstantPayoutWorkflow>().expect("register").build();
    let history = handle.fetch_history(temporalio_client::WorkflowFetchHistoryOptions::default());
    WorkflowReplayer::new(options).expect("replayer").replay_workflow(history).await.expect("replay must be deterministic");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approval_reaches_an_instant_payout_whose_run_was_lost() {
    let app = TestApp::spawn().await;
    payout_approval::set_approval_amount(&app.pool, Some(dec!(1000))).await.unwrap();
    app.add_instant_client("-100755", "xmr", "xmr", XMR_WALLET).await;
    let payment_id = pay_instant(&app, "-100755", dec!(1500)).await;
    app.wait_for_instant_payout(payment_id, "awaiting_approval", WITHIN).await;

    let temporal = app.temporal().await;
    let handle = temporal.get_workflow_handle::<InstantPayoutWorkflow>(instant_payout_workflow_id(payment_id));
    handle.terminate(temporalio_client::WorkflowTerminateOptions::builder().reason("test: lost run").build()).await.unwrap();
    // The CLI's code path: a new run of the payout starts with the signal, finds it waiting, sends it.
    let signalled = instant_payouts::decide(&app.pool, &temporal, &app.task_queue, payment_id, Approval::Approve).await.unwrap();
    assert_eq!(signalled, instant_payout_workflow_id(payment_id));
    app.wait_for_instant_payout(payment_id, "completed", Duration::from_secs(90)).await;
    assert_eq!(app.chain.exchanges().await.len(), 1);
    assert_eq!(instant_intents(&app, payment_id).await, 1);
    let not_awaiting = instant_payouts::decide(&app.pool, &temporal, &app.task_queue, payment_id, Approval::Approve).await.unwrap_err();
    assert!(not_awaiting.to_string().contains("not awaiting approval"), "{not_awaiting}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_instant_payout_ends_rejected_and_sends_nothing() {
    let app = TestApp::spawn().await;
    payout_approval::set_approval_amount(&app.pool, Some(dec!(1000))).await.unwrap();
    app.add_instant_client("-100751", "xmr", "xmr", XMR_WALLET).await;
    let eth_before = app.chain.anvil.balance(HOT_WALLET.parse().unwrap()).await;
    let payment_id = pay_instant(&app, "-100751", dec!(1500)).await;
    app.wait_for_instant_payout(payment_id, "awaiting_approval", WITHIN).await;

    let reject = instant_action(&app, payment_id, "reject");
    let reasonless = app.http.post(&reject).bearer_auth(ADMIN_TOKEN).json(&serde_json::json!({"reason": " "})).send().await.unwrap();
    assert_eq!(reasonless.status().as_u16(), 422, "a rejection needs a reason");
    let rejected = app
        .http
        .post(&reject)
        .bearer_auth(ADMIN_TOKEN)
        .json(&serde_json::json!({"reason": "the client asked to hold"}))
        .send()
        .await
        .unwrap();
    assert_eq!(rejected.status().as_u16(), 200, "{}", rejected.text().await.unwrap());

    let row = app.wait_for_instant_payout(payment_id, "rejected", WITHIN).await;
    assert!(row["reason"].as_str().is_some_and(|r| r.contains("the client asked to hold")), "{row}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(instant_intents(&app, payment_id).await, 0, "nothing was signed");
    assert!(app.chain.exchanges().await.is_empty(), "no exchange");
    assert_eq!(app.chain.anvil.balance(HOT_WALLET.parse().unwrap()).await, eth_before, "the ETH stays in the hot wallet");
    assert_eq!(instant_approval_alerts(&app, payment_id).await, 0, "the alert is settled");
    let late = app.http.post(instant_action(&app, payment_id, "approve")).bearer_auth(ADMIN_TOKEN).send().await.unwrap();
    assert_eq!(late.status().as_u16(), 409, "a rejected payout cannot be approved any more");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daily_limit_holds_the_instant_payout_that_would_cross_it() {
    let app = TestApp::spawn().await;
    set_daily_limit(&app, "1000.00").await;
    app.add_instant_client("-100752", "xmr", "xmr", XMR_WALLET).await;
    app.add_instant_client("-100753", "xmr", "xmr", XMR_WALLET).await;

    // 582 USD net: within the day's 1,000.
    let first = pay_instant(&app, "-100752", dec!(600)).await;
    app.wait_for_instant_payout(first, "completed", Duration::from_secs(90)).await;
    // 582 more would make 1,164 in 24 h.
    let second = pay_instant(&app, "-100752", dec!(600)).await;
    let row = app.wait_for_instant_payout(second, "awaiting_approval", WITHIN).await;
    assert!(row["reason"].as_str().is_some_and(|r| r.contains("daily")), "{row}");
    assert_eq!(instant_approval_alerts(&app, second).await, 1);
    assert_nothing_sent(&app, second, 1).await;

    // The limit is per client: another client's payout of the same size goes through.
    let other = pay_instant(&app, "-100753", dec!(600)).await;
    app.wait_for_instant_payout(other, "completed", Duration::from_secs(90)).await;

    let approved = app.http.post(instant_action(&app, second, "approve")).bearer_auth(ADMIN_TOKEN).send().await.unwrap();
    assert_eq!(approved.status().as_u16(), 200, "{}", approved.text().await.unwrap());
    app.wait_for_instant_payout(second, "completed", Duration::from_secs(90)).await;
    assert_eq!(instant_approval_alerts(&app, second).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daily_limit_holds_the_payout_batch_that_would_cross_it() {
    let app = TestApp::spawn().await;
    set_daily_limit(&app, "200").await;
    // 145.50 USDT: within the day's 200.
    accumulate(&app, "-100754", &[dec!(150)]).await;
    run_conversion(&app, "daily-limit-1").await.unwrap();
    let first = batch_in(&app, "-100754", "completed").await;

    // 145.50 more would make 291 in 24 h.
    accumulate(&app, "-100754", &[dec!(150)]).await;
    run_conversion(&app, "daily-limit-2").await.unwrap();
    let held = batch_in(&app, "-100754", "awaiting_approval").await;
    assert_ne!(held, first);
    assert_eq!(open_approval_alerts(&app, held).await, 1);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let sent = count(&app, "SELECT count(*) FROM transfer_intents WHERE purpose_key LIKE 'payout-' || $1::text || '-%'", held).await;
    assert_eq!(sent, 0, "nothing is sent before the approval");

    let approve = format!("http://{}/api/v1/payout-batches/{held}/approve", app.addr);
    let approved = app.http.post(&approve).bearer_auth(ADMIN_TOKEN).send().await.unwrap();
    assert_eq!(approved.status().as_u16(), 200, "{}", approved.text().await.unwrap());
    // The first batch is completed too: wait for this one.
    let started = std::time::Instant::now();
    loop {
        let status: String =
            sqlx::query_scalar("SELECT status FROM payout_batches WHERE batch_id = $1").bind(held).fetch_one(&app.pool).await.unwrap();
        if status == "completed" {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(90), "the approved batch is '{status}' after 90 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `CLIENT_DAILY_PAYOUT_LIMIT_USD` is stored the way the approval amount is: when the worker starts
/// with a new value; empty turns it off.
#[tokio::test]
async fn the_daily_limit_comes_from_the_environment_when_the_worker_starts() {
    use activities::db::payout_limits;
    let (pool, _) = integration_tests::fresh_database(&integration_tests::config()).await;
    assert_eq!(payout_limits::daily_limit(&pool).await.unwrap(), None, "off unless configured");
    assert!(payout_limits::apply_configured_daily_limit(&pool, Some(dec!(2500))).await.unwrap());
    assert_eq!(payout_limits::daily_limit(&pool).await.unwrap(), Some(dec!(2500)));
    assert!(!payout_limits::apply_configured_daily_limit(&pool, Some(dec!(2500))).await.unwrap(), "a restart changes nothing");
    assert_eq!(payout_approval::approval_amount(&pool).await.unwrap(), None, "the approval amount is a setting of its own");
    assert!(payout_limits::apply_configured_daily_limit(&pool, None).await.unwrap());
    assert_eq!(payout_limits::daily_limit(&pool).await.unwrap(), None);
}
