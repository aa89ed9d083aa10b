//! The `unroutable_ipns` table: correctly signed IPNs whose order id names a client that does not
//! exist (yet). The webhook still answers 422, but keeps the IPN and raises an alert instead of
//! dropping NOWPayments' word that money arrived; `starter payment route` moves it into
//! `payments` once the client exists.

use super::alerts::{self, AlertKind, NewAlert};
use super::payments::IncomingIpn;
use chrono::{DateTime, Utc};
use sqlx::{PgPool, Postgres, Transaction};

/// A kept IPN, as routing and operators see it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UnroutableIpn {
    pub payment_id: i64,
    pub client_id: String,
    pub payment_status: String,
    pub raw_ipn: String,
    pub ipn_count: i32,
    pub received_at: DateTime<Utc>,
    pub routed_at: Option<DateTime<Utc>>,
}

const SELECT: &str = "SELECT payment_id, client_id, payment_status, raw_ipn, ipn_count, received_at, routed_at
                      FROM unroutable_ipns WHERE payment_id = $1";

fn alert_key(payment_id: i64) -> String {
    format!("unroutable_ipn:{payment_id}")
}

/// Keeps the IPN (a later one for the same payment replaces it by the same status order as in
/// `payments`) and raises one alert per payment, in one transaction.
pub async fn keep(pool: &PgPool, ipn: &IncomingIpn) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query(
        "INSERT INTO unroutable_ipns (payment_id, client_id, payment_status, raw_ipn)
         VALUES ($1, $2, $3, $4)
         ON CONFLICT (payment_id) DO UPDATE SET
             client_id      = CASE WHEN ipn_status_stays(unroutable_ipns.payment_status, EXCLUDED.payment_status) THEN unroutable_ipns.client_id ELSE EXCLUDED.client_id END,
             raw_ipn        = CASE WHEN ipn_status_stays(unroutable_ipns.payment_status, EXCLUDED.payment_status) THEN unroutable_ipns.raw_ipn ELSE EXCLUDED.raw_ipn END,
             payment_status = CASE WHEN ipn_status_stays(unroutable_ipns.payment_status, EXCLUDED.payment_status) THEN unroutable_ipns.payment_status ELSE EXCLUDED.payment_status END,
             ipn_count      = unroutable_ipns.ipn_count + 1,
             updated_at     = now()",
    )
    .bind(ipn.payment_id)
    .bind(&ipn.client_id)
    .bind(&ipn.payment_status)
    .bind(&ipn.raw_body)
    .execute(&mut *tx)
    .await?;
    let message = format!(
        "a signed IPN for payment {} names client '{}', which does not exist; once the channel's owner has \
         registered it through Telegram, check the payment is theirs and run `starter payment route {} --operator <you>`",
        ipn.payment_id, ipn.client_id, ipn.payment_id
    );
    let alert = NewAlert {
        dedupe_key: alert_key(ipn.payment_id),
        kind: AlertKind::UnroutableIpn,
        subject: ipn.payment_id.to_string(),
        message: &message,
    };
    alerts::raise(&mut tx, &alert).await?;
    tx.commit().await
}

pub async fn find(pool: &PgPool, payment_id: i64) -> Result<Option<UnroutableIpn>, sqlx::Error> {
    sqlx::query_as(SELECT).bind(payment_id).fetch_optional(pool).await
}
/// The kept IPN, locked until `tx` ends, so two routings of one payment run one after the other.
pub async fn lock(tx: &mut Transaction<'_, Postgres>, payment_id: i64) -> Result<Option<UnroutableIpn>, sqlx::Error> {
    sqlx::query_as(&format!("{SELECT} FOR UPDATE")).bind(payment_id).fetch_optional(&mut **tx).await
}

/// Records that the IPN is in `payments` now, and settles its alert; in the routing's transaction.
pub async fn mark_routed(tx: &mut Transaction<'_, Postgres>, payment_id: i64, routed_by: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE unroutable_ipns SET routed_at = now(), routed_by = $2, updated_at = now() WHERE payment_id = $1 AND routed_at IS NULL",
    )
    .bind(payment_id)
    .bind(routed_by)
    .execute(&mut **tx)
    .await?;
    alerts::settle(tx, &alert_key(payment_id)).await
}
