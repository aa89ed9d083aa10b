//! `db.*` activities of `PaymentWorkflow`. Each is one Postgres transaction, idempotent on the
//! payment id: run twice, it leaves the same rows as run once.
//!
//! Retryable: every database error (Postgres away, serialization failure).
//! Non-retryable: the payment is unknown, not `finished`, or in a state the step cannot leave.

use super::payments::PAYABLE_IPN_STATUS;
use rust_decimal::Decimal;
use sqlx::{PgPool, Postgres, Row, Transaction};
use std::sync::Arc;
use temporalio_common::error::ApplicationFailure;
use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};
use tracing::info;
use workflows::{
    activity_definitions::{
        BeginPaymentProcessing, ClientPayoutProfile, PaymentForProcessing, RecordInstantPayoutHandoff, RecordThresholdAccumulation,
        RoutedPayment, RoutingReceipt,
    },
    domain::{PaymentStatus, UnknownVariant},
};

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("payment {0} is not stored")]
    UnknownPayment(i64),
    #[error("payment {payment_id} has NOWPayments status '{status}'; only '{PAYABLE_IPN_STATUS}' payments are paid out")]
    NotPayable { payment_id: i64, status: String },
    #[error("payment {payment_id} is '{from}' and cannot move to '{to}'")]
    InvalidTransition { payment_id: i64, from: String, to: PaymentStatus },
    #[error("stored value is unreadable: {0}")]
    Corrupt(#[from] UnknownVariant),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

impl LedgerError {
    /// Only the database being away (or busy) is worth another attempt. Data exceptions
    /// (SQLSTATE class 22) and integrity violations (class 23) would fail the same way forever.
    pub fn is_retryable(&self) -> bool {
        match self {
            LedgerError::Database(sqlx::Error::Database(db)) => {
                !matches!(db.code().as_deref().map(|c| &c[..2.min(c.len())]), Some("22" | "23"))
            }
            LedgerError::Database(_) => true,
            _ => false,
        }
    }

    pub(crate) fn into_activity_error(self) -> ActivityError {
        ActivityError::application(if self.is_retryable() {
            ApplicationFailure::new(self)
        } else {
            ApplicationFailure::non_retryable(self)
        })
    }
}

pub struct PaymentLedgerActivities {
    pool: PgPool,
}

impl PaymentLedgerActivities {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

#[activities]
impl PaymentLedgerActivities {
    #[activity(definition = BeginPaymentProcessing)]
    pub async fn begin_payment_processing(
        self: Arc<Self>,
        _ctx: ActivityContext,
        payment_id: i64,
    ) -> Result<PaymentForProcessing, ActivityError> {
        begin_payment_processing(&self.pool, payment_id).await.map_err(LedgerError::into_activity_error)
    }

    #[activity(definition = RecordThresholdAccumulation)]
    pub async fn record_threshold_accumulation(
        self: Arc<Self>,
        _ctx: ActivityContext,
        routed: RoutedPayment,
    ) -> Result<RoutingReceipt, ActivityError> {
        record_threshold_accumulation(&self.pool, &routed).await.map_err(LedgerError::into_activity_error)
    }

    #[activity(definition = RecordInstantPayoutHandoff)]
    pub async fn record_instant_payout_handoff(
        self: Arc<Self>,
        _ctx: ActivityContext,
        routed: RoutedPayment,
    ) -> Result<RoutingReceipt, ActivityError> {
        record_instant_payout_handoff(&self.pool, &routed).await.map_err(LedgerError::into_activity_error)
    }
}

async fn begin_payment_processing(pool: &PgPool, payment_id: i64) -> Result<PaymentForProcessing, LedgerError> {
    let mut tx = pool.begin().await?;
    // A replayed workflow task may run this after routing: later states are left alone.
    sqlx::query(
        "UPDATE payments SET status = $2, updated_at = now()
         WHERE payment_id = $1 AND status = $3 AND payment_status = $4",
    )
    .bind(payment_id)
    .bind(PaymentStatus::Processing.as_str())
    .bind(PaymentStatus::Received.as_str())
    .bind(PAYABLE_IPN_STATUS)
    .execute(&mut *tx)
    .await?;
    let payment = payment_for_processing(&mut tx, payment_id).await?;
    tx.commit().await?;
    Ok(payment)
}

/// The payment with its client's payout settings, once it is `finished` at NOWPayments (as
/// stored: verified, or from the IPN for runs that predate verification).
pub(crate) async fn payment_for_processing(
    tx: &mut Transaction<'_, Postgres>,
    payment_id: i64,
) -> Result<PaymentForProcessing, LedgerError> {
    let row = sqlx::query(
        "SELECT p.payment_id, p.client_id, p.user_id, p.payment_status, p.status, p.price_amount,
                p.price_currency, p.outcome_amount, p.outcome_currency,
                c.payout_strategy, c.wallet_address, c.payout_currency, c.payout_network,
                c.payout_threshold_usd
         FROM payments p JOIN clients c USING (client_id)
         WHERE p.payment_id = $1",
    )
    .bind(payment_id)
    .fetch_optional(&mut **tx)
    .await?
    .ok_or(LedgerError::UnknownPayment(payment_id))?;

    let payment_status: String = row.try_get("payment_status")?;
    if payment_status != PAYABLE_IPN_STATUS {
        return Err(LedgerError::NotPayable { payment_id, status: payment_status });
    }
    let strategy: String = row.try_get("payout_strategy")?;
    let status: String = row.try_get("status")?;
    info!(payment_id, status, "payment taken for processing");
    Ok(PaymentForProcessing {
        payment_id,
        client_id: row.try_get("client_id")?,
        user_id: row.try_get("user_id")?,
        status: status.parse()?,
        price_amount: row.try_get::<Decimal, _>("price_amount")?.normalize(),
        price_currency: row.try_get("price_currency")?,
        outcome_amount: row.try_get::<Option<Decimal>, _>("outcome_amount")?.map(|d| d.normalize()),
        outcome_currency: row.try_get("outcome_currency")?,
        client: ClientPayoutProfile {
            strategy: strategy.parse()?,
            wallet_address: row.try_get("wallet_address")?,
            payout_currency: row.try_get("payout_currency")?,
            payout_network: row.try_get("payout_network")?,
            threshold_usd: row.try_get("payout_threshold_usd")?,
        },
    })
}

async fn record_threshold_accumulation(pool: &PgPool, routed: &RoutedPayment) -> Result<RoutingReceipt, LedgerError> {
    let mut tx = pool.begin().await?;
    let target = PaymentStatus::Accumulated;
    record_fee_and_status(&mut tx, routed, target).await?;
    // ON CONFLICT: a second run finds the row the first one made; the unique payment id is the
    // guarantee that a payment's net amount lands in exactly one row.
    sqlx::query(
        "INSERT INTO payout_accumulation
             (nowpayments_payment_id, client_id, user_id, payment_amount_usd, payment_currency,
              payment_timestamp, fee_amount_usd, net_amount_usd, accumulated_eth,
              client_wallet_address, client_payout_currency, client_payout_network)
         SELECT payment_id, client_id, user_id, $2, price_currency, received_at, $3, $4, $5, $6, $7, $8
         FROM payments WHERE payment_id = $1
         ON CONFLICT (nowpayments_payment_id) DO NOTHING",
    )
    .bind(routed.payment_id)
    .bind(routed.fee.gross_usd)
    .bind(routed.fee.fee_usd)
    .bind(routed.fee.net_usd)
    .bind(routed.fee.net_eth)
    .bind(&routed.client.wallet_address)
    .bind(&routed.client.payout_currency)
    .bind(&routed.client.payout_network)
    .execute(&mut *tx)
    .await?;
    let accumulation_id: i64 = sqlx::query_scalar("SELECT id FROM payout_accumulation WHERE nowpayments_payment_id = $1")
        .bind(routed.payment_id)
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await?;
    info!(payment_id = routed.payment_id, accumulation_id, net_usd = %routed.fee.net_usd, "payment accumulated");
    Ok(RoutingReceipt { payment_id: routed.payment_id, status: target, accumulation_id: Some(accumulation_id) })
}

async fn record_instant_payout_handoff(pool: &PgPool, routed: &RoutedPayment) -> Result<RoutingReceipt, LedgerError> {
    let mut tx = pool.begin().await?;
    let target = PaymentStatus::AwaitingInstantPayout;
    record_fee_and_status(&mut tx, routed, target).await?;
    tx.commit().await?;
    info!(payment_id = routed.payment_id, net_eth = %routed.fee.net_eth, "payment awaits instant payout");
    Ok(RoutingReceipt { payment_id: routed.payment_id, status: target, accumulation_id: None })
}

/// `processing -> target`, storing the fee split; a repeat of the same step is a no-op.
async fn record_fee_and_status(
    tx: &mut Transaction<'_, Postgres>,
    routed: &RoutedPayment,
    target: PaymentStatus,
) -> Result<(), LedgerError> {
    let current: Option<String> = sqlx::query_scalar("SELECT status FROM payments WHERE payment_id = $1 FOR UPDATE")
        .bind(routed.payment_id)
        .fetch_optional(&mut **tx)
        .await?;
    let current = current.ok_or(LedgerError::UnknownPayment(routed.payment_id))?;
    let from: PaymentStatus = current.parse()?;
    if from == target {
        return Ok(());
    }
    if !from.can_move_to(target) {
        return Err(LedgerError::InvalidTransition { payment_id: routed.payment_id, from: current, to: target });
    }
    let fee = &routed.fee;
    sqlx::query(
        "UPDATE payments SET status = $2, fee_percent = $3, fee_amount_usd = $4, net_amount_usd = $5,
                fee_amount_eth = $6, net_amount_eth = $7, processed_at = now(), updated_at = now()
         WHERE payment_id = $1",
    )
    .bind(routed.payment_id)
    .bind(target.as_str())
    .bind(fee.fee_percent)
    .bind(fee.fee_usd)
    .bind(fee.net_usd)
    .bind(fee.fee_eth)
    .bind(fee.net_eth)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
