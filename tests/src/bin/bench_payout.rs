//! `make bench-payout`: threshold payouts at scale.
//!
//! 1. 1,000 clients over their threshold at once (each 95 USDT converted and unpaid, in its own
//!    anvil, simulator and database, against the stack's Temporal server): one sweep starts their
//!    1,000 `ClientPayoutWorkflow`s; prints the time until every batch is `completed` (target:
//!    under 120 s on this machine with the simulator) and checks every row paid exactly once; then
//!    as many no-op workflows on the same worker, the rate payouts are compared with.
//! 2. The over-threshold query (`db::payout_ledger::due_groups`, the sweep's own SQL) over
//!    1,000,000 converted, unpaid rows (target: under 20 ms).

use futures::StreamExt;
use integration_tests::{fresh_database, TestApp, XMR_WALLET};
use std::time::{Duration, Instant};
use temporalio_client::{WorkflowGetResultOptions, WorkflowStartOptions};
use workflows::{activity_definitions::DueQuery, NoopBenchmarkWorkflow, ThresholdPayoutSweepInput, ThresholdPayoutSweepWorkflow};

const CLIENTS: i64 = 1000;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    // `bench-payout payouts` or `bench-payout query` runs one part only.
    let part = std::env::args().nth(1);
    if part.as_deref() != Some("query") {
        println!("{CLIENTS} clients over threshold at once (simulator step delay 200 ms, anvil automine)");
        thousand_payouts().await?;
        println!();
    }
    if part.as_deref() != Some("payouts") {
        println!("over-threshold query over 1,000,000 converted, unpaid payout_accumulation rows (20 runs each)");
        due_query_timings().await?;
    }
    Ok(())
}

/// Inserts `rows_per_client` converted, unpaid rows of `usdt` each for clients
/// `{prefix}1..={prefix}{clients}` (a fresh prefix per run: payout workflow ids derive from the
/// client id, and the stack's Temporal server keeps the runs of earlier benchmarks).
async fn seed_converted_rows(pool: &sqlx::PgPool, prefix: &str, clients: i64, rows_per_client: i64, usdt: &str) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO clients (client_id, wallet_address, payout_currency, payout_network, payout_strategy, payout_threshold_usd)
         SELECT $3 || c, $2, 'xmr', 'xmr', 'threshold', 50 FROM generate_series(1, $1) c",
    )
    .bind(clients)
    .bind(XMR_WALLET)
    .bind(prefix)
    .execute(pool)
    .await?;
    sqlx::query(
        "INSERT INTO batch_conversions (batch_conversion_id, total_eth_usd, total_eth, threshold_at_creation, conversion_status,
             actual_usdt_received)
         VALUES ('00000000-0000-0000-0000-000000000001', 0, 0, 20, 'completed', 1)",
    )
    .execute(pool)
    .await?;
    let rows = clients * rows_per_client;
    sqlx::query(
        "INSERT INTO payments (payment_id, order_id, user_id, client_id, payment_status, status, price_amount, price_currency,
             outcome_amount, outcome_currency, raw_ipn, fee_percent, fee_amount_usd, net_amount_usd, fee_amount_eth, net_amount_eth)
         SELECT g, 'PGP-1|' || $3 || (1 + g % $2), 1, $3 || (1 + g % $2), 'finished', 'accumulated', 100, 'usd', 0.0333,
                'eth', '{}', 3, 3, 97, 0.001, 0.0323
         FROM generate_series(1, $1) g",
    )
    .bind(rows)
    .bind(clients)
    .bind(prefix)
    .execute(pool)
    .await?;
    sqlx::query(
        "INSERT INTO payout_accumulation (nowpayments_payment_id, client_id, user_id, payment_amount_usd, payment_currency,
             payment_timestamp, fee_amount_usd, net_amount_usd, accumulated_eth, client_wallet_address,
             client_payout_currency, client_payout_network, conversion_status, batch_conversion_id, accumulated_amount_usdt)
         SELECT g, $5 || (1 + g % $2), 1, 100, 'usd', now(), 3, 97, 0.0323, $3, 'xmr', 'xmr', 'completed',
                '00000000-0000-0000-0000-000000000001', $4::numeric
         FROM generate_series(1, $1) g",
    )
    .bind(rows)
    .bind(clients)
    .bind(XMR_WALLET)
    .bind(usdt)
    .bind(prefix)
    .execute(pool)
    .await?;
    sqlx::query("VACUUM ANALYZE payout_accumulation").execute(pool).await?;
    Ok(())
}

