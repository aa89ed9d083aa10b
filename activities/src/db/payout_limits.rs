//! Limits on what leaves the hot wallet (DESIGN.md, "Trust" -> "Limits"): the approval amount
//! (`settings.payout_approval_above_usd`, see [`payout_approval`]) and the daily limit per client
//! (`settings.client_daily_payout_limit_usd`, from `CLIENT_DAILY_PAYOUT_LIMIT_USD`; absent: off).
//!
//! A payout above the approval amount, or one that would take its client's payouts of the last
//! 24 h above the daily limit, is held `awaiting_approval` with one `payout_awaiting_approval`
//! alert, in the transaction that holds it, and sends nothing until an operator approves it.
//! Instant payouts are gated here ([`gate_instant_payout`]); payout batches in the transaction
//! that claims them ([`hold_batch_if_over`]).
//!
//! What counts towards a day: every payout of the client sent or in flight whose money left, or
//! is cleared to leave, the hot wallet in the last 24 h, instant (its net USD value) and batch
//! (its USDT, taken at one USD). A payout held for approval counts from its approval on; a
//! rejected, refunded or unsent failed one does not count.

use super::{
    alerts::{self, AlertKind, NewAlert},
    payout_approval::{self, PayoutApprovalError},
};
use rust_decimal::Decimal;
use sqlx::{PgPool, Postgres, Row, Transaction};
use std::str::FromStr;
use tracing::{info, warn};
use uuid::Uuid;
use workflows::{activity_definitions::InstantPayoutGate, domain::InstantPayoutStatus};

/// Where the daily limit lives; absent: no daily limit.
pub const DAILY_LIMIT_SETTING: &str = "client_daily_payout_limit_usd";

#[derive(Debug, thiserror::Error)]
pub enum PayoutLimitError {
    #[error("no instant payout is open for payment {0}")]
    UnknownInstantPayout(i64),
    #[error("settings.{DAILY_LIMIT_SETTING} = '{0}' is not an amount; fix CLIENT_DAILY_PAYOUT_LIMIT_USD and restart the worker")]
    BadDailyLimit(String),
    #[error(transparent)]
    Approval(#[from] PayoutApprovalError),
    #[error("stored value is unreadable: {0}")]
    Corrupt(#[from] workflows::domain::UnknownVariant),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

impl PayoutLimitError {
    /// Only the database being away is worth another attempt.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Database(_) | Self::Approval(PayoutApprovalError::Database(_)))
    }
}

/// The dedupe key of the approval alert of one instant payout.
pub fn instant_approval_alert_key(payment_id: i64) -> String {
    format!("instant-payout-awaiting-approval:{payment_id}")
}

/// The daily limit in force, if any.
pub async fn daily_limit<'e>(db: impl sqlx::PgExecutor<'e>) -> Result<Option<Decimal>, PayoutLimitError> {
    let value: Option<String> =
        sqlx::query_scalar("SELECT value FROM settings WHERE key = $1").bind(DAILY_LIMIT_SETTING).fetch_optional(db).await?;
    value.map(|v| Decimal::from_str(v.trim()).map_err(|_| PayoutLimitError::BadDailyLimit(v))).transpose()
}

/// At worker start: stores `CLIENT_DAILY_PAYOUT_LIMIT_USD` the way the approval amount is stored
/// (only when the environment's value changed). Returns whether it applied.
pub async fn apply_configured_daily_limit(pool: &PgPool, configured: Option<Decimal>) -> Result<bool, sqlx::Error> {
    super::settings::apply_configured_amount(pool, DAILY_LIMIT_SETTING, configured).await
}

/// One payout being judged, left out of its own client's sum.
#[derive(Debug, Clone, Copy)]
pub enum ThisPayout {
    Instant(i64),
    Batch(Uuid),
}

/// Why a payout must wait for an operator, if it must.
pub async fn hold_reason(
    tx: &mut Transaction<'_, Postgres>,
    client_id: &str,
    this: ThisPayout,
    usd: Decimal,
) -> Result<Option<String>, PayoutLimitError> {
    if let Some(limit) = payout_approval::approval_amount(&mut **tx).await? {
        if usd > limit {
            return Ok(Some(format!("{usd} USD is above the approval amount of {limit} USD")));
        }
    }
    let Some(limit) = daily_limit(&mut **tx).await? else { return Ok(None) };
    // Two payouts of one client judged at once must see each other: one after the other.
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('client-daily-payouts:' || $1, 0))")
        .bind(client_id)
        .execute(&mut **tx)
        .await?;
    let day = paid_last_24h(tx, client_id, this).await?;
    if day + usd > limit {
        return Ok(Some(format!(
            "{usd} USD would take client {client_id}'s payouts of the last 24 h from {day} to {} USD, above the daily limit of {limit} USD",
            day + usd
        )));
    }
    Ok(None)
}

