//! `db.*` activities of `InstantPayoutWorkflow`: the `instant_payouts` row and its state
//! machine ([`InstantPayoutStatus`]), and its limits gate ([`payout_limits`](super::payout_limits)).
//! Each is one transaction, idempotent on the payment id.
//!
//! Retryable: the database away. Non-retryable: an unknown payment, a forbidden transition.

use super::{
    alerts::{self, AlertKind, NewAlert},
    payout_limits,
};
use rust_decimal::Decimal;
use sqlx::{PgPool, Row};
use std::sync::Arc;
use temporalio_common::error::ApplicationFailure;
use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};
use tracing::{error, info, warn};
use workflows::{
    activity_definitions::{
        GateInstantPayout, InstantPayoutGate, InstantPayoutOpening, InstantPayoutStep, InstantPayoutTransition, OpenInstantPayout,
        RecordInstantPayoutStep,
    },
    domain::{InstantPayoutStatus, UnknownVariant},
};

#[derive(Debug, thiserror::Error)]
pub enum InstantPayoutLedgerError {
    #[error("no instant payout is open for payment {0}")]
    Unknown(i64),
    #[error("instant payout of payment {payment_id} is '{from}' and cannot move to '{to}'")]
    InvalidTransition { payment_id: i64, from: &'static str, to: &'static str },
    #[error("stored value is unreadable: {0}")]
    Corrupt(#[from] UnknownVariant),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

impl InstantPayoutLedgerError {
    fn into_activity_error(self) -> ActivityError {
        ActivityError::application(match self {
            Self::Database(_) => ApplicationFailure::new(self),
            _ => ApplicationFailure::non_retryable(self),
        })
    }
}

pub struct InstantPayoutLedgerActivities {
    pool: PgPool,
}

impl InstantPayoutLedgerActivities {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

#[activities]
impl InstantPayoutLedgerActivities {
    #[activity(definition = OpenInstantPayout)]
    pub async fn open_instant_payout(
        self: Arc<Self>,
        _ctx: ActivityContext,
        opening: InstantPayoutOpening,
    ) -> Result<InstantPayoutStatus, ActivityError> {
        open(&self.pool, &opening).await.map_err(InstantPayoutLedgerError::into_activity_error)
    }

    #[activity(definition = GateInstantPayout)]
    pub async fn gate_instant_payout(self: Arc<Self>, _ctx: ActivityContext, payment_id: i64) -> Result<InstantPayoutGate, ActivityError> {
        payout_limits::gate_instant_payout(&self.pool, payment_id).await.map_err(|e| {
            let retryable = e.is_retryable();
            ActivityError::application(if retryable { ApplicationFailure::new(e) } else { ApplicationFailure::non_retryable(e) })
        })
    }

    #[activity(definition = RecordInstantPayoutStep)]
    pub async fn record_instant_payout_step(
        self: Arc<Self>,
        _ctx: ActivityContext,
        transition: InstantPayoutTransition,
    ) -> Result<InstantPayoutStatus, ActivityError> {
        apply(&self.pool, &transition).await.map_err(InstantPayoutLedgerError::into_activity_error)
    }
}

async fn open(pool: &PgPool, opening: &InstantPayoutOpening) -> Result<InstantPayoutStatus, InstantPayoutLedgerError> {
    sqlx::query(
        "INSERT INTO instant_payouts (payment_id, client_id, amount_eth, payout_currency, payout_network, wallet_address)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (payment_id) DO NOTHING",
    )
    .bind(opening.payment_id)
    .bind(&opening.client_id)
    .bind(opening.amount_eth)
    .bind(&opening.client.payout_currency)
    .bind(&opening.client.payout_network)
    .bind(&opening.client.wallet_address)
    .execute(pool)
    .await?;
    let status: String =
        sqlx::query_scalar("SELECT status FROM instant_payouts WHERE payment_id = $1").bind(opening.payment_id).fetch_one(pool).await?;
    Ok(status.parse()?)
}

async fn apply(pool: &PgPool, transition: &InstantPayoutTransition) -> Result<InstantPayoutStatus, InstantPayoutLedgerError> {
    let payment_id = transition.payment_id;
    let target = transition.step.target();
    let mut tx = pool.begin().await?;
    let current: Option<String> = sqlx::query_scalar("SELECT status FROM instant_payouts WHERE payment_id = $1 FOR UPDATE")
        .bind(payment_id)
        .fetch_optional(&mut *tx)
        .await?;
    let current: InstantPayoutStatus = current.ok_or(InstantPayoutLedgerError::Unknown(payment_id))?.parse()?;
    if current == target {
        return Ok(current);
    }
    if !current.can_move_to(target) {
        return Err(InstantPayoutLedgerError::InvalidTransition { payment_id, from: current.as_str(), to: target.as_str() });
    }
    let columns = StepColumns::of(&transition.step);
    // COALESCE keeps what earlier steps recorded.
    sqlx::query(
        "UPDATE instant_payouts SET status = $2,
                exchange_id = COALESCE($3, exchange_id), payin_tx_hash = COALESCE($4, payin_tx_hash),
                amount_received = COALESCE($5, amount_received), payout_hash = COALESCE($6, payout_hash),
                refund_hash = COALESCE($7, refund_hash), refund_amount = COALESCE($8, refund_amount),
                reason = COALESCE($9, reason), updated_at = now()
         WHERE payment_id = $1",
    )
    .bind(payment_id)
    .bind(target.as_str())
    .bind(columns.exchange_id)
    .bind(columns.payin_tx_hash)
    .bind(columns.amount_received)
    .bind(columns.payout_hash)
    .bind(columns.refund_hash)
    .bind(columns.refund_amount)
    .bind(columns.reason)
    .execute(&mut *tx)
    .await?;
    if matches!(transition.step, InstantPayoutStep::Approved) {
        // Cleared: it counts towards the client's day from now on, and is never held again.
        sqlx::query("UPDATE instant_payouts SET approved_at = now(), cleared_at = now() WHERE payment_id = $1")
            .bind(payment_id)
            .execute(&mut *tx)
            .await?;
    }
    if matches!(transition.step, InstantPayoutStep::Approved | InstantPayoutStep::Rejected { .. }) {
        alerts::settle(&mut tx, &payout_limits::instant_approval_alert_key(payment_id)).await?;
    }
    if matches!(target, InstantPayoutStatus::Held | InstantPayoutStatus::Failed | InstantPayoutStatus::Refunded) {
        let message = format!("instant payout {}: {}", target.as_str(), columns.reason.unwrap_or("no reason recorded"));
        let alert = NewAlert {
            dedupe_key: format!("instant-payout-{payment_id}-{}", target.as_str()),
            kind: AlertKind::InstantPayoutStopped,
            subject: format!("payment {payment_id}"),
            message: &message,
        };
        alerts::raise(&mut tx, &alert).await?;
    }
    tx.commit().await?;
    match target {
        InstantPayoutStatus::Held => warn!(payment_id, reason = columns.reason, alert = true, "instant payout held for an operator"),
        InstantPayoutStatus::Failed | InstantPayoutStatus::Refunded => {
            error!(payment_id, status = target.as_str(), reason = columns.reason, alert = true, "instant payout did not complete")
        }
        InstantPayoutStatus::Rejected => info!(payment_id, reason = columns.reason, "instant payout rejected; nothing is sent"),
        _ if matches!(transition.step, InstantPayoutStep::Approved) => info!(payment_id, "instant payout approved"),
        _ => info!(payment_id, status = target.as_str(), "instant payout advanced"),
    }
    Ok(target)
}

/// The columns one step fills in; the others keep their stored values.
#[derive(Default)]
struct StepColumns<'a> {
    exchange_id: Option<&'a str>,
    payin_tx_hash: Option<&'a str>,
    amount_received: Option<Decimal>,
    payout_hash: Option<&'a str>,
    refund_hash: Option<&'a str>,
    refund_amount: Option<Decimal>,
    reason: Option<&'a str>,
}

impl<'a> StepColumns<'a> {
    fn of(step: &'a InstantPayoutStep) -> Self {
        match step {
            InstantPayoutStep::ExchangeCreated { exchange_id } => Self { exchange_id: Some(exchange_id), ..Self::default() },
            InstantPayoutStep::Sent { payin_tx_hash } => Self { payin_tx_hash: Some(payin_tx_hash), ..Self::default() },
            InstantPayoutStep::Completed { amount_received, payout_hash } => {
                Self { amount_received: Some(*amount_received), payout_hash: payout_hash.as_deref(), ..Self::default() }
            }
            InstantPayoutStep::Held { reason } | InstantPayoutStep::Failed { reason } | InstantPayoutStep::Rejected { reason } => {
                Self { reason: Some(reason), ..Self::default() }
            }
            InstantPayoutStep::Approved => Self::default(),
            InstantPayoutStep::Refunded { reason, refund_hash, refund_amount } => {
                Self { refund_hash: refund_hash.as_deref(), refund_amount: *refund_amount, reason: Some(reason), ..Self::default() }
            }
        }
    }
}

/// An instant payout as operators act on it, with what a new run of it starts from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstantPayoutSummary {
    pub payment_id: i64,
    pub client_id: String,
    pub status: String,
    pub amount_eth: Decimal,
    pub payout_currency: String,
    pub payout_network: String,
    pub wallet_address: String,
    pub threshold_usd: Decimal,
    pub reason: Option<String>,
}

pub async fn find(pool: &PgPool, payment_id: i64) -> Result<Option<InstantPayoutSummary>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT i.payment_id, i.client_id, i.status, i.amount_eth, i.payout_currency, i.payout_network, i.wallet_address,
                i.reason, c.payout_threshold_usd
         FROM instant_payouts i JOIN clients c USING (client_id) WHERE i.payment_id = $1",
    )
    .bind(payment_id)
    .fetch_optional(pool)
    .await?;
    row.map(|row| {
        Ok(InstantPayoutSummary {
            payment_id: row.try_get("payment_id")?,
            client_id: row.try_get("client_id")?,
            status: row.try_get("status")?,
            amount_eth: row.try_get::<Decimal, _>("amount_eth")?.normalize(),
            payout_currency: row.try_get("payout_currency")?,
            payout_network: row.try_get("payout_network")?,
            wallet_address: row.try_get("wallet_address")?,
            threshold_usd: row.try_get("payout_threshold_usd")?,
            reason: row.try_get("reason")?,
        })
    })
    .transpose()
}
