//! `db.begin_verified_payment_processing`: the stored IPN held against NOWPayments' own record,
//! in one transaction with the state it leads to and the alert it calls for.
//!
//! Retryable: every database error. Non-retryable: the payment is not stored.

use super::{
    alerts::{self, AlertKind, NewAlert},
    payment_ledger::{payment_for_processing, LedgerError},
};
use rust_decimal::{Decimal, RoundingStrategy};
use sqlx::{PgPool, Postgres, Row, Transaction};
use std::sync::Arc;
use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};
use tracing::{info, warn};
use workflows::{
    activity_definitions::{BeginVerifiedPaymentProcessing, PaymentVerification, RecordLookup, VerifiedPayment},
    domain::{
        payment_verification::{describe, differences, parse_order_id},
        PaymentFacts, PaymentStatus, RecordProgress, PRICE_CURRENCY, SETTLEMENT_CURRENCY,
    },
};

pub struct PaymentVerificationActivities {
    pool: PgPool,
}

impl PaymentVerificationActivities {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

#[activities]
impl PaymentVerificationActivities {
    #[activity(definition = BeginVerifiedPaymentProcessing)]
    pub async fn begin_verified_payment_processing(
        self: Arc<Self>,
        _ctx: ActivityContext,
        verification: PaymentVerification,
    ) -> Result<VerifiedPayment, ActivityError> {
        begin_verified_payment_processing(&self.pool, &verification).await.map_err(LedgerError::into_activity_error)
    }
}

pub async fn begin_verified_payment_processing(pool: &PgPool, verification: &PaymentVerification) -> Result<VerifiedPayment, LedgerError> {
    let payment_id = verification.payment_id;
    let mut tx = pool.begin().await?;
    let row = sqlx::query(
        "SELECT status, payment_status, order_id, client_id, price_amount, price_currency, outcome_amount,
                outcome_currency, unverified_reason
         FROM payments WHERE payment_id = $1 FOR UPDATE",
    )
    .bind(payment_id)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(LedgerError::UnknownPayment(payment_id))?;
    let status: PaymentStatus = row.try_get::<String, _>("status")?.parse()?;
    match status {
        PaymentStatus::Received => {}
        // A repeat of a step that already decided (a retried attempt, a replayed task).
        PaymentStatus::Unverified => {
            let reason = row.try_get::<Option<String>, _>("unverified_reason")?.unwrap_or_default();
            return Ok(VerifiedPayment::Refused { reason });
        }
        _ => {
            let payment = payment_for_processing(&mut tx, payment_id).await?;
            tx.commit().await?;
            return Ok(VerifiedPayment::Confirmed(payment));
        }
    }
    let ipn = PaymentFacts {
        payment_id,
        payment_status: row.try_get("payment_status")?,
        order_id: row.try_get("order_id")?,
        price_amount: row.try_get::<Decimal, _>("price_amount")?,
        price_currency: row.try_get("price_currency")?,
        outcome_amount: row.try_get("outcome_amount")?,
        outcome_currency: row.try_get("outcome_currency")?,
    };
    let ipn_client: String = row.try_get("client_id")?;

    let as_stored;
    let record = match &verification.lookup {
        RecordLookup::Found(record) => {
            as_stored = rounded_as_stored(record);
            &as_stored
        }
        RecordLookup::Unknown => {
            let reason = format!(
                "NOWPayments does not know payment {payment_id} (its API answered 404), yet a correctly signed IPN \
                 claimed {} {} for client {ipn_client}. Nothing was paid. The IPN secret may have leaked: rotate \
                 NOWPAYMENTS_IPN_SECRET; see `starter payment show {payment_id}`.",
                ipn.price_amount.normalize(),
                ipn.price_currency
            );
            return refuse(tx, payment_id, AlertKind::PaymentUnverified, &reason, None).await;
        }
        RecordLookup::Unreadable(why) => {
            let reason = format!(
                "NOWPayments' answer for payment {payment_id} is not its record ({why}). Nothing was paid; \
                 see `starter payment show {payment_id}`."
            );
            return refuse(tx, payment_id, AlertKind::PaymentUnverified, &reason, None).await;
        }
    };

    let found = differences(&ipn, record);
    match RecordProgress::of(&record.payment_status) {
        RecordProgress::Finished => {}
        RecordProgress::InProgress if !verification.stop_waiting => {
            tx.commit().await?;
            info!(payment_id, payment_status = %record.payment_status, "NOWPayments' record still in progress; asking again later");
            return Ok(VerifiedPayment::StillInProgress { payment_status: record.payment_status.clone() });
        }
        RecordProgress::InProgress | RecordProgress::NotPaid => {
            let reason = format!(
                "payment {payment_id}: the IPN said '{}', NOWPayments' record says '{}'. Only payments NOWPayments \
                 reports finished are paid; nothing was paid. See `starter payment show {payment_id}`.",
                ipn.payment_status, record.payment_status
            );
            return refuse(tx, payment_id, AlertKind::PaymentMismatch, &reason, Some(record)).await;
        }
    }
    let payable_outcome = record.outcome_currency.as_deref() == Some(SETTLEMENT_CURRENCY)
        && record.outcome_amount.is_some_and(|amount| amount > Decimal::ZERO);
    let sane_price = !record.price_amount.is_sign_negative() && record.price_amount < Decimal::from(10_000_000_000_000_i64);
    if record.price_currency != PRICE_CURRENCY || !payable_outcome || !sane_price {
        let reason = format!(
            "payment {payment_id}: NOWPayments' record is priced {} {} and settled {} {}; the engine pays only \
             payments priced in {PRICE_CURRENCY} and settled in {SETTLEMENT_CURRENCY}. Nothing was paid. See \
             `starter payment show {payment_id}`.",
            record.price_amount,
            record.price_currency,
            record.outcome_amount.map(|a| a.to_string()).unwrap_or_else(|| "nothing".into()),
            record.outcome_currency.as_deref().unwrap_or("-"),
        );
        return refuse(tx, payment_id, AlertKind::PaymentUnverified, &reason, Some(record)).await;
    }
    let (user_id, client_id) = match parse_order_id(&record.order_id) {
        Ok(order) => order,
        Err(why) => {
            let reason = format!("payment {payment_id}: NOWPayments' order id {why}. Nothing was paid.");
            return refuse(tx, payment_id, AlertKind::PaymentMismatch, &reason, Some(record)).await;
        }
    };
    if client_id != ipn_client {
        let registered: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM clients WHERE client_id = $1)").bind(&client_id).fetch_one(&mut *tx).await?;
        if !registered {
            let reason = format!(
                "payment {payment_id}: NOWPayments says it pays client {client_id}, which is not registered; the IPN \
                 named {ipn_client}. Nothing was paid. See `starter payment show {payment_id}`."
            );
            return refuse(tx, payment_id, AlertKind::PaymentMismatch, &reason, Some(record)).await;
        }
    }

