//! The alert channel: rows in `alerts`, written in the same transaction as the state change
//! that calls for an operator (a failed batch, a held payout), so an alert is never lost nor
//! raised twice by a retried step. `starter alerts` lists and acknowledges them; the log line
//! with `alert = true` beside each is for log-based paging.

use sqlx::{PgPool, Postgres, Transaction};

/// What needs an operator, by kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertKind {
    PayoutBatchFailed,
    ConversionBatchFailed,
    InstantPayoutStopped,
    /// A stuck transfer needs more than `MAX_FEE_GWEI` to get in; it is left as it is.
    TransferFeeCeiling,
}

impl AlertKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PayoutBatchFailed => "payout_batch_failed",
            Self::ConversionBatchFailed => "conversion_batch_failed",
            Self::InstantPayoutStopped => "instant_payout_stopped",
            Self::TransferFeeCeiling => "transfer_fee_ceiling",
        }
    }
}

pub struct NewAlert<'a> {
    /// One alert per event: raising the same key again changes nothing.
    pub dedupe_key: String,
    pub kind: AlertKind,
    pub subject: String,
    pub message: &'a str,
}

pub async fn raise(tx: &mut Transaction<'_, Postgres>, alert: &NewAlert<'_>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO alerts (dedupe_key, kind, subject, message) VALUES ($1, $2, $3, $4)
         ON CONFLICT (dedupe_key) DO NOTHING",
    )
    .bind(&alert.dedupe_key)
    .bind(alert.kind.as_str())
    .bind(&alert.subject)
    .bind(alert.message)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Alert {
    pub alert_id: i64,
    pub kind: String,
    pub subject: String,
    pub message: String,
    pub raised_at: chrono::DateTime<chrono::Utc>,
}

/// Alerts no operator has acknowledged yet, oldest first.
pub async fn open(pool: &PgPool) -> Result<Vec<Alert>, sqlx::Error> {
    sqlx::query_as(
        "SELECT alert_id, kind, subject, message, raised_at FROM alerts
         WHERE acknowledged_at IS NULL ORDER BY raised_at, alert_id",
    )
    .fetch_all(pool)
    .await
}

/// Returns whether the alert was open.
pub async fn acknowledge(pool: &PgPool, alert_id: i64) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("UPDATE alerts SET acknowledged_at = now() WHERE alert_id = $1 AND acknowledged_at IS NULL")
        .bind(alert_id)
        .execute(pool)
        .await?;
    Ok(done.rows_affected() == 1)
}