async fn thousand_payouts() -> anyhow::Result<()> {
    let app = TestApp::spawn().await;
    let prefix = format!("bench-{}-", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    seed_converted_rows(&app.pool, &prefix, CLIENTS, 1, "95").await?;
    let started = Instant::now();
    let client = app.temporal().await;
    let id = format!("threshold-payout-sweep-bench-{}", uuid::Uuid::new_v4().simple());
    let sweep = client
        .start_workflow(
            ThresholdPayoutSweepWorkflow::run,
            ThresholdPayoutSweepInput { max_age_days: 90, only_client: None },
            WorkflowStartOptions::new(app.task_queue.clone(), id).build(),
        )
        .await?;
    let swept = sweep.get_result(WorkflowGetResultOptions::default()).await?;
    println!("  sweep started the payouts in {:.1} s: {swept:?}", started.elapsed().as_secs_f64());
    let mut last_print = Instant::now();
    loop {
        let (completed, failed): (i64, i64) = sqlx::query_as(
            "SELECT count(*) FILTER (WHERE status = 'completed'), count(*) FILTER (WHERE status = 'failed') FROM payout_batches",
        )
        .fetch_one(&app.pool)
        .await?;
        anyhow::ensure!(failed == 0, "{failed} payout batches failed");
        if completed == CLIENTS {
            break;
        }
        if last_print.elapsed() > Duration::from_secs(30) {
            println!("  ... {completed} completed after {:.0} s", started.elapsed().as_secs_f64());
            last_print = Instant::now();
        }
        anyhow::ensure!(started.elapsed() < Duration::from_secs(1800), "only {completed} batches completed after 30 minutes");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let elapsed = started.elapsed();
    let (paid_rows, transfers): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM payout_accumulation WHERE is_paid_out),
                (SELECT count(*) FROM transfer_intents WHERE purpose_key LIKE 'payout-%')",
    )
    .fetch_one(&app.pool)
    .await?;
    let exchanges = app.chain.exchanges().await.len();
    println!(
        "  {CLIENTS} batches completed in {:.1} s ({:.1} payouts/s); rows paid {paid_rows}, USDT transfers {transfers}, exchanges {exchanges}",
        elapsed.as_secs_f64(),
        CLIENTS as f64 / elapsed.as_secs_f64()
    );
    anyhow::ensure!(paid_rows == CLIENTS && transfers == CLIENTS && exchanges == CLIENTS as usize, "not exactly once");

    // The baseline of the same run: as many no-op workflows (one activity each), all started at
    // once like the payouts, on the same worker and server.
    let started = Instant::now();
    let run = uuid::Uuid::new_v4().simple().to_string();
    futures::stream::iter(0..CLIENTS)
        .map(|i| {
            let (client, queue, run) = (client.clone(), app.task_queue.clone(), run.clone());
            async move {
                let options = WorkflowStartOptions::new(queue, format!("bench-payout-noop-{run}-{i}")).build();
                let handle = client.start_workflow(NoopBenchmarkWorkflow::run, i, options).await.expect("start failed");
                handle.get_result(WorkflowGetResultOptions::default()).await.expect("no-op workflow failed");
            }
        })
        .buffer_unordered(CLIENTS as usize)
        .collect::<Vec<()>>()
        .await;
    let baseline = started.elapsed();
    let (payout_rate, noop_rate) = (CLIENTS as f64 / elapsed.as_secs_f64(), CLIENTS as f64 / baseline.as_secs_f64());
    println!("  {CLIENTS} no-op workflows (one activity each) in {:.1} s ({noop_rate:.1} workflows/s)", baseline.as_secs_f64());
    println!("  payouts/s against no-op workflows/s: {:.2}", payout_rate / noop_rate);
    Ok(())
}

