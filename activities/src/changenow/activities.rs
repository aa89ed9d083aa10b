//! The `changenow.*` activities: thin wrappers over [`ChangeNowClient`] that store what ChangeNow
//! says in `changenow_exchanges`, so an exchange is created once per purpose key.
//!
//! Exactly-once creation: the stored row is looked up first and returned when present. ChangeNow
//! has no idempotency key, so a crash between its answer and our insert can leave an orphan
//! exchange at ChangeNow; it never receives funds (money only goes to the stored exchange's
//! pay-in address) and expires on its own.

use super::{
    api::{CreateExchangeRequest, ExchangeStatusResponse, Flow},
    ChangeNowClient, ChangeNowError,
};
use rust_decimal::Decimal;
use sqlx::{PgPool, Row};
use std::sync::Arc;
use temporalio_common::error::ApplicationFailure;
use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};
use tracing::{info, warn};
use workflows::{
    activity_definitions::{
        CheckExchangeRange, CreateExchange, ExchangeOrder, ExchangeProgressActivity, ExchangeRange, ExchangeSnapshot,
        ExchangeTicket,
    },
    domain::ExchangePair,
};

#[derive(Debug, thiserror::Error)]
pub enum ExchangeActivityError {
    #[error(transparent)]
    ChangeNow(#[from] ChangeNowError),
    #[error("ChangeNow created exchange {exchange_id} for {got} but {wanted} was ordered; refusing to use it")]
    AmountMismatch { exchange_id: String, wanted: Decimal, got: Decimal },
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

impl ExchangeActivityError {
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::ChangeNow(e) => e.is_retryable(),
            Self::AmountMismatch { .. } => false,
            Self::Database(_) => true,
        }
    }

    fn into_activity_error(self) -> ActivityError {
        let retryable = self.is_retryable();
        if !retryable {
            warn!(error = %self, alert = true, "exchange step failed for good");
        } else if matches!(self, Self::ChangeNow(ChangeNowError::Unauthorized { .. })) {
            warn!(error = %self, alert = true, "ChangeNow refuses the API key; retrying until it is fixed");
        }
        ActivityError::application(if retryable { ApplicationFailure::new(self) } else { ApplicationFailure::non_retryable(self) })
    }
}

pub struct ChangeNowActivities {
    client: ChangeNowClient,
    pool: PgPool,
    /// Where ChangeNow sends a refund: the hot wallet.
    refund_address: String,
}

impl ChangeNowActivities {
    pub fn new(client: ChangeNowClient, pool: PgPool, refund_address: String) -> Self {
        Self { client, pool, refund_address }
    }
}

#[activities]
impl ChangeNowActivities {
    #[activity(definition = CheckExchangeRange)]
    pub async fn check_exchange_range(
        self: Arc<Self>,
        _ctx: ActivityContext,
        pair: ExchangePair,
    ) -> Result<ExchangeRange, ActivityError> {
        let range = self
            .client
            .range(&pair, Flow::Standard)
            .await
            .map_err(|e| ExchangeActivityError::from(e).into_activity_error())?;
        Ok(ExchangeRange { min_amount: range.min_amount, max_amount: range.max_amount })
    }

    #[activity(definition = CreateExchange)]
    pub async fn create_exchange(
        self: Arc<Self>,
        _ctx: ActivityContext,
        order: ExchangeOrder,
    ) -> Result<ExchangeTicket, ActivityError> {
        self.create_once(&order).await.map_err(ExchangeActivityError::into_activity_error)
    }

    #[activity(definition = ExchangeProgressActivity)]
    pub async fn exchange_progress(
        self: Arc<Self>,
        _ctx: ActivityContext,
        exchange_id: String,
    ) -> Result<ExchangeSnapshot, ActivityError> {
        self.poll(&exchange_id).await.map_err(ExchangeActivityError::into_activity_error)
    }
}

