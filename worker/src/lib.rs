//! The worker: connects to Temporal and Postgres, registers every workflow and activity, runs.
//! A library as well as a binary so the integration tests run the very same worker in-process.

use activities::{BenchmarkActivitiesImpl, PaymentLedgerActivities};
use sqlx::PgPool;
use std::time::Duration;
use temporalio_client::{Client, ClientOptions, Connection, ConnectionOptions};
use temporalio_sdk::{Runtime, Worker, WorkerOptions};
use workflows::{NoopBenchmarkWorkflow, PaymentWorkflow};

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("TEMPORAL_ADDRESS '{0}' is not a valid host:port")]
    BadAddress(String),
    #[error("cannot reach Temporal at {address}: {source}")]
    Connect { address: String, source: Box<dyn std::error::Error + Send + Sync> },
    #[error("cannot set up the worker: {0}")]
    Setup(String),
}

/// Connects a Temporal client; fails within `timeout` when nothing answers.
pub async fn connect_temporal(address: &str, namespace: &str, timeout: Duration) -> Result<Client, WorkerError> {
    let url = url::Url::parse(&format!("http://{address}")).map_err(|_| WorkerError::BadAddress(address.to_owned()))?;
    let options = ConnectionOptions::new(url).connect_timeout(timeout).identity(identity()).build();
    let connection = tokio::time::timeout(timeout, Connection::connect(options))
        .await
        .map_err(|_| WorkerError::Connect { address: address.to_owned(), source: "timed out".into() })?
        .map_err(|e| WorkerError::Connect { address: address.to_owned(), source: e.into() })?;
    Client::new(connection, ClientOptions::new(namespace).build())
        .map_err(|e| WorkerError::Connect { address: address.to_owned(), source: e.into() })
}

fn identity() -> String {
    format!("payout-engine@{}", std::process::id())
}

/// Every workflow and activity of the payout engine, on one task queue.
pub fn worker_options(task_queue: &str, pool: PgPool) -> Result<WorkerOptions, WorkerError> {
    Ok(WorkerOptions::new(task_queue)
        .register_workflow::<PaymentWorkflow>()
        .and_then(|o| o.register_workflow::<NoopBenchmarkWorkflow>())
        .map_err(|e| WorkerError::Setup(e.to_string()))?
        .register_activities(PaymentLedgerActivities::new(pool))
        .register_activities(BenchmarkActivitiesImpl)
        .build())
}

/// Runs a worker until it is shut down (the returned handle) or fails.
pub struct RunningWorker {
    worker: Worker,
    // The worker's core runtime (telemetry, pollers) must live as long as the worker.
    _runtime: Runtime,
}

impl RunningWorker {
    pub fn new(client: Client, task_queue: &str, pool: PgPool) -> Result<Self, WorkerError> {
        let runtime = Runtime::from_current_tokio(Default::default())
            .map_err(|e| WorkerError::Setup(e.to_string()))?;
        let worker = Worker::new(&runtime, client, worker_options(task_queue, pool)?)
            .map_err(|e| WorkerError::Setup(e.to_string()))?;
        Ok(Self { worker, _runtime: runtime })
    }

    /// A function that asks the worker to finish its current tasks and stop.
    pub fn shutdown_handle(&self) -> impl Fn() + Send + Sync + 'static {
        self.worker.shutdown_handle()
    }

    pub async fn run(mut self) -> Result<(), WorkerError> {
        self.worker.run().await.map_err(|e| WorkerError::Setup(e.to_string()))
    }
}
