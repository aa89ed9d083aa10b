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
    /// The settlement stablecoin trades more than 2 % away from one US dollar.
    StablecoinDepeg,
    /// A client's converted USDT has reached its threshold for more than 7 days without a payout.
    ClientOverThreshold7d,
    /// Pending threshold payments have waited longer than `ALERT_POOL_MAX_WAIT_MINUTES` for a conversion.
    ConversionPoolWaiting,
    /// The hot wallet holds less ETH than the gas its open work needs.
    HotWalletLow,
    /// The sweep's over-threshold query took longer than 500 ms.
    OverThresholdQuerySlow,
    /// Once a day: the warnings still open.
    DailyDigest,
    /// The ledger and the chain or ChangeNow disagree (`starter reconcile`, the daily schedule).
    ReconciliationDifference,
    /// A signed IPN for a payment NOWPayments does not confirm as finished: never paid.
    PaymentUnverified,
    /// NOWPayments' record of a payment differs from its IPN: the record's facts were used.
    PaymentMismatch,
    /// NOWPayments' API has not answered a payment's record for several tries: payments wait.
    NowPaymentsUnreachable,
    /// An open transfer's nonce is ahead of the chain with nothing holding the nonces between.
    NonceGap,
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
            Self::StablecoinDepeg => "stablecoin_depeg",
            Self::ClientOverThreshold7d => "client_over_threshold_7d",
            Self::ConversionPoolWaiting => "conversion_pool_waiting",
            Self::HotWalletLow => "hot_wallet_low",
            Self::OverThresholdQuerySlow => "over_threshold_query_slow",
            Self::DailyDigest => "daily_digest",
            Self::ReconciliationDifference => "reconciliation_difference",
            Self::PaymentUnverified => "payment_unverified",
            Self::PaymentMismatch => "payment_mismatch",
            Self::NowPaymentsUnreachable => "nowpayments_unreachable",
            Self::NonceGap => "nonce_gap",
        }
    }

    /// Critical: money is stuck or at risk now and someone should act today; warning: it will be
    /// if nobody looks; info: news.
    pub fn severity(self) -> Severity {
        match self {
            Self::PayoutBatchFailed
            | Self::ConversionBatchFailed
            | Self::InstantPayoutStopped
            | Self::TransferUnconfirmed
            | Self::StablecoinDepeg
            | Self::HotWalletLow
            | Self::ReconciliationDifference
            | Self::PaymentUnverified
            | Self::PaymentMismatch
            | Self::NowPaymentsUnreachable
            | Self::NonceGap => Severity::Critical,
            Self::UnroutableIpn
            | Self::WorkflowOverdue
            | Self::TransferFeeCeiling
            | Self::WalletChangedWithUnpaid
            | Self::PayoutAwaitingApproval
            | Self::ClientOverThreshold7d
            | Self::ConversionPoolWaiting
            | Self::OverThresholdQuerySlow => Severity::Warning,
            Self::DailyDigest => Severity::Info,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Critical,
    Warning,
    Info,
}

impl Severity {
    pub const ALL: [Severity; 3] = [Severity::Critical, Severity::Warning, Severity::Info];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Critical => "critical",
            Self::Warning => "warning",
            Self::Info => "info",
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
    let sql = "INSERT INTO alerts (dedupe_key, kind, subject, message, severity) VALUES ($1, $2, $3, $4, $5)
               ON CONFLICT (dedupe_key) DO NOTHING";
    insert(tx, sql, alert).await
}

/// Runs `sql` (an insert into `alerts` of $1 key, $2 kind, $3 subject, $4 message, $5 severity);
/// whether it inserted.
async fn insert(tx: &mut Transaction<'_, Postgres>, sql: &str, alert: &NewAlert<'_>) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(sql)
        .bind(&alert.dedupe_key)
        .bind(alert.kind.as_str())
        .bind(&alert.subject)
        .bind(alert.message)
        .bind(alert.kind.severity().as_str())
        .execute(&mut **tx)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// For a condition that lasts (a payout group ChangeNow cannot pay) rather than an event: at most
/// one open alert per `dedupe_key`; once an operator has acknowledged it, the condition found
/// again raises a new one. Stored as `{dedupe_key}#{n}`. Returns whether an alert was raised.
pub async fn raise_unless_open(tx: &mut Transaction<'_, Postgres>, alert: &NewAlert<'_>) -> Result<bool, sqlx::Error> {
    // Two transactions raising the same condition at once would both see none open.
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))").bind(&alert.dedupe_key).execute(&mut **tx).await?;
    let sql = "INSERT INTO alerts (dedupe_key, kind, subject, message, severity)
               SELECT $1 || '#' || (count(*) + 1), $2, $3, $4, $5 FROM alerts WHERE starts_with(dedupe_key, $1 || '#')
               HAVING count(*) FILTER (WHERE acknowledged_at IS NULL) = 0
               ON CONFLICT (dedupe_key) DO NOTHING";
    insert(tx, sql, alert).await
}

