//! The pages in a real browser (logging in with Telegram through the sandbox's login page): `tests/browser/pages.cjs` drives Debian's Chromium with
//! playwright-core (both installed by `make test`) against a test app.

use activities::db::payout_approval;
use integration_tests::{accumulate, batch_in, run_conversion, telegram, TestApp, ADMIN_TOKEN, XMR_WALLET};
use rust_decimal_macros::dec;
use serde_json::json;
use std::process::Command;
use uuid::Uuid;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_status_and_admin_pages_work_in_chromium() {
    let app = TestApp::spawn().await;
    // A payout that failed (ChangeNow refused the address), to be retried from the console.
    app.chain.control("/sim/rules", json!({"payout_address": XMR_WALLET, "rule": "reject"})).await;
    accumulate(&app, "-100752", &[dec!(150)]).await;
    run_conversion(&app, "browser-failed").await.unwrap();
    let failed = batch_in(&app, "-100752", "failed").await;
    app.chain.reset_faults().await;

    let stdout = in_chromium(&app, "-100750", Some(("retry", failed))).await;
    assert!(stdout.contains("ok: the thresholds form saves"), "{stdout}");
    assert!(stdout.contains("ok: the retry button acts on the batch"), "{stdout}");
    let threshold: String =
        sqlx::query_scalar("SELECT value FROM settings WHERE key = 'micro_batch_threshold_usd'").fetch_one(&app.pool).await.unwrap();
    assert_eq!(threshold, "33.30", "the browser's form changed the setting");
    // Its rows were released when ChangeNow refused, so the retry pays them in a new batch.
    batch_in(&app, "-100752", "completed").await;

    // A payout above the approval amount, approved from the console.
    payout_approval::set_approval_amount(&app.pool, Some(dec!(100))).await.unwrap();
    accumulate(&app, "-100753", &[dec!(150)]).await;
    run_conversion(&app, "browser-awaiting").await.unwrap();
    let awaiting = batch_in(&app, "-100753", "awaiting_approval").await;
    let stdout = in_chromium(&app, "-100754", Some(("approve", awaiting))).await;
    assert!(stdout.contains("ok: the approve button acts on the batch"), "{stdout}");
    assert_eq!(batch_in(&app, "-100753", "completed").await, awaiting, "the approved batch is paid");
}

/// Runs `tests/browser/pages.cjs` against the app, registering `client_id`, and clicking
/// `action` on a batch when given; returns what it printed (it fails the test if it failed).
async fn in_chromium(app: &TestApp, client_id: &str, action: Option<(&str, Uuid)>) -> String {
    let tools =
        std::env::var("PAYOUT_TOOLS_DIR").unwrap_or_else(|_| format!("{}/.cache/payout-engine/tools", std::env::var("HOME").unwrap()));
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/browser/pages.cjs");
    let owner = telegram::channel_with_owner(app, client_id).await;
    let mut args = vec![script.to_owned(), format!("http://{}", app.addr), ADMIN_TOKEN.to_owned(), client_id.to_owned(), owner.to_string()];
    if let Some((name, batch_id)) = action {
        args.extend([name.to_owned(), batch_id.to_string()]);
    }
    let output = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .args(&args)
            .env("PLAYWRIGHT_CORE", format!("{tools}/node_modules/playwright-core"))
            .output()
            .expect("node must be on PATH")
    })
    .await
    .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "the browser run failed:\n{stdout}\n{stderr}");
    stdout.into_owned()
}
