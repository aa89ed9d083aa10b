//! Each batch outcome recorded once, in the transaction that recorded the outcome itself, for the
//! metrics `payout_conversions_total{outcome}`, `payout_batches_total{outcome}` and
//! `payout_batch_duration_seconds` (see migration 0013 for why the database keeps the count).

use rust_decimal::Decimal;
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchKind {
    Conversion,
    Payout,
}

impl BatchKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Conversion => "conversion",
            Self::Payout => "payout",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Completed,
    Failed,
    Rejected,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Rejected => "rejected",
        }
    }
}

/// Records `outcome` for a batch whose state change is in `tx`; its duration runs from when the
/// batch (or its latest retry) started processing.
pub async fn record(tx: &mut Transaction<'_, Postgres>, kind: BatchKind, batch_id: Uuid, outcome: Outcome) -> Result<(), sqlx::Error> {
    let started = match kind {
        BatchKind::Conversion => "SELECT COALESCE(processing_started_at, created_at) FROM batch_conversions WHERE batch_conversion_id = $1",
        BatchKind::Payout => "SELECT COALESCE(processing_started_at, created_at) FROM payout_batches WHERE batch_id = $1",
    };
    sqlx::query(&format!(
        "INSERT INTO batch_outcomes (batch_kind, batch_id, outcome, seconds)
         SELECT $2, $1, $3, round(greatest(0, extract(epoch FROM now() - started))::numeric, 3)
         FROM ({started}) AS b(started)"
    ))
    .bind(batch_id)
    .bind(kind.as_str())
    .bind(outcome.as_str())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// How many outcomes of each kind, and how their durations fall into `buckets` (seconds, ascending).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OutcomeCount {
    pub batch_kind: String,
    pub outcome: String,
    pub count: i64,
    pub seconds_sum: Decimal,
    /// Cumulative, as Prometheus buckets are: `at_or_below[i]` outcomes took at most `buckets[i]` seconds.
    pub at_or_below: Vec<i64>,
}

pub async fn counts(pool: &PgPool, buckets: &[Decimal]) -> Result<Vec<OutcomeCount>, sqlx::Error> {
    // Each outcome goes to the first bucket whose bound it does not exceed (`buckets.len()`: +Inf).
    let rows: Vec<(String, String, i32, i64, Decimal)> = sqlx::query_as(
        "SELECT batch_kind, outcome, (SELECT count(*) FROM unnest($1::numeric[]) AS b WHERE b < o.seconds)::int,
                count(*), sum(seconds)
         FROM batch_outcomes o GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
    )
    .bind(buckets)
    .fetch_all(pool)
    .await?;
    let mut counts: Vec<OutcomeCount> = Vec::new();
    for (batch_kind, outcome, first_bucket, count, seconds) in rows {
        if counts.last().is_none_or(|c| c.batch_kind != batch_kind || c.outcome != outcome) {
            counts.push(OutcomeCount { batch_kind, outcome, at_or_below: vec![0; buckets.len()], ..Default::default() });
        }
        let entry = counts.last_mut().expect("pushed above");
        entry.count += count;
        entry.seconds_sum += seconds;
        for at_or_below in entry.at_or_below.iter_mut().skip(first_bucket.max(0) as usize) {
            *at_or_below += count;
        }
    }
    Ok(counts)
}
