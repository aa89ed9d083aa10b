//! Starts payment workflows off the request path.
//!
//! The webhook answers NOWPayments as soon as the IPN is durably stored, then hands the start to
//! this launcher, so the answer never waits on Temporal (whose start RPC is the slowest step of
//! intake). Nothing depends on the launcher for correctness: a start it drops (queue full, process
//! killed, Temporal away) is found by the re-driver, which scans the stored payments.

use crate::temporal_gateway::{StartError, Started, TemporalGateway};
use activities::db::payments;
use sqlx::PgPool;
use std::sync::Arc;
use tokio::sync::{mpsc, Semaphore};
use tracing::{debug, warn};

/// Starts queued in memory at most; beyond this the re-driver takes over.
const QUEUE_CAPACITY: usize = 10_000;

#[derive(Clone)]
pub struct WorkflowLauncher {
    queue: mpsc::Sender<(i64, String)>,
}

impl WorkflowLauncher {
    /// Runs up to `parallel_starts` start calls at once.
    pub fn spawn(pool: PgPool, gateway: Arc<TemporalGateway>, parallel_starts: usize) -> Self {
        let (queue, mut incoming) = mpsc::channel::<(i64, String)>(QUEUE_CAPACITY);
        let permits = Arc::new(Semaphore::new(parallel_starts.max(1)));
        tokio::spawn(async move {
            while let Some((payment_id, client_id)) = incoming.recv().await {
                let Ok(permit) = permits.clone().acquire_owned().await else { break };
                let (pool, gateway) = (pool.clone(), gateway.clone());
                tokio::spawn(async move {
                    let _permit = permit;
                    match start_and_record(&pool, &gateway, payment_id, &client_id).await {
                        Ok(started) => debug!(payment_id, ?started, "payment workflow started"),
                        Err(e) => warn!(payment_id, error = %e, "the re-driver will take over"),
                    }
                });
            }
        });
        Self { queue }
    }

    /// Queues a start; `false` when the queue is full (the re-driver will start it instead).
    pub fn launch(&self, payment_id: i64, client_id: &str) -> bool {
        self.queue.try_send((payment_id, client_id.to_owned())).is_ok()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("workflow not started: {0}")]
    Start(#[from] StartError),
    #[error("workflow started, but its start could not be recorded: {0}")]
    Record(#[from] sqlx::Error),
}

/// Starts the payment's workflow and records that Temporal accepted it: what the webhook does
/// for every stored `finished` IPN (and `starter payment route` for a routed one).
pub async fn start_and_record(pool: &PgPool, gateway: &TemporalGateway, payment_id: i64, client_id: &str) -> Result<Started, LaunchError> {
    let started = gateway.start_payment_workflow(payment_id, client_id).await?;
    payments::mark_workflow_started(pool, payment_id).await?;
    Ok(started)
}
