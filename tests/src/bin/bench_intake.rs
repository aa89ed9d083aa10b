//! `make bench-intake`: the intake's throughput and latency on the running stack (`make up`).
//!
//! 1. Sends N signed `finished` IPNs to the webhook at a target rate (and a concurrency cap),
//!    timing each request, and waits until every one has its accumulation row.
//! 2. On the same Temporal server and worker, runs N no-op workflows with one activity each at
//!    the same rate and concurrency.
//! Prints payments per second (IPN to accumulation row), webhook p50/p99, the no-op workflows
//! per second, and the ratio of the two rates.

use activities::db::{self, clients::ClientSettings};
use clap::Parser;
use futures::{stream, StreamExt};
use integration_tests::{config, test_ipn, XMR_WALLET};
use payout_starter::cli::test_ipn as ipn_sender;
use payout_worker::connect_temporal;
use rust_decimal::Decimal;
use std::time::{Duration, Instant};
use temporalio_client::{WorkflowGetResultOptions, WorkflowStartOptions};
use workflows::{domain::PayoutStrategy, NoopBenchmarkWorkflow};

#[derive(Parser)]
struct Args {
    /// How many IPNs (and how many no-op workflows).
    #[arg(long, default_value_t = 400)]
    payments: usize,
    /// Requests in flight at most.
    #[arg(long, default_value_t = 50)]
    concurrency: usize,
    /// Target request rate per second.
    #[arg(long, default_value_t = 200)]
    rate: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let config = config();
    let pool = db::connect(config.database_url.expose()).await?;
    let run = chrono::Utc::now().timestamp();
    let client_id = format!("bench-{run}");
    db::clients::insert(
        &pool,
        &ClientSettings {
            client_id: client_id.clone(),
            wallet_address: XMR_WALLET.into(),
            payout_currency: "xmr".into(),
            payout_network: "xmr".into(),
            payout_strategy: PayoutStrategy::Threshold,
            payout_threshold_usd: Decimal::from(100),
        },
    )
    .await?;
    let url = format!("http://{}/webhooks/nowpayments", config.http_addr);
    let secret = config.nowpayments_ipn_secret.expose().to_owned();
    let ids: Vec<i64> = (0..args.payments as i64).map(|i| run * 100_000 + i).collect();
    let interval = Duration::from_micros(1_000_000 / args.rate.max(1));

    // The engine confirms each payment with NOWPayments: the sandbox must know them first.
    for &id in &ids {
        let ipn = test_ipn(id, &client_id, Decimal::new(2500, 2), Decimal::new(1, 2));
        payout_starter::cli::test_ipn::make_known(&config.nowpayments_api_url, &ipn)
            .await
            .map_err(|e| anyhow::anyhow!("the sandbox's NOWPayments did not take payment {id}: {e}"))?;
    }
    println!("intake: {} IPNs at {} req/s, concurrency {}, webhook {url}", args.payments, args.rate, args.concurrency);
    let started = Instant::now();
    let latencies: Vec<Duration> = stream::iter(ids.iter().enumerate())
        .map(|(i, &id)| {
            let (url, secret, client_id) = (url.clone(), secret.clone(), client_id.clone());
            async move {
                tokio::time::sleep_until((started + interval * i as u32).into()).await;
                let ipn = test_ipn(id, &client_id, Decimal::new(2500, 2), Decimal::new(1, 2));
                let sent = Instant::now();
                let (status, answer) = ipn_sender::send(&url, &ipn, &secret).await.expect("webhook unreachable");
                assert_eq!(status, 200, "{answer}");
                sent.elapsed()
            }
        })
        .buffer_unordered(args.concurrency)
        .collect()
        .await;
    let sent_in = started.elapsed();
    loop {
        let done: i64 = sqlx::query_scalar("SELECT count(*) FROM payout_accumulation WHERE nowpayments_payment_id = ANY($1)")
            .bind(&ids)
            .fetch_one(&pool)
            .await?;
        if done as usize == ids.len() {
            break;
        }
        if started.elapsed() > Duration::from_secs(600) {
            anyhow::bail!("only {done} of {} payments accumulated after 10 minutes", ids.len());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let intake_elapsed = started.elapsed();
    let intake_rate = args.payments as f64 / intake_elapsed.as_secs_f64();
    let (p50, p99) = percentiles(latencies);

    println!("baseline: {} no-op workflows (one activity each) at the same rate and concurrency", args.payments);
    let temporal = connect_temporal(&config.temporal_address, &config.temporal_namespace, Duration::from_secs(5)).await?;
    let started = Instant::now();
    stream::iter(0..args.payments)
        .map(|i| {
            let (temporal, queue) = (temporal.clone(), config.temporal_task_queue.clone());
            async move {
                tokio::time::sleep_until((started + interval * i as u32).into()).await;
                let options = WorkflowStartOptions::new(queue, format!("bench-noop-{run}-{i}")).build();
                let handle = temporal.start_workflow(NoopBenchmarkWorkflow::run, i as i64, options).await.expect("start failed");
                handle.get_result(WorkflowGetResultOptions::default()).await.expect("no-op workflow failed");
            }
        })
        .buffer_unordered(args.concurrency)
        .collect::<Vec<()>>()
        .await;
    let baseline_elapsed = started.elapsed();
    let baseline_rate = args.payments as f64 / baseline_elapsed.as_secs_f64();

    println!();
    println!("IPNs sent in                         {sent_in:.2?}");
    println!("payments/s, IPN -> accumulation row  {intake_rate:.1}   ({} in {intake_elapsed:.2?})", args.payments);
    println!("webhook latency p50 / p99            {p50:.2?} / {p99:.2?}");
    println!("no-op workflows/s (1 activity)       {baseline_rate:.1}   ({} in {baseline_elapsed:.2?})", args.payments);
    println!("ratio intake / no-op                 {:.2}   (target >= 0.8)", intake_rate / baseline_rate);
    Ok(())
}

fn percentiles(mut latencies: Vec<Duration>) -> (Duration, Duration) {
    latencies.sort();
    let at = |q: usize| latencies[((latencies.len() * q) / 100).min(latencies.len() - 1)];
    (at(50), at(99))
}
