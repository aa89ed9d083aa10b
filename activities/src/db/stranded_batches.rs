//! `db.alert_stranded_batches`: payout batches left `processing` and conversions left `swapping`
//! by a run that ended without recording how (terminated, reset to before its failure step, timed
//! out). No run will ever move them again, so the 5-minute sweep finds them by age and raises one
//! alert per batch. It changes no batch: whether its money moved is for an operator to check.

use super::alerts::{self, AlertKind, NewAlert};
use sqlx::{PgPool, Row};
use std::sync::Arc;
use temporalio_common::error::ApplicationFailure;
use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};
use tracing::error;
use uuid::Uuid;
use workflows::activity_definitions::{AlertStrandedBatches, StrandedQuery, StrandedReport};

/// Every error is the database's, and retryable.
#[derive(Debug, thiserror::Error)]
pub enum StrandedBatchesError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

pub struct StrandedBatchActivities {
    pool: PgPool,
}

impl StrandedBatchActivities {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

#[activities]
impl StrandedBatchActivities {
    #[activity(definition = AlertStrandedBatches)]
    pub async fn alert_stranded_batches(
        self: Arc<Self>,
        _ctx: ActivityContext,
        query: StrandedQuery,
    ) -> Result<StrandedReport, ActivityError> {
        alert_stranded(&self.pool, &query)
            .await
            .map_err(|e| ActivityError::application(ApplicationFailure::new(StrandedBatchesError::from(e))))
    }
}

/// A batch no run moves any more.
struct Stranded {
    dedupe_key: String,
    batch_id: Uuid,
    message: String,
}

pub async fn alert_stranded(pool: &PgPool, query: &StrandedQuery) -> Result<StrandedReport, sqlx::Error> {
    let hours = i32::try_from(query.stranded_after_hours).unwrap_or(i32::MAX);
    // A payout run makes one exchange (exchange and transfer deadlines) per part, and one more per
    // part for each operator retry; `processing_started_at` restarts with every retry.
    let payouts = sqlx::query(
        "SELECT batch_id, client_id, retries, processing_started_at::text AS since FROM payout_batches
         WHERE status = 'processing'
           AND processing_started_at < now() - make_interval(hours => $1)
                 * greatest(1, cardinality(exchange_parts)) * (retries + 1)
           -- Its run still waits, days if need be, for a transfer recorded sent-unconfirmed.
           AND NOT EXISTS (SELECT 1 FROM transfer_intents t WHERE starts_with(t.purpose_key, 'payout-' || batch_id || '-')
                           AND t.status = 'signed' AND t.unconfirmed_since IS NOT NULL)",
    )
    .bind(hours)
    .fetch_all(pool)
    .await?;
    let conversions = sqlx::query(
        "SELECT batch_conversion_id, COALESCE(processing_started_at, created_at)::text AS since FROM batch_conversions
         WHERE conversion_status = 'swapping' AND COALESCE(processing_started_at, created_at) < now() - make_interval(hours => $1)
           AND NOT EXISTS (SELECT 1 FROM transfer_intents t WHERE t.purpose_key = 'conversion-' || batch_conversion_id
                           AND t.status = 'signed' AND t.unconfirmed_since IS NOT NULL)",
    )
    .bind(hours)
    .fetch_all(pool)
    .await?;

    let mut stranded = Vec::with_capacity(payouts.len() + conversions.len());
    for row in &payouts {
        let batch_id: Uuid = row.try_get("batch_id")?;
        let (client_id, since): (String, String) = (row.try_get("client_id")?, row.try_get("since")?);
        // A retry reopens it, so each retry that strands it again is a new event.
        let retries: i32 = row.try_get("retries")?;
        stranded.push(Stranded {
            dedupe_key: format!("payout-stranded-{batch_id}-{retries}"),
            batch_id,
            message: format!(
                "payout batch {batch_id} of client {client_id} has been 'processing' since {since}, past every deadline \
                 of its run: the run ended without recording its outcome. Check its exchanges (`starter batch show \
                 {batch_id}`); `starter batch retry {batch_id}` resumes it under the same purpose keys"
            ),
        });
    }
    for row in &conversions {
        let batch_id: Uuid = row.try_get("batch_conversion_id")?;
        let since: String = row.try_get("since")?;
        stranded.push(Stranded {
            dedupe_key: format!("conversion-stranded-{batch_id}"),
            batch_id,
            message: format!(
                "conversion batch {batch_id} has been 'swapping' since {since}, past every deadline of its run: the run \
                 ended without recording its outcome. Its rows stay 'swapping' until an operator checks its exchange"
            ),
        });
    }

    let mut newly_alerted = 0;
    let mut tx = pool.begin().await?;
    for s in &stranded {
        let alert = NewAlert {
            dedupe_key: s.dedupe_key.clone(),
            kind: AlertKind::WorkflowOverdue,
            subject: s.batch_id.to_string(),
            message: &s.message,
        };
        if alerts::raise(&mut tx, &alert).await? {
            newly_alerted += 1;
            error!(batch_id = %s.batch_id, dedupe_key = %s.dedupe_key, alert = true, "batch stranded by a run that ended");
        }
    }
    tx.commit().await?;
    Ok(StrandedReport { payout_batches: payouts.len() as u32, conversion_batches: conversions.len() as u32, newly_alerted })
}
