//! The admin console on the real server: off without `ADMIN_TOKEN`, a session from `/admin/login`
//! in an `HttpOnly`, `SameSite=Strict` cookie, every action behind the session's CSRF token, and
//! the actions doing what the CLI does.

use integration_tests::{accumulate, run_conversion, TestApp, ADMIN_TOKEN, XMR_WALLET};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use serde_json::json;
use std::time::Duration;

/// A client that does not follow redirects, so each answer can be checked.
fn browser() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

fn url(app: &TestApp, path: &str) -> String {
    format!("http://{}{path}", app.addr)
}

/// Logs in; returns the `Cookie` header value of the session.
async fn log_in(app: &TestApp) -> String {
    let answer = browser().post(url(app, "/admin/login")).form(&[("token", ADMIN_TOKEN)]).send().await.unwrap();
    assert_eq!(answer.status().as_u16(), 303);
    assert_eq!(answer.headers()["location"], "/admin");
    let cookie = answer.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), "{cookie}");
    cookie.split(';').next().unwrap().to_owned()
}

async fn dashboard(app: &TestApp, cookie: &str) -> String {
    let answer = browser().get(url(app, "/admin")).header("cookie", cookie).send().await.unwrap();
    assert_eq!(answer.status().as_u16(), 200);
    answer.text().await.unwrap()
}

/// The CSRF token the dashboard's forms carry.
fn csrf(page: &str) -> String {
    let start = page.find("name=\"csrf\" value=\"").expect("a CSRF field") + "name=\"csrf\" value=\"".len();
    page[start..].chars().take_while(|c| *c != '"').collect()
}

