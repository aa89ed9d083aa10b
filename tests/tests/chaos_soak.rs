//! The short variant of `make soak`: the whole engine on parts the soak owns (its own Postgres,
//! Temporal dev server, anvil and ChangeNow simulator), two worker processes on one task queue,
//! 80 payments over 8 clients, and every fault kind at least once; no invariant may break.

use integration_tests::soak::{self, SoakOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_chaos_soak_keeps_every_invariant() {
    let seed = std::env::var("SOAK_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(1);
    let report = soak::run(SoakOptions::short(seed, 80, 8)).await.expect("the soak could not run");
    println!("{}", report.table);
    assert!(report.violations.is_empty(), "{} violations (seed {seed}):\n{}", report.violations.len(), report.table);
    // Its duration is a figure, not a pass mark (a busy machine takes longer): printed above.
}