/// USD of the client's payouts sent or in flight in the last 24 h, but for `this` one.
async fn paid_last_24h(tx: &mut Transaction<'_, Postgres>, client_id: &str, this: ThisPayout) -> Result<Decimal, sqlx::Error> {
    let (payment_id, batch_id) = match this {
        ThisPayout::Instant(payment_id) => (Some(payment_id), None),
        ThisPayout::Batch(batch_id) => (None, Some(batch_id)),
    };
    // `cleared_at`: when an instant payout passed its gate or was approved. Rows from before the
    // gate count once they made their exchange. A failed payout counts when its ETH left.
    let usd: Decimal = sqlx::query_scalar(
        "SELECT
           COALESCE((SELECT sum(p.net_amount_usd) FROM instant_payouts i JOIN payments p USING (payment_id)
                     WHERE i.client_id = $1 AND i.payment_id IS DISTINCT FROM $2
                       AND COALESCE(i.cleared_at, i.created_at) > now() - interval '24 hours'
                       AND (i.status IN ('exchange_created', 'sent', 'completed')
                            OR (i.status = 'pending' AND i.cleared_at IS NOT NULL)
                            OR (i.status = 'failed' AND i.payin_tx_hash IS NOT NULL))), 0)
         + COALESCE((SELECT sum(b.total_amount_usdt) FROM payout_batches b
                     WHERE b.client_id = $1 AND b.batch_id IS DISTINCT FROM $3
                       AND COALESCE(b.approved_at, b.processing_started_at, b.created_at) > now() - interval '24 hours'
                       AND (b.status IN ('pending', 'processing', 'completed') OR (b.status = 'failed' AND NOT b.rows_released))), 0)",
    )
    .bind(client_id)
    .bind(payment_id)
    .bind(batch_id)
    .fetch_one(&mut **tx)
    .await?;
    Ok(usd)
}