async fn post(app: &TestApp, cookie: &str, path: &str, form: &[(&str, &str)]) -> (u16, String) {
    let answer = browser().post(url(app, path)).header("cookie", cookie).form(form).send().await.unwrap();
    let status = answer.status().as_u16();
    let location = answer.headers().get("location").map(|l| l.to_str().unwrap().to_owned());
    (status, location.unwrap_or(answer.text().await.unwrap()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_logs_in_and_runs_the_platform_from_the_console() {
    let app = TestApp::spawn().await;
    let nobody = browser().get(url(&app, "/admin")).send().await.unwrap();
    assert_eq!(nobody.status().as_u16(), 303, "no session: to the login page");
    assert_eq!(nobody.headers()["location"], "/admin/login");
    let wrong = browser().post(url(&app, "/admin/login")).form(&[("token", "guess")]).send().await.unwrap();
    assert_eq!(wrong.status().as_u16(), 403);
    assert!(wrong.headers().get("set-cookie").is_none());
    let forged = browser().get(url(&app, "/admin")).header("cookie", "admin_session=forged").send().await.unwrap();
    assert_eq!(forged.status().as_u16(), 303);

    // A failed payout from the real pipeline, and its alert.
    app.chain.control("/sim/rules", json!({"payout_address": XMR_WALLET, "rule": "reject"})).await;
    accumulate(&app, "-100720", &[dec!(150)]).await;
    run_conversion(&app, "admin-console").await.unwrap();
    let waited = std::time::Instant::now();
    let batch_id: uuid::Uuid = loop {
        assert!(waited.elapsed() < Duration::from_secs(90), "no failed batch after 90 s");
        let failed: Option<uuid::Uuid> =
            sqlx::query_scalar("SELECT batch_id FROM payout_batches WHERE status = 'failed'").fetch_optional(&app.pool).await.unwrap();
        if let Some(id) = failed {
            break id;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    };

    let cookie = log_in(&app).await;
    let page = dashboard(&app, &cookie).await;
    assert!(page.contains(&format!("id=\"batch-{batch_id}\"")), "the failed batch is listed");
    assert!(page.contains("payout_batch_failed"), "its alert is listed");
    assert!(page.contains("http://localhost:8233/namespaces/default/workflows/payment-"), "payments link into the Temporal UI");
    assert!(
        page.contains(
            "class=\"conversion-workflow\" href=\"http://localhost:8233/namespaces/default/workflows/micro-batch-conversion-admin-console-"
        ),
        "each conversion links to its own run"
    );
    assert!(page.contains("id=\"micro_batch_threshold\">20"), "{page}");
    let token = csrf(&page);

    // Without the session's CSRF token nothing happens.
    let (refused, _) = post(&app, &cookie, "/admin/settings", &[("csrf", "forged"), ("micro_batch_threshold_usd", "99")]).await;
    assert_eq!(refused, 403);
    let (no_session, _) =
        post(&app, "admin_session=forged", "/admin/settings", &[("csrf", &token), ("micro_batch_threshold_usd", "99")]).await;
    assert_eq!(no_session, 303);
    let threshold: String =
        sqlx::query_scalar("SELECT value FROM settings WHERE key = 'micro_batch_threshold_usd'").fetch_one(&app.pool).await.unwrap();
    assert_eq!(threshold, "20.00", "refused forms change nothing");

    let (saved, to) = post(
        &app,
        &cookie,
        "/admin/settings",
        &[("csrf", &token), ("micro_batch_threshold_usd", "42.50"), ("max_client_threshold_usd", "")],
    )
    .await;
    assert_eq!((saved, to.as_str()), (303, "/admin?done=settings"));
    let threshold: String =
        sqlx::query_scalar("SELECT value FROM settings WHERE key = 'micro_batch_threshold_usd'").fetch_one(&app.pool).await.unwrap();
    assert_eq!(threshold, "42.50");
    let (bad, page) = post(&app, &cookie, "/admin/settings", &[("csrf", &token), ("micro_batch_threshold_usd", "-1")]).await;
    assert_eq!(bad, 422, "{page}");

    app.chain.reset_faults().await;
    let (retried, to) = post(&app, &cookie, &format!("/admin/batches/{batch_id}/retry"), &[("csrf", &token)]).await;
    assert_eq!((retried, to.as_str()), (303, "/admin?done=retried"));
    let paid = async {
        loop {
            let done: i64 = sqlx::query_scalar("SELECT count(*) FROM payout_batches WHERE client_id = '-100720' AND status = 'completed'")
                .fetch_one(&app.pool)
                .await
                .unwrap();
            if done == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(90), paid).await.expect("the retry pays the client");

    let alert_id: i64 =
        sqlx::query_scalar("SELECT alert_id FROM alerts WHERE kind = 'payout_batch_failed'").fetch_one(&app.pool).await.unwrap();
    let (acked, to) = post(&app, &cookie, &format!("/admin/alerts/{alert_id}/ack"), &[("csrf", &token)]).await;
    assert_eq!((acked, to.as_str()), (303, "/admin?done=acked"));
    let open: i64 = sqlx::query_scalar("SELECT count(*) FROM alerts WHERE acknowledged_at IS NULL AND kind = 'payout_batch_failed'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(open, 0);

    // An early payout of a client below its threshold.
    accumulate(&app, "-100721", &[dec!(50)]).await; // 48.50 net: above the 42.50 pool threshold set above, below the client's 100
    run_conversion(&app, "admin-early").await.unwrap();
    let (unknown, _) = post(&app, &cookie, "/admin/payout-now", &[("csrf", &token), ("client_id", "-1nobody")]).await;
    assert_eq!(unknown, 404);
    // Every client holding unpaid money has its own button, not only those near their threshold.
    let page = dashboard(&app, &cookie).await;
    assert!(page.contains("action=\"/admin/clients/-100721/payout-now\""), "a button for the client at 48.5 %: {page}");
    let (started, to) = post(&app, &cookie, "/admin/clients/-100721/payout-now", &[("csrf", &token)]).await;
    assert_eq!((started, to.as_str()), (303, "/admin?done=payout-started"));
    let early = async {
        loop {
            let paid: Option<Decimal> =
                sqlx::query_scalar("SELECT total_amount_usdt FROM payout_batches WHERE client_id = '-100721' AND status = 'completed'")
                    .fetch_optional(&app.pool)
                    .await
                    .unwrap();
            if paid.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(90), early).await.expect("the early payout pays");

    let (out, to) = post(&app, &cookie, "/admin/logout", &[("csrf", &token)]).await;
    assert_eq!((out, to.as_str()), (303, "/admin/login"));
    let after = browser().get(url(&app, "/admin")).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(after.status().as_u16(), 303, "the session is closed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_awaiting_approval_is_approved_from_the_console() {
    let app = TestApp::spawn().await;
    activities::db::payout_approval::set_approval_amount(&app.pool, Some(dec!(100))).await.unwrap();
    accumulate(&app, "-100722", &[dec!(150)]).await;
    run_conversion(&app, "admin-approval").await.unwrap();
    let waited = std::time::Instant::now();
    let batch_id: uuid::Uuid = loop {
        assert!(waited.elapsed() < Duration::from_secs(90), "no batch awaiting approval after 90 s");
        let awaiting: Option<uuid::Uuid> = sqlx::query_scalar("SELECT batch_id FROM payout_batches WHERE status = 'awaiting_approval'")
            .fetch_optional(&app.pool)
            .await
            .unwrap();
        if let Some(id) = awaiting {
            break id;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    };

    let cookie = log_in(&app).await;
    let page = dashboard(&app, &cookie).await;
    assert!(page.contains(&format!("id=\"awaiting-{batch_id}\"")), "the batch is listed for approval");
    assert!(page.contains("payout_awaiting_approval"), "with its alert");
    let token = csrf(&page);
    let (no_reason, _) = post(&app, &cookie, &format!("/admin/batches/{batch_id}/reject"), &[("csrf", &token), ("reason", " ")]).await;
    assert_eq!(no_reason, 422, "a rejection needs a reason");
    let (approved, to) = post(&app, &cookie, &format!("/admin/batches/{batch_id}/approve"), &[("csrf", &token)]).await;
    assert_eq!((approved, to.as_str()), (303, "/admin?done=approved"));
    let paid = async {
        loop {
            let status: String = sqlx::query_scalar("SELECT status FROM payout_batches WHERE batch_id = $1")
                .bind(batch_id)
                .fetch_one(&app.pool)
                .await
                .unwrap();
            if status == "completed" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(90), paid).await.expect("the approved batch is paid");
}

/// Issue 11: guessing the admin token is slowed to a few tries a minute per address; while the
/// address is over the limit even the right token is not checked.
#[tokio::test]
async fn admin_logins_are_limited_per_address() {
    let app = TestApp::spawn_without_worker(integration_tests::config(), "127.0.0.1:1").await;
    let limit = payout_starter::api::ADMIN_LOGINS_PER_MINUTE;
    for attempt in 1..=limit {
        let wrong = browser().post(url(&app, "/admin/login")).form(&[("token", "guess")]).send().await.unwrap();
        assert_eq!(wrong.status().as_u16(), 403, "attempt {attempt} is checked");
    }
    let over = browser().post(url(&app, "/admin/login")).form(&[("token", ADMIN_TOKEN)]).send().await.unwrap();
    assert_eq!(over.status().as_u16(), 429);
    assert!(over.headers().get("set-cookie").is_none(), "no session over the limit");
    assert!(over.text().await.unwrap().contains("Too many login attempts"));
}
