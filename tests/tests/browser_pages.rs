//! The pages in a real browser: `tests/browser/pages.cjs` drives Debian's Chromium with
//! playwright-core (both installed by `make test`) against a test app.

use integration_tests::{TestApp, ADMIN_TOKEN};
use std::process::Command;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_status_and_admin_pages_work_in_chromium() {
    let app = TestApp::spawn().await;
    let tools = std::env::var("PAYOUT_TOOLS_DIR")
        .unwrap_or_else(|_| format!("{}/.cache/payout-engine/tools", std::env::var("HOME").unwrap()));
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/browser/pages.cjs");
    let base = format!("http://{}", app.addr);
    let output = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .args([script, &base, ADMIN_TOKEN, "-100750"])
            .env("PLAYWRIGHT_CORE", format!("{tools}/node_modules/playwright-core"))
            .output()
            .expect("node must be on PATH")
    })
    .await
    .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "the browser run failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("ok: the thresholds form saves"), "{stdout}");
    let threshold: String = sqlx::query_scalar("SELECT value FROM settings WHERE key = 'micro_batch_threshold_usd'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(threshold, "33.30", "the browser's form changed the setting");
}
