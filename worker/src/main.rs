//! `worker`: runs the payout engine's workflows and activities.

use activities::{db, Config};
use anyhow::Context;
use payout_worker::{connect_temporal_as_configured, PayoutServices, RunningWorker};
use std::time::Duration;
use tracing::info;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow::Result<()> {
    dotenvy::dotenv().ok();
    payout_worker::init_logging()?;
    let config = Config::from_env()?;
    let pool = db::connect(config.database_url.expose()).await.context("cannot connect to Postgres (DATABASE_URL)")?;
    db::MIGRATOR.run(&pool).await.context("cannot apply migrations")?;
    // The environment's approval amount applies when it changed; otherwise what operators set
    // at run time stands.
    let configured = config.payout_approval_above_usd;
    if db::payout_approval::apply_configured_amount(&pool, configured).await.context("cannot store PAYOUT_APPROVAL_ABOVE_USD")? {
        info!(usd = ?configured, "PAYOUT_APPROVAL_ABOVE_USD applied: payouts above it wait for an operator's approval");
    }
    let daily = config.client_daily_payout_limit_usd;
    if db::payout_limits::apply_configured_daily_limit(&pool, daily).await.context("cannot store CLIENT_DAILY_PAYOUT_LIMIT_USD")? {
        info!(usd = ?daily, "CLIENT_DAILY_PAYOUT_LIMIT_USD applied: a payout taking a client's last 24 h above it waits for approval");
    }
    let services = PayoutServices::connect(&config, pool).await?;
    let client = connect_temporal_as_configured(&config, Duration::from_secs(10)).await?;
    let worker = RunningWorker::new(client, &config.temporal_task_queue, services, config.metrics_addr)?;
    let shutdown = worker.shutdown_handle();
    let (stopping_tx, stopping) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        stop_requested().await;
        info!(grace_secs = SHUTDOWN_GRACE.as_secs(), "stopping: no new tasks; running ones may finish");
        shutdown();
        stopping_tx.send(()).ok();
    });
    info!(task_queue = %config.temporal_task_queue, address = %config.temporal_address, "worker running");
    let run = worker.run();
    tokio::pin!(run);
    tokio::select! {
        ended = &mut run => ended?,
        _ = stopping => match tokio::time::timeout(SHUTDOWN_GRACE, run).await {
            Ok(ended) => ended?,
            // Their tasks time out on the server and are retried by another worker: activities are idempotent.
            Err(_) => anyhow::bail!("tasks still running {}s after the stop request; exiting anyway", SHUTDOWN_GRACE.as_secs()),
        },
    }
    info!("worker stopped");
    Ok(())
}

/// How long running activities get to finish after SIGTERM or Ctrl-C.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// SIGTERM (orchestrators, `make down`) or Ctrl-C.
async fn stop_requested() {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("a SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
}
