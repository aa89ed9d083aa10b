//! What a client sees of its own payouts: converted and still-converting amounts against its
//! threshold, its recent payments and its past payouts.

use chrono::{DateTime, Duration, Utc};
use rust_decimal::Decimal;
use sqlx::PgPool;
use uuid::Uuid;

/// Payments and payouts listed on the status (most recent first).
const RECENT: i64 = 10;
/// The window the payout date is estimated from.
const FREQUENCY_WINDOW_DAYS: i64 = 30;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientTotals {
    /// Converted to USDT, not paid yet.
    pub accumulated_usdt: Decimal,
    /// Net USD of threshold payments still waiting for (or in) a conversion.
    pub pending_conversion_usd: Decimal,
    /// Net USD the client received over the last [`FREQUENCY_WINDOW_DAYS`] days, and since when.
    pub recent_net_usd: Decimal,
    pub first_recent_payment_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RecentPayment {
    pub payment_id: i64,
    pub price_amount: Decimal,
    pub net_amount_usd: Option<Decimal>,
    pub status: String,
    pub received_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PastPayout {
    pub batch_id: Uuid,
    pub status: String,
    pub total_amount_usdt: Decimal,
    pub payout_currency: String,
    pub wallet_address: String,
    /// The USDT transfer(s) to ChangeNow.
    pub tx_hash: Option<String>,
    /// The transaction(s) on the client's own chain that paid it, as ChangeNow reported them.
    pub payout_hash: Option<String>,
    pub created_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
}

/// One instant payout: a payment swapped from ETH into the client's coin and sent.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct InstantPayoutLine {
    pub payment_id: i64,
    pub status: String,
    pub amount_eth: Decimal,
    pub payout_currency: String,
    pub amount_received: Option<Decimal>,
    /// The transaction on the client's own chain, as ChangeNow reported it.
    pub payout_hash: Option<String>,
    pub created_at: DateTime<Utc>,
}

pub async fn instant_payouts(pool: &PgPool, client_id: &str) -> Result<Vec<InstantPayoutLine>, sqlx::Error> {
    sqlx::query_as(
        "SELECT payment_id, status, amount_eth, payout_currency, amount_received, payout_hash, created_at
         FROM instant_payouts WHERE client_id = $1 ORDER BY created_at DESC, payment_id DESC LIMIT $2",
    )
    .bind(client_id)
    .bind(RECENT)
    .fetch_all(pool)
    .await
}

pub async fn totals(pool: &PgPool, client_id: &str) -> Result<ClientTotals, sqlx::Error> {
    let (accumulated_usdt, pending_conversion_usd): (Decimal, Decimal) = sqlx::query_as(
        "SELECT COALESCE(SUM(accumulated_amount_usdt) FILTER (WHERE conversion_status = 'completed' AND NOT is_paid_out), 0),
                COALESCE(SUM(net_amount_usd) FILTER (WHERE conversion_status IN ('pending', 'swapping')), 0)
         FROM payout_accumulation WHERE client_id = $1",
    )
    .bind(client_id)
    .fetch_one(pool)
    .await?;
    let (recent_net_usd, first_recent_payment_at): (Decimal, Option<DateTime<Utc>>) = sqlx::query_as(
        "SELECT COALESCE(SUM(net_amount_usd), 0), MIN(received_at) FROM payments
         WHERE client_id = $1 AND net_amount_usd IS NOT NULL AND received_at > now() - make_interval(days => $2)",
    )
    .bind(client_id)
    .bind(FREQUENCY_WINDOW_DAYS as i32)
    .fetch_one(pool)
    .await?;
    Ok(ClientTotals { accumulated_usdt, pending_conversion_usd, recent_net_usd, first_recent_payment_at })
}

pub async fn recent_payments(pool: &PgPool, client_id: &str) -> Result<Vec<RecentPayment>, sqlx::Error> {
    sqlx::query_as(
        "SELECT payment_id, price_amount, net_amount_usd, status, received_at FROM payments
         WHERE client_id = $1 AND status <> 'unverified' ORDER BY received_at DESC, payment_id DESC LIMIT $2",
    )
    .bind(client_id)
    .bind(RECENT)
    .fetch_all(pool)
    .await
}

pub async fn past_payouts(pool: &PgPool, client_id: &str) -> Result<Vec<PastPayout>, sqlx::Error> {
    sqlx::query_as(
        "SELECT b.batch_id, b.status, b.total_amount_usdt, b.client_payout_currency AS payout_currency,
                b.client_wallet_address AS wallet_address, b.tx_hash, b.created_at, b.completed_at,
                (SELECT string_agg(e.payout_hash, ',' ORDER BY e.created_at) FROM changenow_exchanges e
                  WHERE e.exchange_id = ANY(string_to_array(b.cn_api_id, ',')) AND e.payout_hash IS NOT NULL) AS payout_hash
         FROM payout_batches b WHERE b.client_id = $1 ORDER BY b.created_at DESC LIMIT $2",
    )
    .bind(client_id)
    .bind(RECENT)
    .fetch_all(pool)
    .await
}

/// Where a threshold client stands: what is still missing, how far along it is, and when the
/// payout should come at the client's own pace (its net USD per day over the last 30 days).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    pub remaining_usd: Decimal,
    /// 0 to 100, one decimal, rounded down (a client at 99.96 % is not "100 %" yet).
    pub progress_percent: Decimal,
    pub estimated_payout_at: Option<DateTime<Utc>>,
}

