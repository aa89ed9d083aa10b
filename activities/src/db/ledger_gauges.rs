//! The ledger's figures for `/metrics`, read from Postgres at each scrape so every server shows
//! the same numbers whichever process moved the money.

use super::{
    alerts::{self, Severity},
    batch_outcomes::{self, OutcomeCount},
    conversion_ledger,
};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use sqlx::PgPool;

/// `payout_batch_duration_seconds` buckets: a conversion takes minutes, a payout up to hours.
pub const DURATION_BUCKETS: [Decimal; 8] = [dec!(30), dec!(60), dec!(120), dec!(300), dec!(600), dec!(1800), dec!(3600), dec!(21600)];

#[derive(Debug, Clone, Default)]
pub struct LedgerGauges {
    /// Threshold and instant payments processed (rows never deleted, so the counts only grow).
    pub threshold_payments: i64,
    pub instant_payments: i64,
    pub unpaid_usdt: Decimal,
    pub pending_pool_usd: Decimal,
    pub micro_batch_threshold_usd: Option<Decimal>,
    pub open_alerts: Vec<(Severity, i64)>,
    pub outcomes: Vec<OutcomeCount>,
}

pub async fn read(pool: &PgPool) -> Result<LedgerGauges, sqlx::Error> {
    let (threshold_payments, instant_payments, unpaid_usdt, pending_pool_usd): (i64, i64, Decimal, Decimal) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM payout_accumulation),
                (SELECT count(*) FROM instant_payouts),
                (SELECT COALESCE(sum(accumulated_amount_usdt), 0) FROM payout_accumulation
                  WHERE conversion_status = 'completed' AND NOT is_paid_out),
                (SELECT COALESCE(sum(pending_usd), 0) FROM conversion_pool_totals)",
    )
    .fetch_one(pool)
    .await?;
    Ok(LedgerGauges {
        threshold_payments,
        instant_payments,
        unpaid_usdt,
        pending_pool_usd,
        micro_batch_threshold_usd: conversion_ledger::read_threshold(pool).await.ok(),
        open_alerts: alerts::open_by_severity(pool).await?,
        outcomes: batch_outcomes::counts(pool, &DURATION_BUCKETS).await?,
    })
}