async fn due_query_timings() -> anyhow::Result<()> {
    let (pool, _) = fresh_database(&integration_tests::config()).await;
    let started = Instant::now();
    // 10,000 clients with 100 rows of 0.40 USDT each: 40 USDT, under every client's threshold
    // of 50, except the 1,000 whose rows are worth 1 USDT each.
    // A million rows written in one transaction leave a million dead versions of the 10,000
    // balance rows, which no steady state has (accumulations arrive a batch at a time, and
    // each update is pruned in place). So the rows are written with triggers off and the
    // balances filled the way the migration fills them from existing rows.
    sqlx::query("ALTER TABLE payout_accumulation DISABLE TRIGGER payout_group_balances_sync").execute(&pool).await?;
    seed_converted_rows(&pool, "bench-", 10_000, 100, "0.40").await?;
    sqlx::query("UPDATE payout_accumulation SET accumulated_amount_usdt = 1 WHERE client_id IN (SELECT 'bench-' || c FROM generate_series(1, 1000) c)")
        .execute(&pool)
        .await?;
    sqlx::query("ALTER TABLE payout_accumulation ENABLE TRIGGER payout_group_balances_sync").execute(&pool).await?;
    sqlx::query(
        "INSERT INTO payout_group_balances (client_id, client_wallet_address, client_payout_currency, client_payout_network,
                                            unpaid_usdt, unpaid_rows, oldest_unpaid_at, due_at_usdt)
         SELECT client_id, client_wallet_address, client_payout_currency, client_payout_network,
                sum(accumulated_amount_usdt), count(*), min(created_at), client_due_at_usdt(client_id)
         FROM payout_accumulation
         WHERE conversion_status = 'completed' AND NOT is_paid_out AND payout_batch_id IS NULL
         GROUP BY 1, 2, 3, 4",
    )
    .execute(&pool)
    .await?;
    for table in ["payout_accumulation", "payout_group_balances", "clients"] {
        sqlx::query(&format!("VACUUM ANALYZE {table}")).execute(&pool).await?;
    }
    println!("  (filled in {:.1} s)", started.elapsed().as_secs_f64());
    for (label, query) in [
        ("threshold check", DueQuery { max_age_days: None, only_client: None }),
        ("threshold + 90-day check", DueQuery { max_age_days: Some(90), only_client: None }),
        ("one client (payout now)", DueQuery { max_age_days: None, only_client: Some("bench-7".into()) }),
    ] {
        let mut times = Vec::new();
        let mut due = 0;
        for _ in 0..20 {
            let started = Instant::now();
            due = activities::db::payout_ledger::due_groups(&pool, &query).await?.len();
            times.push(started.elapsed());
        }
        times.sort();
        println!(
            "  {label:<28} {due:>6} groups due   median {:>8.2} ms   max {:>8.2} ms",
            times[10].as_secs_f64() * 1000.0,
            times[19].as_secs_f64() * 1000.0
        );
    }
    // For comparison: the same check as a GROUP BY over the rows (what the balances replace).
    let mut times = Vec::new();
    for _ in 0..20 {
        let started = Instant::now();
        sqlx::query(
            "SELECT a.client_id FROM payout_accumulation a JOIN clients c ON c.client_id = a.client_id
             WHERE a.conversion_status = 'completed' AND NOT a.is_paid_out AND a.payout_batch_id IS NULL
             GROUP BY a.client_id, a.client_wallet_address, a.client_payout_currency, a.client_payout_network,
                      c.payout_threshold_usd
             HAVING SUM(a.accumulated_amount_usdt) >= c.payout_threshold_usd",
        )
        .fetch_all(&pool)
        .await?;
        times.push(started.elapsed());
    }
    times.sort();
    println!(
        "  {:<28} {:>6}               median {:>8.2} ms   max {:>8.2} ms",
        "(GROUP BY over the rows)",
        "",
        times[10].as_secs_f64() * 1000.0,
        times[19].as_secs_f64() * 1000.0
    );
    Ok(())
}