/// Pure: the progress of `totals` towards `threshold_usd` as of `now`. USDT counts 1:1 as USD
/// (it was locked at conversion). `None` estimate without recent payments, or for instant clients
/// (threshold 0).
pub fn progress(totals: &ClientTotals, threshold_usd: Decimal, now: DateTime<Utc>) -> Progress {
    if threshold_usd <= Decimal::ZERO {
        return Progress { remaining_usd: Decimal::ZERO, progress_percent: Decimal::ZERO, estimated_payout_at: None };
    }
    let have = totals.accumulated_usdt + totals.pending_conversion_usd;
    let remaining_usd = (threshold_usd - have).max(Decimal::ZERO);
    let progress_percent = (have * Decimal::ONE_HUNDRED / threshold_usd)
        .min(Decimal::ONE_HUNDRED)
        .round_dp_with_strategy(1, rust_decimal::RoundingStrategy::ToZero);
    let estimated_payout_at = match totals.first_recent_payment_at {
        _ if remaining_usd.is_zero() => Some(now),
        Some(first) if totals.recent_net_usd > Decimal::ZERO => {
            // At least a day of history, so one payment a minute ago does not promise a payout in
            // a minute.
            let days = Decimal::from((now - first).num_seconds().max(86_400)) / Decimal::from(86_400);
            let per_day = totals.recent_net_usd / days;
            let days_left = remaining_usd / per_day;
            let seconds = (days_left * Decimal::from(86_400)).ceil();
            i64::try_from(seconds).ok().filter(|s| *s <= 3650 * 86_400).map(|s| now + Duration::seconds(s))
        }
        _ => None,
    };
    Progress { remaining_usd, progress_percent, estimated_payout_at }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    fn totals(accumulated: Decimal, pending: Decimal, recent: Decimal, days_ago: Option<i64>, now: DateTime<Utc>) -> ClientTotals {
        ClientTotals {
            accumulated_usdt: accumulated,
            pending_conversion_usd: pending,
            recent_net_usd: recent,
            first_recent_payment_at: days_ago.map(|d| now - Duration::days(d)),
        }
    }

    #[test]
    fn progress_counts_converted_and_converting_money_against_the_threshold() {
        let now = Utc::now();
        let p = progress(&totals(dec!(40), dec!(20.5), dec!(60.5), Some(10), now), dec!(100), now);
        assert_eq!(p.remaining_usd, dec!(39.5));
        assert_eq!(p.progress_percent, dec!(60.5));
        // 60.5 USD over 10 days: 6.05 a day, 39.5 left: 6.53 days, rounded up to the second.
        let expected = now + Duration::seconds((dec!(39.5) / dec!(6.05) * dec!(86400)).ceil().try_into().unwrap());
        assert_eq!(p.estimated_payout_at, Some(expected));
    }

    #[test]
    fn progress_is_capped_and_never_rounds_up_to_done() {
        let now = Utc::now();
        assert_eq!(progress(&totals(dec!(99.99), dec!(0), dec!(0), None, now), dec!(100), now).progress_percent, dec!(99.9));
        let over = progress(&totals(dec!(150), dec!(0), dec!(0), None, now), dec!(100), now);
        assert_eq!((over.progress_percent, over.remaining_usd, over.estimated_payout_at), (dec!(100), dec!(0), Some(now)));
    }

    #[test]
    fn no_estimate_without_recent_payments_or_for_an_instant_client() {
        let now = Utc::now();
        assert_eq!(progress(&totals(dec!(10), dec!(0), dec!(0), None, now), dec!(100), now).estimated_payout_at, None);
        let instant = progress(&totals(dec!(0), dec!(0), dec!(50), Some(3), now), dec!(0), now);
        assert_eq!((instant.progress_percent, instant.estimated_payout_at), (dec!(0), None));
    }

    #[test]
    fn one_fresh_payment_counts_as_a_days_pace() {
        let now = Utc::now();
        let p = progress(&totals(dec!(0), dec!(10), dec!(10), Some(0), now), dec!(100), now);
        assert_eq!(p.estimated_payout_at, Some(now + Duration::days(9)));
    }
}
