//! The `payments` table: every IPN NOWPayments sends, stored before anything else happens.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use sqlx::{PgExecutor, PgPool, Row};

/// The only NOWPayments status that is paid out.
pub const PAYABLE_IPN_STATUS: &str = "finished";

/// A verified, parsed IPN ready to be stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingIpn {
    pub payment_id: i64,
    pub order_id: String,
    pub user_id: i64,
    pub client_id: String,
    pub payment_status: String,
    pub price_amount: Decimal,
    pub price_currency: String,
    pub pay_amount: Option<Decimal>,
    pub actually_paid: Option<Decimal>,
    pub pay_currency: Option<String>,
    pub outcome_amount: Option<Decimal>,
    pub outcome_currency: Option<String>,
    pub raw_body: String,
}

/// What storing an IPN did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredIpn {
    /// First IPN for this payment.
    pub is_new: bool,
    /// The payment's NOWPayments status after this IPN (by the order of the SQL function
    /// `ipn_status_stays`: `finished` and `refunded` are never overwritten).
    pub payment_status: String,
    /// Temporal has already accepted this payment's workflow.
    pub workflow_started: bool,
}

impl StoredIpn {
    pub fn needs_workflow(&self) -> bool {
        self.payment_status == PAYABLE_IPN_STATUS && !self.workflow_started
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreIpnError {
    #[error("unknown client '{0}'")]
    UnknownClient(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Inserts the IPN, or records a later IPN for the same payment. Whether the later IPN's status
/// and amounts replace the stored ones is the SQL function `ipn_status_stays` (migration
/// 000007): `finished` and `refunded` stay whatever comes after; `failed` and `expired` give way
/// only to those two (money that arrived late is paid); a late or replayed `confirming` can never
/// undo a `finished`.
/// The client must exist (one round trip: the foreign key says so). `db` is a pool or a
/// transaction (routing an unroutable IPN stores it in the transaction that marks it routed).
pub async fn store_ipn<'e>(db: impl PgExecutor<'e>, ipn: &IncomingIpn) -> Result<StoredIpn, StoreIpnError> {
    let row = sqlx::query(
        "INSERT INTO payments (payment_id, order_id, user_id, client_id, payment_status,
                               price_amount, price_currency, pay_amount, actually_paid, pay_currency,
                               outcome_amount, outcome_currency, raw_ipn)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
         ON CONFLICT (payment_id) DO UPDATE SET
             payment_status   = CASE WHEN ipn_status_stays(payments.payment_status, EXCLUDED.payment_status) THEN payments.payment_status ELSE EXCLUDED.payment_status END,
             pay_amount       = CASE WHEN ipn_status_stays(payments.payment_status, EXCLUDED.payment_status) THEN payments.pay_amount ELSE EXCLUDED.pay_amount END,
             actually_paid    = CASE WHEN ipn_status_stays(payments.payment_status, EXCLUDED.payment_status) THEN payments.actually_paid ELSE EXCLUDED.actually_paid END,
             pay_currency     = CASE WHEN ipn_status_stays(payments.payment_status, EXCLUDED.payment_status) THEN payments.pay_currency ELSE EXCLUDED.pay_currency END,
             outcome_amount   = CASE WHEN ipn_status_stays(payments.payment_status, EXCLUDED.payment_status) THEN payments.outcome_amount ELSE EXCLUDED.outcome_amount END,
             outcome_currency = CASE WHEN ipn_status_stays(payments.payment_status, EXCLUDED.payment_status) THEN payments.outcome_currency ELSE EXCLUDED.outcome_currency END,
             raw_ipn          = CASE WHEN ipn_status_stays(payments.payment_status, EXCLUDED.payment_status) THEN payments.raw_ipn ELSE EXCLUDED.raw_ipn END,
             ipn_count        = payments.ipn_count + 1,
             updated_at       = now()
         RETURNING (xmax = 0) AS is_new, payment_status, workflow_started_at IS NOT NULL AS workflow_started",
    )
    .bind(ipn.payment_id)
    .bind(&ipn.order_id)
    .bind(ipn.user_id)
    .bind(&ipn.client_id)
    .bind(&ipn.payment_status)
    .bind(ipn.price_amount)
    .bind(&ipn.price_currency)
    .bind(ipn.pay_amount)
    .bind(ipn.actually_paid)
    .bind(&ipn.pay_currency)
    .bind(ipn.outcome_amount)
    .bind(&ipn.outcome_currency)
    .bind(&ipn.raw_body)
    .fetch_one(db)
    .await
    .map_err(|e| match &e {
        sqlx::Error::Database(db) if db.constraint() == Some("payments_client_id_fkey") => {
            StoreIpnError::UnknownClient(ipn.client_id.clone())
        }
        _ => StoreIpnError::Database(e),
    })?;
    Ok(StoredIpn {
        is_new: row.try_get("is_new")?,
        payment_status: row.try_get("payment_status")?,
        workflow_started: row.try_get("workflow_started")?,
    })
}

/// Records that Temporal accepted the payment's workflow (idempotent).
pub async fn mark_workflow_started(pool: &PgPool, payment_id: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE payments SET workflow_started_at = now()
         WHERE payment_id = $1 AND workflow_started_at IS NULL",
    )
    .bind(payment_id)
    .execute(pool)
    .await?;
    Ok(())
}

/// Finished payments (id, client id) whose workflow Temporal has not yet accepted, oldest first.
/// Payments updated within `settled_for` are left to the webhook's own launch.
pub async fn awaiting_workflow(pool: &PgPool, settled_for: std::time::Duration, limit: i64) -> Result<Vec<(i64, String)>, sqlx::Error> {
    sqlx::query_as(
        // The literal status matches the partial index payments_awaiting_workflow_idx.
        "SELECT payment_id, client_id FROM payments
         WHERE payment_status = 'finished' AND workflow_started_at IS NULL
           AND updated_at < now() - $2 * interval '1 millisecond'
         ORDER BY received_at LIMIT $1",
    )
    .bind(limit)
    .bind(i64::try_from(settled_for.as_millis()).unwrap_or(i64::MAX))
    .fetch_all(pool)
    .await
}

/// A payment as operators see it (`starter payment show`).
#[derive(Debug, Clone)]
pub struct PaymentView {
    pub payment_id: i64,
    pub order_id: String,
    pub user_id: i64,
    pub client_id: String,
    pub payment_status: String,
    pub status: String,
    pub price_amount: Decimal,
    pub price_currency: String,
    pub outcome_amount: Option<Decimal>,
    pub outcome_currency: Option<String>,
    pub fee_percent: Option<Decimal>,
    pub fee_amount_usd: Option<Decimal>,
    pub net_amount_usd: Option<Decimal>,
    pub net_amount_eth: Option<Decimal>,
    pub ipn_count: i32,
    pub workflow_started_at: Option<DateTime<Utc>>,
    pub received_at: DateTime<Utc>,
    pub processed_at: Option<DateTime<Utc>>,
    pub accumulation_id: Option<i64>,
    pub conversion_status: Option<String>,
    /// When NOWPayments' record was read, and why the payment is not paid if it is `unverified`.
    pub verified_at: Option<DateTime<Utc>>,
    pub unverified_reason: Option<String>,
}

pub async fn find(pool: &PgPool, payment_id: i64) -> Result<Option<PaymentView>, sqlx::Error> {
    let Some(row) = sqlx::query(
        "SELECT p.*, a.id AS accumulation_id, a.conversion_status
         FROM payments p LEFT JOIN payout_accumulation a ON a.nowpayments_payment_id = p.payment_id
         WHERE p.payment_id = $1",
    )
    .bind(payment_id)
    .fetch_optional(pool)
    .await?
    else {
        return Ok(None);
    };
    Ok(Some(PaymentView {
        payment_id: row.try_get("payment_id")?,
        order_id: row.try_get("order_id")?,
        user_id: row.try_get("user_id")?,
        client_id: row.try_get("client_id")?,
        payment_status: row.try_get("payment_status")?,
        status: row.try_get("status")?,
        price_amount: row.try_get("price_amount")?,
        price_currency: row.try_get("price_currency")?,
        outcome_amount: row.try_get("outcome_amount")?,
        outcome_currency: row.try_get("outcome_currency")?,
        fee_percent: row.try_get("fee_percent")?,
        fee_amount_usd: row.try_get("fee_amount_usd")?,
        net_amount_usd: row.try_get("net_amount_usd")?,
        net_amount_eth: row.try_get("net_amount_eth")?,
        ipn_count: row.try_get("ipn_count")?,
        workflow_started_at: row.try_get("workflow_started_at")?,
        received_at: row.try_get("received_at")?,
        processed_at: row.try_get("processed_at")?,
        accumulation_id: row.try_get("accumulation_id")?,
        conversion_status: row.try_get("conversion_status")?,
        verified_at: row.try_get("verified_at")?,
        unverified_reason: row.try_get("unverified_reason")?,
    }))
}

/// The latest `limit` payments: (payment id, client id, processing status), newest first.
pub async fn recent(pool: &PgPool, limit: i64) -> Result<Vec<(i64, String, String)>, sqlx::Error> {
    sqlx::query_as("SELECT payment_id, client_id, status FROM payments ORDER BY received_at DESC, payment_id DESC LIMIT $1")
        .bind(limit)
        .fetch_all(pool)
        .await
}
