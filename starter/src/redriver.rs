//! The re-driver: finished payments whose workflow Temporal never accepted (it was down, or
//! the process died between storing the IPN and starting the workflow) get it started here.
//! Starting is idempotent on the workflow id, so racing the webhook is harmless.

use crate::temporal_gateway::{StartError, Started, TemporalGateway};
use activities::db::payments;
use sqlx::PgPool;
use std::{sync::Arc, time::Duration};
use tracing::{debug, info, warn};

const BATCH: i64 = 200;
/// Time the webhook's own launch gets before the re-driver steps in: long enough that under load
/// the re-driver does not duplicate start calls the launcher is still working through.
const SETTLE: Duration = Duration::from_secs(30);

/// One pass; returns how many workflows it got started (or found already started).
pub async fn redrive_once(pool: &PgPool, gateway: &TemporalGateway) -> Result<usize, sqlx::Error> {
    let mut done = 0;
    for (payment_id, client_id) in payments::awaiting_workflow(pool, SETTLE, BATCH).await? {
        match gateway.start_payment_workflow(payment_id, &client_id).await {
            Ok(started) => {
                payments::mark_workflow_started(pool, payment_id).await?;
                match started {
                    Started::Now => info!(payment_id, "re-driver started the payment workflow"),
                    Started::AlreadyExisted => debug!(payment_id, "payment workflow was already started"),
                }
                done += 1;
            }
            Err(e @ (StartError::Unreachable(_) | StartError::TimedOut(_))) => {
                // Temporal is still away: the rest of the batch would fail the same way.
                warn!(payment_id, error = %e, "Temporal unavailable; the re-driver will retry");
                break;
            }
            Err(e) => {
                // This payment alone is refused; it must not hold up the others.
                warn!(payment_id, error = %e, "Temporal refused the payment workflow; will retry");
            }
        }
    }
    Ok(done)
}

/// Runs passes forever, every `interval`.
pub async fn run(pool: PgPool, gateway: Arc<TemporalGateway>, interval: Duration) {
    loop {
        if let Err(e) = redrive_once(&pool, &gateway).await {
            warn!(error = %e, "re-driver could not read pending payments");
        }
        tokio::time::sleep(interval).await;
    }
}