    sqlx::query(
        "UPDATE payments SET status = $2, payment_status = $3, order_id = $4, user_id = $5, client_id = $6,
                price_amount = $7, price_currency = $8, outcome_amount = $9, outcome_currency = $10,
                nowpayments_record = $11, verified_at = now(), updated_at = now()
         WHERE payment_id = $1",
    )
    .bind(payment_id)
    .bind(PaymentStatus::Processing.as_str())
    .bind(&record.payment_status)
    .bind(&record.order_id)
    .bind(user_id)
    .bind(&client_id)
    .bind(record.price_amount)
    .bind(&record.price_currency)
    .bind(record.outcome_amount)
    .bind(&record.outcome_currency)
    .bind(sqlx::types::Json(record))
    .execute(&mut *tx)
    .await?;
    if !found.is_empty() {
        let message = format!(
            "payment {payment_id} (client {client_id}): NOWPayments' record differs from the signed IPN ({}). The \
             record's facts are used; the IPN secret may have leaked. See `starter payment show {payment_id}`.",
            describe(&found)
        );
        warn!(payment_id, alert = true, differences = %describe(&found), "IPN differs from NOWPayments' record");
        alerts::raise(
            &mut tx,
            &NewAlert {
                dedupe_key: format!("payment_mismatch:{payment_id}"),
                kind: AlertKind::PaymentMismatch,
                subject: format!("payment {payment_id}"),
                message: &message,
            },
        )
        .await?;
    }
    let payment = payment_for_processing(&mut tx, payment_id).await?;
    tx.commit().await?;
    info!(payment_id, client_id = %payment.client_id, "payment confirmed by NOWPayments");
    Ok(VerifiedPayment::Confirmed(payment))
}

/// The record at the scale the `payments` columns keep (price 8 decimals, outcome 18), rounded as
/// Postgres rounds (half away from zero): the stored IPN went through the same rounding, so equal
/// facts compare equal.
fn rounded_as_stored(record: &PaymentFacts) -> PaymentFacts {
    let round = |d: Decimal, dp: u32| d.round_dp_with_strategy(dp, RoundingStrategy::MidpointAwayFromZero).normalize();
    PaymentFacts {
        price_amount: round(record.price_amount, 8),
        outcome_amount: record.outcome_amount.map(|d| round(d, 18)),
        ..record.clone()
    }
}

/// `received -> unverified` with the reason and its alert, in one transaction.
async fn refuse(
    mut tx: Transaction<'_, Postgres>,
    payment_id: i64,
    kind: AlertKind,
    reason: &str,
    record: Option<&PaymentFacts>,
) -> Result<VerifiedPayment, LedgerError> {
    sqlx::query(
        "UPDATE payments SET status = $2, unverified_reason = $3, nowpayments_record = $4, verified_at = now(),
                updated_at = now()
         WHERE payment_id = $1",
    )
    .bind(payment_id)
    .bind(PaymentStatus::Unverified.as_str())
    .bind(reason)
    .bind(record.map(sqlx::types::Json))
    .execute(&mut *tx)
    .await?;
    // A condition rather than an event: an operator's `starter payment verify` settles it, and a
    // new refusal after that raises a new alert.
    alerts::raise_unless_open(
        &mut tx,
        &NewAlert {
            dedupe_key: format!("{}:{payment_id}", kind.as_str()),
            kind,
            subject: format!("payment {payment_id}"),
            message: reason,
        },
    )
    .await?;
    tx.commit().await?;
    warn!(payment_id, alert = true, kind = kind.as_str(), reason, "payment not confirmed by NOWPayments; not paid");
    Ok(VerifiedPayment::Refused { reason: reason.to_owned() })
}
