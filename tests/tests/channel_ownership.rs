//! Who may register a channel: only a user Telegram vouches for (login data signed for the
//! platform's bot, recent) whom `getChatMember` names creator or administrator. Each attack is
//! refused with its own answer and stores nothing; a kept IPN goes only to a proven owner, and
//! only when an operator routes it.

use integration_tests::{fresh_payment_id, telegram, test_ipn, TestApp, XMR_WALLET};
use payout_starter::{
    cli::route_payment::{self, RouteError, WorkflowStart},
    temporal_gateway::TemporalGateway,
};
use rust_decimal_macros::dec;
use serde_json::{json, Value};
use workflows::domain::PayoutStrategy;

fn registration(client_id: &str, telegram_auth: Option<Value>) -> Value {
    let mut body = json!({"client_id": client_id, "wallet_address": XMR_WALLET, "payout_currency": "xmr", "payout_strategy": "instant"});
    if let Some(auth) = telegram_auth {
        body["telegram_auth"] = auth;
    }
    body
}

async fn post(app: &TestApp, body: &Value) -> (u16, Value) {
    let response = app.http.post(format!("http://{}/api/v1/clients", app.addr)).json(body).send().await.expect("server unreachable");
    (response.status().as_u16(), response.json().await.unwrap())
}

async fn clients(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM clients").fetch_one(&app.pool).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_is_registered_only_with_telegram_proof_of_owning_it() {
    let app = TestApp::spawn().await;
    let sandbox = app.chain.changenow_url();
    let (owner, admin, member) = (telegram::fresh_user_id(), telegram::fresh_user_id(), telegram::fresh_user_id());
    telegram::channel_at(&sandbox, "-1002223334445", &[(owner, "creator"), (admin, "administrator"), (member, "member")]).await;

    // The squatter of issue 19: no login at all.
    let (status, error) = post(&app, &registration("-1002223334445", None)).await;
    assert_eq!((status, error["field"].as_str()), (401, Some("telegram_auth")), "{error}");

    // Forged: the owner's login with the id changed to the attacker's, or signed with another token.
    let mut forged = telegram::login_at(&sandbox, member, 0).await;
    forged["id"] = json!(owner.to_string());
    let (status, error) = post(&app, &registration("-1002223334445", Some(forged))).await;
    assert_eq!((status, error["field"].as_str()), (401, Some("telegram_auth")), "{error}");
    assert!(error["error"].as_str().unwrap().contains("not signed by Telegram"), "{error}");

    // Stale: signed two days ago.
    let stale = telegram::login_at(&sandbox, owner, 2 * 86_400).await;
    let (status, error) = post(&app, &registration("-1002223334445", Some(stale))).await;
    assert_eq!(status, 401, "{error}");
    assert!(error["error"].as_str().unwrap().contains("old"), "{error}");

    // A member who is not an administrator, and a stranger to the channel: 403.
    for user in [member, telegram::fresh_user_id()] {
        let login = telegram::login_at(&sandbox, user, 0).await;
        let (status, error) = post(&app, &registration("-1002223334445", Some(login))).await;
        assert_eq!((status, error["field"].as_str()), (403, Some("telegram_auth")), "{error}");
    }
    // A channel the platform's bot cannot see.
    let login = telegram::login_at(&sandbox, owner, 0).await;
    let (status, error) = post(&app, &registration("-1009999999999", Some(login))).await;
    assert_eq!(status, 403, "{error}");
    assert!(error["error"].as_str().unwrap().contains("add the bot"), "{error}");
    assert_eq!(clients(&app).await, 0, "nothing was stored");

    // An administrator may register; the owner's id is stored.
    let login = telegram::login_at(&sandbox, admin, 0).await;
    let (status, registered) = post(&app, &registration("-1002223334445", Some(login))).await;
    assert_eq!(status, 201, "{registered}");
    let stored: Option<i64> =
        sqlx::query_scalar("SELECT owner_telegram_id FROM clients WHERE client_id = '-1002223334445'").fetch_one(&app.pool).await.unwrap();
    assert_eq!(stored, Some(admin as i64));

    // A stranger probing for registered channels gets 403 (not an owner), never 409: only a
    // proven owner learns the channel is taken.
    let login = telegram::login_at(&sandbox, member, 0).await;
    let (status, _) = post(&app, &registration("-1002223334445", Some(login))).await;
    assert_eq!(status, 403);
    let login = telegram::login_at(&sandbox, owner, 0).await;
    let (status, error) = post(&app, &registration("-1002223334445", Some(login))).await;
    assert_eq!(status, 409, "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telegram_down_stores_nothing_and_says_to_try_again() {
    let app = TestApp::spawn().await;
    let login = telegram::owner_login(&app, "-1002223334446").await;
    app.chain.control("/sim/telegram/faults", json!({"status": 503})).await;
    let (status, error) = post(&app, &registration("-1002223334446", Some(login.clone()))).await;
    assert_eq!(status, 503, "{error}");
    let text = error["error"].as_str().unwrap();
    assert!(text.contains("try again") && !text.contains("127.0.0.1") && !text.contains("bot"), "no URL, no token: {text}");
    assert_eq!(clients(&app).await, 0);
    app.chain.control("/sim/telegram/faults", json!({})).await;
    assert_eq!(post(&app, &registration("-1002223334446", Some(login))).await.0, 201, "the same login works once Telegram answers");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_ipn_goes_only_to_a_proven_owner_and_only_when_an_operator_routes_it() {
    let app = TestApp::spawn().await;
    let gateway = TemporalGateway::new(&app.temporal_address, &app.config.temporal_namespace, &app.task_queue, app.config.platform_fee);

    // A channel added without proof (an operator's `client add`) receives no kept IPN.
    let unproven = fresh_payment_id();
    assert_eq!(app.send_ipn(&test_ipn(unproven, "-1002223334447", dec!(25), dec!(0.0125))).await.0, 422);
    app.add_client("-1002223334447", PayoutStrategy::Threshold).await;
    let refused = route_payment::route(&app.pool, &gateway, unproven, "ops-ann").await;
    assert!(matches!(refused, Err(RouteError::OwnerNotProven { .. })), "{refused:?}");
    assert_eq!(app.payment_rows(unproven).await, 0);

    // Registering with proof does not route it by itself; the operator does, and is recorded.
    let payment_id = fresh_payment_id();
    assert_eq!(app.send_ipn(&test_ipn(payment_id, "-1002223334448", dec!(25), dec!(0.0125))).await.0, 422);
    let (status, body) = telegram::register_with_proof(
        &app,
        json!({"client_id": "-1002223334448", "wallet_address": XMR_WALLET, "payout_currency": "xmr", "payout_strategy": "threshold",
               "payout_threshold_usd": 100}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(app.payment_rows(payment_id).await, 0, "nothing is routed without an operator");
    assert!(matches!(route_payment::route(&app.pool, &gateway, payment_id, " ").await, Err(RouteError::NoOperator)));
    let routed = route_payment::route(&app.pool, &gateway, payment_id, "ops-ann").await.expect("route");
    assert_eq!(routed.workflow, WorkflowStart::Started, "{routed:?}");
    let routed_by: Option<String> = sqlx::query_scalar("SELECT routed_by FROM unroutable_ipns WHERE payment_id = $1")
        .bind(payment_id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(routed_by.as_deref(), Some("ops-ann"));
}
