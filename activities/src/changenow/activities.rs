//! The `changenow.*` activities: thin wrappers over [`ChangeNowClient`] that store what ChangeNow
//! says in `changenow_exchanges`, so an exchange is created once per purpose key.
//!
//! Exactly-once creation: the stored row is looked up first and returned when present, provided
//! it is for the same amount and payout address (anything else is a different exchange, refused
//! for good rather than fed money meant for another order). ChangeNow
//! has no idempotency key, so a crash between its answer and our insert can leave an orphan
//! exchange at ChangeNow; it never receives funds (money only goes to the stored exchange's
//! pay-in address) and expires on its own.

use super::{
    api::{CreateExchangeRequest, ExchangeStatusResponse, Flow},
    stablecoin_price::StablecoinPriceSource,
    ChangeNowClient, ChangeNowError,
};
use crate::polling::poll_until_final;
use rust_decimal::Decimal;
use sqlx::{PgPool, Row};
use std::{sync::Arc, time::Duration};
use temporalio_common::error::ApplicationFailure;
use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};
use tracing::{info, warn};
use workflows::{
    activity_definitions::{
        AwaitExchangeSettled, CheckExchangeRange, CreateExchange, ExchangeOrder, ExchangeProgressActivity, ExchangeRange, ExchangeSnapshot,
        ExchangeTicket, ExchangeWatch, StablecoinPrice, StablecoinUsdPrice,
    },
    domain::ExchangePair,
};

