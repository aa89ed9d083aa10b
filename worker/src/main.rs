//! `worker`: runs the payout engine's workflows and activities.

use activities::{db, Config};
use anyhow::Context;
use payout_worker::{connect_temporal, PayoutServices, RunningWorker};
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
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    let config = Config::from_env()?;
    let pool = db::connect(config.database_url.expose()).await.context("cannot connect to Postgres (DATABASE_URL)")?;
    db::MIGRATOR.run(&pool).await.context("cannot apply migrations")?;
    if let Some(usd) = config.payout_approval_above_usd {
        // The environment sets the approval amount at start; operators may change it at run time.
        db::payout_approval::set_approval_amount(&pool, Some(usd)).await.context("cannot store PAYOUT_APPROVAL_ABOVE_USD")?;
        info!(%usd, "payout batches above this wait for an operator's approval");
    }
    let services = PayoutServices::connect(&config, pool).await?;
    let client = connect_temporal(&config.temporal_address, &config.temporal_namespace, Duration::from_secs(10)).await?;
    let worker = RunningWorker::new(client, &config.temporal_task_queue, services, config.metrics_addr)?;
    let shutdown = worker.shutdown_handle();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            info!("shutting down after the current tasks");
            shutdown();
        }
    });
    info!(task_queue = %config.temporal_task_queue, address = %config.temporal_address, "worker running");
    worker.run().await?;
    Ok(())
}
