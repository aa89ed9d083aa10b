//! The JSON API under `/api/v1` on the real server: registration with the CLI's validation and
//! JSON errors, a client's status and changes behind its own key, the operator routes behind
//! `ADMIN_TOKEN`, and the OpenAPI document generated from the code.

use integration_tests::{accumulate, run_conversion, telegram, TestApp, ADMIN_TOKEN, XMR_WALLET};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use serde_json::{json, Value};
use std::str::FromStr;

const ETH_WALLET: &str = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed";

async fn call(app: &TestApp, method: reqwest::Method, path: &str, token: Option<&str>, body: Option<Value>) -> (u16, Value) {
    let mut request = app.http.request(method, format!("http://{}{path}", app.addr));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("server unreachable");
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

fn registration(client_id: &str, strategy: &str, threshold: Value) -> Value {
    json!({
        "client_id": client_id,
        "wallet_address": XMR_WALLET,
        "payout_currency": "xmr",
        "payout_strategy": strategy,
        "payout_threshold_usd": threshold,
    })
}

fn decimal(value: &Value) -> Decimal {
    Decimal::from_str(value.as_str().unwrap_or_else(|| panic!("{value} is not a decimal string"))).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registered_client_follows_its_payout_with_its_own_key() {
    let app = TestApp::spawn().await;
    let (status, registered) = telegram::register_with_proof(&app, registration("-100730", "threshold", json!(100))).await;
    assert_eq!(status, 201, "{registered}");
    let key = registered["client_key"].as_str().unwrap().to_owned();
    assert_eq!(registered["status_url"], format!("/clients/-100730?key={key}"));
    let stored: Option<String> =
        sqlx::query_scalar("SELECT client_key_hash FROM clients WHERE client_id = '-100730'").fetch_one(&app.pool).await.unwrap();
    assert!(stored.is_some_and(|hash| hash.len() == 64 && !hash.contains(&key[3..])), "stored hashed, never as given");

    let path = "/api/v1/clients/-100730/status";
    assert_eq!(call(&app, reqwest::Method::GET, path, None, None).await.0, 401);
    let (wrong, body) = call(&app, reqwest::Method::GET, path, Some("ck_not-the-key"), None).await;
    assert_eq!(wrong, 401, "a wrong key is refused like a missing one: {body}");
    assert!(body["error"].is_string());
    // A probe cannot tell a registered channel from one never registered.
    let (unknown, unknown_body) = call(&app, reqwest::Method::GET, "/api/v1/clients/-1nobody/status", Some(&key), None).await;
    assert_eq!((unknown, &unknown_body), (401, &body), "the same answer for an unregistered channel");
    let (_, missing_body) = call(&app, reqwest::Method::GET, path, None, None).await;
    assert_eq!(missing_body, body);

    // 60 USD paid: 58.20 net waits for the conversion, then is locked in USDT.
    accumulate(&app, "-100730", &[dec!(30), dec!(30)]).await;
    let (_, before) = call(&app, reqwest::Method::GET, path, Some(&key), None).await;
    assert_eq!(decimal(&before["pending_conversion_usd"]), dec!(58.20));
    assert_eq!(decimal(&before["accumulated_usdt"]), Decimal::ZERO);
    assert_eq!(decimal(&before["remaining_usd"]), dec!(41.80));
    assert_eq!(decimal(&before["progress_percent"]), dec!(58.2));
    assert_eq!(before["recent_payments"].as_array().unwrap().len(), 2);
    assert!(before["estimated_payout_at"].is_string(), "{before}");

    run_conversion(&app, "api-status").await.unwrap();
    let (_, after) = call(&app, reqwest::Method::GET, path, Some(&key), None).await;
    let converted: Decimal = sqlx::query_scalar("SELECT SUM(accumulated_amount_usdt) FROM payout_accumulation WHERE client_id = '-100730'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(decimal(&after["accumulated_usdt"]), converted, "exactly the converted, unpaid USDT");
    assert_eq!(decimal(&after["pending_conversion_usd"]), Decimal::ZERO);
    assert_eq!((after["payout_strategy"].as_str(), after["payout_currency"].as_str()), (Some("threshold"), Some("xmr")));
    assert_eq!(decimal(&after["threshold_usd"]), dec!(100));

    // Over the threshold: paid, and the status names the transaction on the client's own chain.
    accumulate(&app, "-100730", &[dec!(50)]).await;
    run_conversion(&app, "api-status-payout").await.unwrap();
    let waited = std::time::Instant::now();
    let paid = loop {
        let (_, status) = call(&app, reqwest::Method::GET, path, Some(&key), None).await;
        if status["payouts"][0]["status"] == "completed" {
            break status;
        }
        assert!(waited.elapsed() < std::time::Duration::from_secs(90), "no completed payout after 90 s: {status}");
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    };
    let exchange = app.chain.exchanges().await.into_iter().find(|x| x["payoutAddress"] == integration_tests::XMR_WALLET).unwrap();
    assert!(exchange["payoutHash"].is_string(), "{exchange}");
    assert_eq!(paid["payouts"][0]["payout_hash"], exchange["payoutHash"], "{paid}");
    let (_, page) = get_page(&app, &format!("/clients/-100730?key={key}")).await;
    assert!(page.contains(exchange["payoutHash"].as_str().unwrap()), "the page shows it too");

    // `starter client key` issues a new key: the old one stops working.
    let new_key = payout_starter::api::new_client_key();
    assert!(activities::db::clients::set_key_hash(&app.pool, "-100730", &payout_starter::api::key_hash(&new_key)).await.unwrap());
    assert_eq!(call(&app, reqwest::Method::GET, path, Some(&key), None).await.0, 401);
    assert_eq!(call(&app, reqwest::Method::GET, path, Some(&new_key), None).await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_registrations_get_a_clear_error_naming_the_field_and_change_nothing() {
    let app = TestApp::spawn().await;
    let owner = telegram::owner_login(&app, "-100731").await;
    let post = |mut body: Value| {
        body["telegram_auth"] = owner.clone();
        call(&app, reqwest::Method::POST, "/api/v1/clients", None, Some(body))
    };

    let cases = [
        (registration("-100731", "threshold", json!("49.99")), "payout_threshold_usd"),
        (registration("-100731", "instant", json!(100)), "payout_threshold_usd"),
        (registration("-100731", "weekly", json!(100)), "payout_strategy"),
        (
            json!({"client_id": "-100731", "wallet_address": "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaeD", "payout_currency": "eth",
                "payout_strategy": "instant"}),
            "wallet_address",
        ),
        (json!({"client_id": "-100731", "payout_currency": "xmr", "payout_strategy": "instant"}), "wallet_address"),
        (
            json!({"client_id": "-100731", "wallet_address": XMR_WALLET, "payout_currency": "xmr", "payout_strategy": "instant",
                "is_admin": true}),
            "is_admin",
        ),
    ];
    for (body, field) in cases {
        let (status, error) = post(body.clone()).await;
        assert_eq!(status, 422, "{body} -> {error}");
        assert_eq!(error["field"], field, "{body} -> {error}");
        assert!(!error["error"].as_str().unwrap().is_empty());
    }
    let malformed = app
        .http
        .post(format!("http://{}/api/v1/clients", app.addr))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status().as_u16(), 400);
    assert!(malformed.json::<Value>().await.unwrap()["error"].is_string());
    let clients: i64 = sqlx::query_scalar("SELECT count(*) FROM clients").fetch_one(&app.pool).await.unwrap();
    assert_eq!(clients, 0, "nothing was stored");

    let (created, _) = post(registration("-100731", "instant", json!(0))).await;
    assert_eq!(created, 201);
    let (conflict, error) = post(registration("-100731", "instant", json!(0))).await;
    assert_eq!((conflict, error["error"].as_str().map(|e| e.contains("already exists"))), (409, Some(true)));

    // Ten a minute from one address; the eleventh (this test's tenth and eleventh) is refused.
    let (tenth, _) = telegram::register_with_proof(&app, registration("-100732", "instant", json!(0))).await;
    assert_eq!(tenth, 201);
    let (limited, error) = telegram::register_with_proof(&app, registration("-100733", "instant", json!(0))).await;
    assert_eq!(limited, 429, "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_changes_its_settings_and_a_new_wallet_with_unpaid_rows_alerts_operators() {
    let app = TestApp::spawn().await;
    let (_, registered) = telegram::register_with_proof(&app, registration("-100734", "threshold", json!("100"))).await;
    let key = registered["client_key"].as_str().unwrap().to_owned();
    accumulate(&app, "-100734", &[dec!(30)]).await;
    let path = "/api/v1/clients/-100734";

    let (refused, error) = call(&app, reqwest::Method::PATCH, path, Some(&key), Some(json!({"payout_threshold_usd": 20}))).await;
    assert_eq!((refused, error["field"].as_str()), (422, Some("payout_threshold_usd")));
    let (other_key, _) = call(&app, reqwest::Method::PATCH, path, Some("ck_wrong"), Some(json!({"payout_threshold_usd": 200}))).await;
    assert_eq!(other_key, 401);

    let change = json!({"wallet_address": ETH_WALLET, "payout_currency": "eth", "payout_network": "eth", "payout_threshold_usd": "250"});
    let (changed, view) = call(&app, reqwest::Method::PATCH, path, Some(&key), Some(change)).await;
    assert_eq!(changed, 200, "{view}");
    assert_eq!(view["wallet_address"], ETH_WALLET);
    assert_eq!(decimal(&view["payout_threshold_usd"]), dec!(250));
    // The unpaid row stays with the wallet it was paid in for, and the answer says so.
    assert_eq!(view["unpaid_rows_paid_to"], json!([{"wallet_address": XMR_WALLET, "rows": 1}]));
    let alerts: Vec<String> =
        sqlx::query_scalar("SELECT message FROM alerts WHERE kind = 'wallet_changed_with_unpaid' AND subject = '-100734'")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert!(alerts[0].contains(XMR_WALLET) && alerts[0].contains(ETH_WALLET), "{}", alerts[0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_routes_need_the_admin_token_and_use_the_clis_rules() {
    let app = TestApp::spawn().await;
    let get = |path: &'static str, token: Option<&'static str>| call(&app, reqwest::Method::GET, path, token, None);
    assert_eq!(get("/api/v1/payout-batches", None).await.0, 401);
    assert_eq!(get("/api/v1/payout-batches", Some("guess")).await.0, 403);
    let (ok, batches) = get("/api/v1/payout-batches?status=failed", Some(ADMIN_TOKEN)).await;
    assert_eq!((ok, batches), (200, json!([])));
    let (bad, error) = get("/api/v1/payout-batches?status=lost", Some(ADMIN_TOKEN)).await;
    assert_eq!((bad, error["field"].as_str()), (422, Some("status")));
    assert_eq!(get("/api/v1/conversions", Some(ADMIN_TOKEN)).await.0, 200);

    let (_, settings) = get("/api/v1/settings", Some(ADMIN_TOKEN)).await;
    assert_eq!(decimal(&settings["micro_batch_threshold_usd"]), dec!(20));
    let put = |body: Value| call(&app, reqwest::Method::PUT, "/api/v1/settings", Some(ADMIN_TOKEN), Some(body));
    let (refused, error) = put(json!({"micro_batch_threshold_usd": "25.001", "max_client_threshold_usd": 500})).await;
    assert_eq!((refused, error["field"].as_str()), (422, Some("micro_batch_threshold_usd")));
    assert_eq!(
        decimal(&get("/api/v1/settings", Some(ADMIN_TOKEN)).await.1["max_client_threshold_usd"]),
        decimal(&settings["max_client_threshold_usd"]),
        "a refused change changes nothing"
    );
    let (changed, now) = put(json!({"micro_batch_threshold_usd": 35.5})).await;
    assert_eq!(changed, 200, "{now}");
    assert_eq!(decimal(&now["micro_batch_threshold_usd"]), dec!(35.50));

    // A failed batch from the real pipeline: listed, retried through the same path as the CLI.
    app.chain.control("/sim/rules", json!({"payout_address": XMR_WALLET, "rule": "reject"})).await;
    put(json!({"micro_batch_threshold_usd": 20})).await;
    accumulate(&app, "-100735", &[dec!(150)]).await;
    run_conversion(&app, "api-operators").await.unwrap();
    let started = std::time::Instant::now();
    let failed = loop {
        let (_, batches) = get("/api/v1/payout-batches?status=failed", Some(ADMIN_TOKEN)).await;
        if let Some(batch) = batches.as_array().unwrap().first() {
            break batch.clone();
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(90), "no failed batch after 90 s");
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    };
    assert_eq!(failed["client_id"], "-100735");
    app.chain.reset_faults().await;
    let retry_path = format!("/api/v1/payout-batches/{}/retry", failed["batch_id"].as_str().unwrap());
    assert_eq!(call(&app, reqwest::Method::POST, &retry_path, None, None).await.0, 401);
    let (retried, outcome) = call(&app, reqwest::Method::POST, &retry_path, Some(ADMIN_TOKEN), None).await;
    assert_eq!((retried, outcome["outcome"].as_str()), (200, Some("started")), "{outcome}");
    // The retry pays the client (and leaves no run open behind the test).
    let started = std::time::Instant::now();
    loop {
        let (_, completed) = get("/api/v1/payout-batches?status=completed", Some(ADMIN_TOKEN)).await;
        if !completed.as_array().unwrap().is_empty() {
            break;
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(90), "the retry did not pay within 90 s");
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
    let (started, outcome) = call(&app, reqwest::Method::POST, "/api/v1/clients/-100735/payout-now", Some(ADMIN_TOKEN), None).await;
    assert_eq!((started, outcome["outcome"].as_str()), (200, Some("payout_started")), "{outcome}");
    assert_eq!(call(&app, reqwest::Method::POST, "/api/v1/clients/-1nobody/payout-now", Some(ADMIN_TOKEN), None).await.0, 404);
    assert_eq!(call(&app, reqwest::Method::POST, "/api/v1/clients/-100735/payout-now", None, None).await.0, 401);
    let (bad_path, error) = call(&app, reqwest::Method::POST, "/api/v1/payout-batches/not-a-uuid/retry", Some(ADMIN_TOKEN), None).await;
    assert_eq!((bad_path, error["field"].as_str()), (400, Some("path")), "a JSON error: {error}");
    // Without the token nothing about the request is judged: 401 first, whatever the path.
    let unannounced = call(&app, reqwest::Method::POST, "/api/v1/payout-batches/not-a-uuid/retry", None, None).await;
    assert_eq!(unannounced.0, 401, "{:?}", unannounced.1);
    let wrong_token = call(&app, reqwest::Method::GET, "/api/v1/payout-batches?status=bogus", Some("guess"), None).await;
    assert_eq!(wrong_token.0, 403, "{:?}", wrong_token.1);
    let (bad_method, error) = call(&app, reqwest::Method::DELETE, "/api/v1/alerts", Some(ADMIN_TOKEN), None).await;
    assert_eq!(bad_method, 405);
    assert!(error["error"].is_string(), "a JSON error: {error}");
    let unknown = format!("/api/v1/payout-batches/{}/retry", uuid::Uuid::new_v4());
    assert_eq!(call(&app, reqwest::Method::POST, &unknown, Some(ADMIN_TOKEN), None).await.0, 404);

    let (_, alerts) = get("/api/v1/alerts", Some(ADMIN_TOKEN)).await;
    let alert = alerts.as_array().unwrap().iter().find(|a| a["kind"] == "payout_batch_failed").expect("the failure's alert").clone();
    let ack = format!("/api/v1/alerts/{}/ack", alert["alert_id"]);
    assert_eq!(call(&app, reqwest::Method::POST, &ack, Some(ADMIN_TOKEN), None).await.0, 200);
    assert_eq!(call(&app, reqwest::Method::POST, &ack, Some(ADMIN_TOKEN), None).await.0, 404, "no longer open");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_describes_every_api_route() {
    let app = TestApp::spawn().await;
    let (status, document) = call(&app, reqwest::Method::GET, "/api/v1/openapi.json", None, None).await;
    assert_eq!(status, 200);
    assert!(document["openapi"].as_str().unwrap().starts_with("3."), "{}", document["openapi"]);
    let paths = document["paths"].as_object().unwrap();
    for (path, method) in [
        ("/api/v1/clients", "post"),
        ("/api/v1/clients/{client_id}", "patch"),
        ("/api/v1/clients/{client_id}/status", "get"),
        ("/api/v1/payout-batches", "get"),
        ("/api/v1/payout-batches/{batch_id}/retry", "post"),
        ("/api/v1/payout-batches/{batch_id}/cancel", "post"),
        ("/api/v1/payout-batches/{batch_id}/approve", "post"),
        ("/api/v1/payout-batches/{batch_id}/reject", "post"),
        ("/api/v1/clients/{client_id}/payout-now", "post"),
        ("/api/v1/instant-payouts/{payment_id}/approve", "post"),
        ("/api/v1/instant-payouts/{payment_id}/reject", "post"),
        ("/api/v1/conversions", "get"),
        ("/api/v1/alerts", "get"),
        ("/api/v1/alerts/{alert_id}/ack", "post"),
        ("/api/v1/settings", "get"),
        ("/api/v1/settings", "put"),
    ] {
        assert!(paths.get(path).and_then(|p| p.get(method)).is_some(), "{method} {path} is not documented");
    }
    let status_schema = &document["components"]["schemas"]["ClientStatus"]["properties"];
    for field in [
        "accumulated_usdt",
        "pending_conversion_usd",
        "remaining_usd",
        "progress_percent",
        "estimated_payout_at",
        "recent_payments",
        "payouts",
    ] {
        assert!(status_schema.get(field).is_some(), "ClientStatus lacks {field}");
    }
}

/// A form post to a page; (status, body).
async fn post_form(app: &TestApp, path: &str, form: &[(&str, &str)]) -> (u16, String) {
    let response = app.http.post(format!("http://{}{path}", app.addr)).form(form).send().await.expect("server unreachable");
    (response.status().as_u16(), response.text().await.unwrap())
}

/// Login data as the widget's redirect carries it.
fn serde_urlencoded_query(login: &Value) -> String {
    let pairs: Vec<(String, String)> =
        login.as_object().unwrap().iter().map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned())).collect();
    reqwest::Url::parse_with_params("http://x/", &pairs).unwrap().query().unwrap().to_owned()
}

async fn get_page_at(_app: &TestApp, url: &str) -> (u16, String) {
    let response = reqwest::get(url).await.expect("unreachable");
    (response.status().as_u16(), response.text().await.unwrap())
}

async fn get_page(app: &TestApp, path: &str) -> (u16, String) {
    let response = app.http.get(format!("http://{}{path}", app.addr)).send().await.expect("server unreachable");
    (response.status().as_u16(), response.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_register_and_status_pages_work_without_javascript() {
    let app = TestApp::spawn().await;
    let (ok, page) = get_page(&app, "/register").await;
    assert_eq!(ok, 200);
    assert!(page.contains("Log in with Telegram") && !page.contains("name=\"client_id\""), "login first: {page}");
    // The sandbox's login page signs the test user's login and sends it back to /register.
    let owner = telegram::channel_with_owner(&app, "-100736").await;
    let anchor = "id=\"telegram_login\" class=\"button\" href=\"";
    let start = page.find(anchor).expect("the login link") + anchor.len();
    let login_link: String = page[start..].chars().take_while(|c| *c != '"').collect();
    let (ok, page) = get_page_at(&app, &format!("{}&user_id={owner}&username=owner", login_link.replace("&amp;", "&"))).await;
    assert_eq!(ok, 200, "{page}");
    assert!(page.contains("Logged in with Telegram as <strong>@owner</strong>"), "{page}");
    for field in
        ["client_id", "wallet_address", "payout_currency", "payout_network", "payout_strategy", "payout_threshold_usd", "hash", "auth_date"]
    {
        assert!(page.contains(&format!("name=\"{field}\"")), "the form lacks {field}");
    }
    let login = telegram::login_at(&app.chain.changenow_url(), owner, 0).await;
    let login: Vec<(String, String)> =
        login.as_object().unwrap().iter().map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned())).collect();

    let mut form = vec![
        ("client_id", "-100736"),
        ("payout_strategy", "threshold"),
        ("payout_threshold_usd", "100"),
        ("payout_currency", "xmr"),
        ("payout_network", ""),
        ("wallet_address", "44notamoneroaddress"),
    ];
    let (unproven, page) = post_form(&app, "/register", &form).await;
    assert_eq!(unproven, 401, "no login, no registration: {page}");
    form.extend(login.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let (refused, page) = post_form(&app, "/register", &form).await;
    assert_eq!(refused, 422);
    assert!(page.contains("not a valid xmr address"), "the error is shown: {page}");
    assert!(page.contains("value=\"44notamoneroaddress\""), "what was typed is kept");
    assert!(page.contains("value=\"-100736\""));

    form[5] = ("wallet_address", XMR_WALLET);
    let (created, page) = post_form(&app, "/register", &form).await;
    assert_eq!(created, 201, "{page}");
    let start = page.find("/clients/-100736?key=").expect("the private link is shown");
    let link: String = page[start..].chars().take_while(|c| *c != '"' && *c != '<').collect();

    accumulate(&app, "-100736", &[dec!(30)]).await;
    let answer = app.http.get(format!("http://{}{link}", app.addr)).send().await.unwrap();
    assert_eq!(answer.headers()["referrer-policy"], "no-referrer", "the key in the URL is never sent on");
    assert_eq!(answer.headers()["cache-control"], "no-store");
    let (ok, status_page) = get_page(&app, &link).await;
    assert_eq!(ok, 200);
    assert!(status_page.contains("<progress"), "{status_page}");
    assert!(status_page.contains("id=\"pending_conversion_usd\">29.1"), "{status_page}");
    let (denied, _) = get_page(&app, "/clients/-100736?key=ck_wrong").await;
    assert_eq!(denied, 401);
    let (text_ok, text) = get_page(&app, &link.replace("/clients/-100736?", "/clients/-100736/status.txt?")).await;
    assert_eq!(text_ok, 200);
    assert!(text.starts_with("💰 Your Payout Status\n"), "{text}");
    assert!(text.contains("Threshold: $100.00") && text.contains("Remaining: $70.90"), "{text}");

    // A new wallet while a payment is unpaid: the page says where that payment still goes.
    let key = link.split("key=").nth(1).unwrap().to_owned();
    let change = [
        ("key", key.as_str()),
        ("payout_strategy", "threshold"),
        ("payout_threshold_usd", "100"),
        ("payout_currency", "eth"),
        ("payout_network", "eth"),
        ("wallet_address", ETH_WALLET),
    ];
    let (saved, page) = post_form(&app, "/clients/-100736", &change).await;
    assert_eq!(saved, 200, "{page}");
    assert!(page.contains(&format!("1 unpaid payment(s) will still be paid to {XMR_WALLET}")), "{page}");
    let (_, later) = get_page(&app, &link).await;
    assert!(later.contains(&format!("1 unpaid payment(s) will still be paid to {XMR_WALLET}")), "and on every later visit");
    let (refused, page) =
        post_form(&app, "/clients/-100736", &[("key", key.as_str()), ("payout_strategy", "threshold"), ("payout_threshold_usd", "10")])
            .await;
    assert_eq!(refused, 422);
    assert!(page.contains("at least 50"), "{page}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_forbids_framing_sniffing_and_inline_code() {
    let app = TestApp::spawn().await;
    for path in
        ["/register", "/clients/-1nobody?key=ck_x", "/admin/login", "/health", "/api/v1/openapi.json", "/api/v1/clients/-1nobody/status"]
    {
        let answer = app.http.get(format!("http://{}{path}", app.addr)).send().await.unwrap();
        let headers = answer.headers();
        let csp = headers.get("content-security-policy").unwrap_or_else(|| panic!("{path} has no CSP")).to_str().unwrap();
        assert!(csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(headers["x-frame-options"], "DENY", "{path}");
        assert_eq!(headers["referrer-policy"], "no-referrer", "{path}");
    }
    // The pages' style and script are files of the server, so nothing inline needs allowing (the
    // form and its script show once the user logged in with Telegram).
    let owner = telegram::channel_with_owner(&app, "-100737").await;
    let login = telegram::login_at(&app.chain.changenow_url(), owner, 0).await;
    let query = serde_urlencoded_query(&login);
    let (_, page) = get_page(&app, &format!("/register?{query}")).await;
    assert!(page.contains("Logged in with Telegram"), "{page}");
    assert!(!page.contains("<script>") && !page.contains("<style"), "inline code left in the page");
    for (path, kind) in [("/static/register.js", "text/javascript"), ("/static/pages.css", "text/css")] {
        let answer = app.http.get(format!("http://{}{path}", app.addr)).send().await.unwrap();
        assert_eq!(answer.status(), 200, "{path}");
        assert!(answer.headers()["content-type"].to_str().unwrap().starts_with(kind), "{path}");
        assert!(page.contains(path), "the page links {path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_finishes_its_headers_is_cut_off_and_holds_nothing() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = TestApp::spawn().await;
    let mut slow = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    slow.write_all(b"GET /health HTTP/1.1\r\nHost: payouts\r\nX-Slow: 1").await.unwrap();
    let opened = std::time::Instant::now();
    // Others are served meanwhile.
    assert_eq!(call(&app, reqwest::Method::GET, "/health", None, None).await.0, 200);
    let mut buffer = [0u8; 512];
    let closed = tokio::time::timeout(std::time::Duration::from_secs(25), async {
        loop {
            match slow.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                // hyper may answer 408 before it closes.
                Ok(_) => continue,
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the half-sent request still holds its connection after 25 s");
    let held = opened.elapsed();
    assert!(held >= std::time::Duration::from_secs(5), "cut off after {held:?}: too eager for a slow network");
}