/// See `db.gate_instant_payout`: judges the instant payout once, before anything is sent, and
/// holds it `awaiting_approval` (with its alert, in the same transaction) when a limit says so.
/// Asked again (a retried step, a new run of the payout), it answers from the stored state.
pub async fn gate_instant_payout(pool: &PgPool, payment_id: i64) -> Result<InstantPayoutGate, PayoutLimitError> {
    let mut tx = pool.begin().await?;
    let row = sqlx::query(
        "SELECT i.status, i.cleared_at IS NOT NULL AS cleared, i.reason, i.client_id, i.amount_eth, p.net_amount_usd
         FROM instant_payouts i JOIN payments p USING (payment_id)
         WHERE i.payment_id = $1 FOR UPDATE OF i",
    )
    .bind(payment_id)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(PayoutLimitError::UnknownInstantPayout(payment_id))?;
    let status: InstantPayoutStatus = row.try_get::<String, _>("status")?.parse()?;
    let reason: Option<String> = row.try_get("reason")?;
    let reason = || reason.clone().unwrap_or_else(|| "no reason recorded".to_owned());
    match status {
        InstantPayoutStatus::AwaitingApproval => return Ok(InstantPayoutGate::AwaitingApproval { reason: reason() }),
        InstantPayoutStatus::Rejected => return Ok(InstantPayoutGate::Rejected { reason: reason() }),
        InstantPayoutStatus::Pending if !row.try_get::<bool, _>("cleared")? => {}
        // Cleared already, or past the point where the gate applies.
        _ => return Ok(InstantPayoutGate::Clear),
    }
    let client_id: String = row.try_get("client_id")?;
    let amount_eth: Decimal = row.try_get("amount_eth")?;
    let hold = match row.try_get::<Option<Decimal>, _>("net_amount_usd")? {
        Some(usd) => hold_reason(&mut tx, &client_id, ThisPayout::Instant(payment_id), usd).await?,
        // Limits exist to stop what nobody checked: a payout of unknown value waits for someone.
        None => Some(format!("payment {payment_id} has no USD value recorded")),
    };
    let Some(why) = hold else {
        sqlx::query("UPDATE instant_payouts SET cleared_at = now(), updated_at = now() WHERE payment_id = $1")
            .bind(payment_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        info!(payment_id, client_id, "instant payout within the limits");
        return Ok(InstantPayoutGate::Clear);
    };
    sqlx::query("UPDATE instant_payouts SET status = 'awaiting_approval', reason = $2, updated_at = now() WHERE payment_id = $1")
        .bind(payment_id)
        .bind(&why)
        .execute(&mut *tx)
        .await?;
    let message = format!(
        "instant payout of payment {payment_id} ({amount_eth} ETH to client {client_id}) awaits approval: {why}; nothing is sent \
         until an operator approves it (`starter instant-payout approve {payment_id}`, POST /api/v1/instant-payouts/{payment_id}/approve, \
         or the `approve` signal in the Temporal UI) or rejects it (the ETH stays in the hot wallet)"
    );
    let alert = NewAlert {
        dedupe_key: instant_approval_alert_key(payment_id),
        kind: AlertKind::PayoutAwaitingApproval,
        subject: format!("payment {payment_id}"),
        message: &message,
    };
    alerts::raise(&mut tx, &alert).await?;
    tx.commit().await?;
    warn!(payment_id, client_id, eth = %amount_eth, reason = %why, alert = true, "instant payout awaits approval");
    Ok(InstantPayoutGate::AwaitingApproval { reason: why })
}

/// In the claim's transaction: holds the new payout batch `awaiting_approval`, with one alert,
/// when a limit says so. Returns whether it did. The batch's run then waits for `approve` or
/// `reject` (see [`payout_approval`]).
pub async fn hold_batch_if_over(
    tx: &mut Transaction<'_, Postgres>,
    batch_id: Uuid,
    client_id: &str,
    total_usdt: Decimal,
) -> Result<bool, PayoutLimitError> {
    let Some(why) = hold_reason(tx, client_id, ThisPayout::Batch(batch_id), total_usdt).await? else { return Ok(false) };
    sqlx::query("UPDATE payout_batches SET status = 'awaiting_approval' WHERE batch_id = $1").bind(batch_id).execute(&mut **tx).await?;
    let message = format!(
        "payout batch {batch_id} of client {client_id} ({total_usdt} USDT) awaits approval: {why}; nothing is sent until an \
         operator approves it (admin console, `starter batch approve {batch_id}`, or the `approve` signal in the Temporal UI) \
         or rejects it (its rows are then released)"
    );
    let alert = NewAlert {
        dedupe_key: payout_approval::approval_alert_key(batch_id),
        kind: AlertKind::PayoutAwaitingApproval,
        subject: batch_id.to_string(),
        message: &message,
    };
    alerts::raise(tx, &alert).await?;
    warn!(batch_id = %batch_id, client_id, usdt = %total_usdt, reason = %why, alert = true, "payout batch awaits approval");
    Ok(true)
}