#[derive(Debug, thiserror::Error)]
pub enum ExchangeActivityError {
    #[error(transparent)]
    ChangeNow(#[from] ChangeNowError),
    #[error("ChangeNow created exchange {exchange_id} for {got} but {wanted} was ordered; refusing to use it")]
    AmountMismatch { exchange_id: String, wanted: Decimal, got: Decimal },
    #[error("ChangeNow created exchange {exchange_id} paying out to {got} but {wanted} was ordered; refusing to use it")]
    PayoutAddressMismatch { exchange_id: String, wanted: String, got: String },
    #[error(
        "exchange {exchange_id} stored for {purpose_key} has {field} {stored}, but this order asks for {requested}; \
         refusing to reuse it for a different order"
    )]
    StoredExchangeMismatch { purpose_key: String, exchange_id: String, field: &'static str, stored: String, requested: String },
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

impl ExchangeActivityError {
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::ChangeNow(e) => e.is_retryable(),
            Self::AmountMismatch { .. } | Self::PayoutAddressMismatch { .. } | Self::StoredExchangeMismatch { .. } => false,
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
    pub async fn check_exchange_range(self: Arc<Self>, _ctx: ActivityContext, pair: ExchangePair) -> Result<ExchangeRange, ActivityError> {
        let range = self.client.range(&pair, Flow::Standard).await.map_err(|e| ExchangeActivityError::from(e).into_activity_error())?;
        Ok(ExchangeRange { min_amount: range.min_amount, max_amount: range.max_amount })
    }

    #[activity(definition = CreateExchange)]
    pub async fn create_exchange(self: Arc<Self>, _ctx: ActivityContext, order: ExchangeOrder) -> Result<ExchangeTicket, ActivityError> {
        self.create_once(&order).await.map_err(ExchangeActivityError::into_activity_error)
    }

    #[activity(definition = StablecoinUsdPrice)]
    pub async fn stablecoin_usd_price(self: Arc<Self>, _ctx: ActivityContext, coin: String) -> Result<StablecoinPrice, ActivityError> {
        let usd_price = self.client.usd_price(&coin).await.map_err(|e| ExchangeActivityError::from(e).into_activity_error())?;
        Ok(StablecoinPrice { coin: coin.to_ascii_lowercase(), usd_price })
    }

    #[activity(definition = ExchangeProgressActivity)]
    pub async fn exchange_progress(self: Arc<Self>, _ctx: ActivityContext, exchange_id: String) -> Result<ExchangeSnapshot, ActivityError> {
        self.poll(&exchange_id).await.map_err(ExchangeActivityError::into_activity_error)
    }

    #[activity(definition = AwaitExchangeSettled)]
    pub async fn await_exchange_settled(
        self: Arc<Self>,
        ctx: ActivityContext,
        watch: ExchangeWatch,
    ) -> Result<ExchangeSnapshot, ActivityError> {
        let budget = Duration::from_secs(watch.budget_secs);
        poll_until_final(&ctx, budget, || self.poll(&watch.exchange_id), ExchangeSnapshot::is_settled, ExchangeActivityError::is_retryable)
            .await
            .map_err(ExchangeActivityError::into_activity_error)
    }
}

impl ChangeNowActivities {
    /// The exchange for `order.purpose_key`: the stored one, or a new one created and stored.
    pub async fn create_once(&self, order: &ExchangeOrder) -> Result<ExchangeTicket, ExchangeActivityError> {
        if let Some(stored) = stored_exchange(&self.pool, &order.purpose_key).await? {
            return stored.reused_for(order);
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
        if !same_address(&created.payout_address, &order.payout_address) {
            return Err(ExchangeActivityError::PayoutAddressMismatch {
                exchange_id: created.id,
                wanted: order.payout_address.clone(),
                got: created.payout_address,
            });
        }
        // A concurrent attempt may have stored its own exchange first: the stored one wins (if it
        // is for this very order).
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
        let ticket = stored_exchange(&self.pool, &order.purpose_key).await?.ok_or(sqlx::Error::RowNotFound)?.reused_for(order)?;
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

/// An exchange as stored for a purpose key.
struct StoredExchange {
    ticket: ExchangeTicket,
    payout_address: String,
}

impl StoredExchange {
    /// The stored exchange, for a retry of the order it was made for. A different amount or payout
    /// address means a different exchange: reusing this one would send money ChangeNow expects in
    /// another amount, or pay the wrong wallet.
    fn reused_for(self, order: &ExchangeOrder) -> Result<ExchangeTicket, ExchangeActivityError> {
        let mismatch = |field, stored: String, requested: String| ExchangeActivityError::StoredExchangeMismatch {
            purpose_key: order.purpose_key.clone(),
            exchange_id: self.ticket.exchange_id.clone(),
            field,
            stored,
            requested,
        };
        if self.ticket.from_amount.normalize() != order.from_amount.normalize() {
            let (stored, requested) = (self.ticket.from_amount.normalize(), order.from_amount.normalize());
            return Err(mismatch("amount", stored.to_string(), requested.to_string()));
        }
        if !same_address(&self.payout_address, &order.payout_address) {
            return Err(mismatch("payout address", self.payout_address.clone(), order.payout_address.clone()));
        }
        Ok(self.ticket)
    }
}

/// Ethereum addresses are the same whatever their checksum casing (ChangeNow may answer in lower
/// case); any other coin's address (XMR, ...) must match exactly.
fn same_address(a: &str, b: &str) -> bool {
    let is_evm = |s: &str| s.len() == 42 && s.starts_with("0x") && s[2..].bytes().all(|c| c.is_ascii_hexdigit());
    let (a, b) = (a.trim(), b.trim());
    if is_evm(a) && is_evm(b) {
        a.eq_ignore_ascii_case(b)
    } else {
        a == b
    }
}

async fn stored_exchange(pool: &PgPool, purpose_key: &str) -> Result<Option<StoredExchange>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT exchange_id, payin_address, payout_address, from_amount, expected_to_amount
         FROM changenow_exchanges WHERE purpose_key = $1",
    )
    .bind(purpose_key)
    .fetch_optional(pool)
    .await?;
    row.map(|row| {
        Ok(StoredExchange {
            ticket: ExchangeTicket {
                exchange_id: row.try_get("exchange_id")?,
                payin_address: row.try_get("payin_address")?,
                from_amount: row.try_get("from_amount")?,
                expected_to_amount: row.try_get("expected_to_amount")?,
            },
            payout_address: row.try_get("payout_address")?,
        })
    })
    .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ethereum_addresses_match_in_any_case_and_others_exactly() {
        let checksummed = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";
        assert!(same_address(checksummed, &checksummed.to_lowercase()));
        assert!(!same_address(checksummed, "0x70997970C51812dc3A010C7d01b50e0d17dc79C9"));
        let xmr = "44AFFq5kSiGBoZ4NMDwYtN18obc8AemS33DBLWs3H7otXft3XjrpDtQGv7SqSsaBYBb98uNbr2VBBEt7f2wfn3RVGQBEP3A";
        assert!(same_address(xmr, xmr));
        assert!(!same_address(xmr, &xmr.to_lowercase()), "base58 is case-sensitive");
    }
}
