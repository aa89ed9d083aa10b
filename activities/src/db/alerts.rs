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
    /// A signed IPN names a client that does not exist; it waits for `starter payment route`.
    UnroutableIpn,
    /// A run outlived every deadline of its own, or ended and left its batch open.
    WorkflowOverdue,
    /// A stuck transfer needs more than `MAX_FEE_GWEI` to get in; it is left as it is.
    TransferFeeCeiling,
    /// A transfer outlived its run's deadline unconfirmed; it may still land.
    TransferUnconfirmed,
    /// A client changed its wallet while rows were unpaid (they are still paid to the old one).
    WalletChangedWithUnpaid,
    /// A payout batch above the approval amount waits for an operator.
    PayoutAwaitingApproval,
}

impl AlertKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PayoutBatchFailed => "payout_batch_failed",
            Self::ConversionBatchFailed => "conversion_batch_failed",
            Self::InstantPayoutStopped => "instant_payout_stopped",
            Self::UnroutableIpn => "unroutable_ipn",
            Self::WorkflowOverdue => "workflow_overdue",
            Self::TransferFeeCeiling => "transfer_fee_ceiling",
            Self::TransferUnconfirmed => "transfer_unconfirmed",
            Self::WalletChangedWithUnpaid => "wallet_changed_with_unpaid",
            Self::PayoutAwaitingApproval => "payout_awaiting_approval",
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

/// Returns whether the alert is new (`false`: this event was alerted before).
pub async fn raise(tx: &mut Transaction<'_, Postgres>, alert: &NewAlert<'_>) -> Result<bool, sqlx::Error> {
    let sql = "INSERT INTO alerts (dedupe_key, kind, subject, message) VALUES ($1, $2, $3, $4)
               ON CONFLICT (dedupe_key) DO NOTHING";
    insert(tx, sql, alert).await
}

/// Runs `sql` (an insert into `alerts` of $1 key, $2 kind, $3 subject, $4 message); whether it inserted.
async fn insert(tx: &mut Transaction<'_, Postgres>, sql: &str, alert: &NewAlert<'_>) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(sql)
        .bind(&alert.dedupe_key)
        .bind(alert.kind.as_str())
        .bind(&alert.subject)
        .bind(alert.message)
        .execute(&mut **tx)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// For a condition that lasts (a payout group ChangeNow cannot pay) rather than an event: at most
/// one open alert per `dedupe_key`; once an operator has acknowledged it, the condition found
/// again raises a new one. Stored as `{dedupe_key}#{n}`. Returns whether an alert was raised.
pub async fn raise_unless_open(tx: &mut Transaction<'_, Postgres>, alert: &NewAlert<'_>) -> Result<bool, sqlx::Error> {
    // Two transactions raising the same condition at once would both see none open.
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind(&alert.dedupe_key)
        .execute(&mut **tx)
        .await?;
    let sql = "INSERT INTO alerts (dedupe_key, kind, subject, message)
               SELECT $1 || '#' || (count(*) + 1), $2, $3, $4 FROM alerts WHERE starts_with(dedupe_key, $1 || '#')
               HAVING count(*) FILTER (WHERE acknowledged_at IS NULL) = 0
               ON CONFLICT (dedupe_key) DO NOTHING";
    insert(tx, sql, alert).await
}

/// Acknowledges the alert raised under `dedupe_key`, in the transaction that settled what it was
/// about (an unroutable IPN that was routed), so no one acts on it after.
pub async fn settle(tx: &mut Transaction<'_, Postgres>, dedupe_key: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE alerts SET acknowledged_at = now() WHERE dedupe_key = $1 AND acknowledged_at IS NULL")
        .bind(dedupe_key)
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