impl ChangeNowActivities {
    /// The exchange for `order.purpose_key`: the stored one, or a new one created and stored.
    pub async fn create_once(&self, order: &ExchangeOrder) -> Result<ExchangeTicket, ExchangeActivityError> {
        if let Some(ticket) = stored_ticket(&self.pool, &order.purpose_key).await? {
            return Ok(ticket);
        }
        let request = CreateExchangeRequest {
            from_currency: order.pair.from_currency.clone(),
            from_network: order.pair.from_network.clone(),
            to_currency: order.pair.to_currency.clone(),
            to_network: order.pair.to_network.clone(),
            from_amount: order.from_amount,
            address: order.payout_address.clone(),
            refund_address: Some(self.refund_address.clone()),
            flow: Flow::Standard,
            rate_id: None,
        };
        let created = self.client.create_exchange(&request).await?;
        if created.from_amount.normalize() != order.from_amount.normalize() {
            return Err(ExchangeActivityError::AmountMismatch {
                exchange_id: created.id,
                wanted: order.from_amount,
                got: created.from_amount,
            });
        }
        // A concurrent attempt may have stored its own exchange first: the stored one wins.
        sqlx::query(
            "INSERT INTO changenow_exchanges (purpose_key, exchange_id, from_currency, from_network, to_currency,
                 to_network, from_amount, expected_to_amount, payin_address, payout_address, status)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'new')
             ON CONFLICT (purpose_key) DO NOTHING",
        )
        .bind(&order.purpose_key)
        .bind(&created.id)
        .bind(&request.from_currency)
        .bind(&request.from_network)
        .bind(&request.to_currency)
        .bind(&request.to_network)
        .bind(order.from_amount)
        .bind(created.to_amount)
        .bind(&created.payin_address)
        .bind(&created.payout_address)
        .execute(&self.pool)
        .await?;
        let ticket = stored_ticket(&self.pool, &order.purpose_key).await?.ok_or(sqlx::Error::RowNotFound)?;
        info!(purpose_key = %order.purpose_key, exchange_id = %ticket.exchange_id, pair = %order.pair, "exchange created");
        Ok(ticket)
    }

    async fn poll(&self, exchange_id: &str) -> Result<ExchangeSnapshot, ExchangeActivityError> {
        let status: ExchangeStatusResponse = self.client.exchange_status(exchange_id).await?;
        sqlx::query(
            "UPDATE changenow_exchanges SET status = $2, amount_from = $3, amount_to = $4, payin_hash = $5,
                    payout_hash = $6, refund_hash = $7, refund_amount = $8, updated_at = now()
             WHERE exchange_id = $1",
        )
        .bind(exchange_id)
        .bind(status.status.as_str())
        .bind(status.amount_from)
        .bind(status.amount_to)
        .bind(&status.payin_hash)
        .bind(&status.payout_hash)
        .bind(&status.refund_hash)
        .bind(status.refund_amount)
        .execute(&self.pool)
        .await?;
        Ok(ExchangeSnapshot {
            exchange_id: exchange_id.to_owned(),
            status: status.status,
            amount_from: status.amount_from,
            amount_to: status.amount_to,
            payin_hash: status.payin_hash,
            payout_hash: status.payout_hash,
            refund_hash: status.refund_hash,
            refund_amount: status.refund_amount,
        })
    }
}

async fn stored_ticket(pool: &PgPool, purpose_key: &str) -> Result<Option<ExchangeTicket>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT exchange_id, payin_address, from_amount, expected_to_amount FROM changenow_exchanges WHERE purpose_key = $1",
    )
    .bind(purpose_key)
    .fetch_optional(pool)
    .await?;
    row.map(|row| {
        Ok(ExchangeTicket {
            exchange_id: row.try_get("exchange_id")?,
            payin_address: row.try_get("payin_address")?,
            from_amount: row.try_get("from_amount")?,
            expected_to_amount: row.try_get("expected_to_amount")?,
        })
    })
    .transpose()
}