/// Acknowledges the open alert of a condition raised with [`raise_unless_open`], in the
/// transaction that settled it, so the condition found again raises a new one.
pub async fn settle_condition(tx: &mut Transaction<'_, Postgres>, dedupe_key: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE alerts SET acknowledged_at = now() WHERE starts_with(dedupe_key, $1 || '#') AND acknowledged_at IS NULL")
        .bind(dedupe_key)
        .execute(&mut **tx)
        .await?;
    Ok(())
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

/// Closes the open alerts of a lasting condition (raised with [`raise_unless_open`]) that has
/// cleared: of `kind`, with a key not among `still_firing` (their keys without the `#n`).
pub async fn resolve_cleared(tx: &mut Transaction<'_, Postgres>, kind: AlertKind, still_firing: &[String]) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE alerts SET acknowledged_at = now(), resolved_at = now()
         WHERE kind = $1 AND acknowledged_at IS NULL AND NOT (split_part(dedupe_key, '#', 1) = ANY($2))",
    )
    .bind(kind.as_str())
    .bind(still_firing)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected())
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Alert {
    pub alert_id: i64,
    pub kind: String,
    pub severity: String,
    pub subject: String,
    pub message: String,
    pub details: serde_json::Value,
    pub raised_at: chrono::DateTime<chrono::Utc>,
}

/// Alerts no operator has acknowledged yet, oldest first.
pub async fn open(pool: &PgPool) -> Result<Vec<Alert>, sqlx::Error> {
    sqlx::query_as(
        "SELECT alert_id, kind, severity, subject, message, details, raised_at FROM alerts
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

/// The oldest alerts not yet delivered to `ALERT_WEBHOOK_URL` (open or not: an alert settled
/// before it could be sent is still news).
pub async fn undelivered(pool: &PgPool, limit: i64) -> Result<Vec<Alert>, sqlx::Error> {
    sqlx::query_as(
        "SELECT alert_id, kind, severity, subject, message, details, raised_at FROM alerts
         WHERE delivered_at IS NULL ORDER BY alert_id LIMIT $1",
    )
    .bind(limit)
    .fetch_all(pool)
    .await
}

pub async fn mark_delivered(pool: &PgPool, alert_id: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE alerts SET delivered_at = now(), delivery_attempts = delivery_attempts + 1, last_delivery_error = NULL WHERE alert_id = $1",
    )
    .bind(alert_id)
    .execute(pool)
    .await?;
    Ok(())
}

pub async fn mark_delivery_failed(pool: &PgPool, alert_id: i64, error: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE alerts SET delivery_attempts = delivery_attempts + 1, last_delivery_error = $2 WHERE alert_id = $1")
        .bind(alert_id)
        .bind(error)
        .execute(pool)
        .await?;
    Ok(())
}

/// Open alerts by severity, every severity present (0 when none), for `payout_open_alerts`.
pub async fn open_by_severity(pool: &PgPool) -> Result<Vec<(Severity, i64)>, sqlx::Error> {
    let counts: Vec<(String, i64)> =
        sqlx::query_as("SELECT severity, count(*) FROM alerts WHERE acknowledged_at IS NULL GROUP BY severity").fetch_all(pool).await?;
    Ok(Severity::ALL.iter().map(|s| (*s, counts.iter().find(|(name, _)| name == s.as_str()).map_or(0, |(_, n)| *n))).collect())
}
