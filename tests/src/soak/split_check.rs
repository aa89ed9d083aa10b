//! `conversion_split_exact`, row by row: each completed conversion's rows hold the shares the
//! engine's own split gives the USDT received over the ETH each row brought (DESIGN.md, "Split
//! by what arrived"), not merely shares that add up.

use super::checks::Violation;
use rust_decimal::Decimal;
use sqlx::PgPool;
use std::collections::BTreeMap;
use workflows::domain::{split_proportionally, Stablecoin};

/// One violation per completed conversion whose rows' shares are not the ETH-weighted split.
pub async fn shares_follow_eth(pool: &PgPool) -> anyhow::Result<Vec<Violation>> {
    let rows: Vec<(uuid::Uuid, Decimal, Option<Decimal>, Decimal, String)> = sqlx::query_as(
        "SELECT b.batch_conversion_id, a.accumulated_eth, a.accumulated_amount_usdt, b.actual_usdt_received, b.settlement_coin
           FROM payout_accumulation a JOIN batch_conversions b USING (batch_conversion_id)
          WHERE b.conversion_status = 'completed' AND a.conversion_status = 'completed' AND b.actual_usdt_received IS NOT NULL
          ORDER BY b.batch_conversion_id, a.id",
    )
    .fetch_all(pool)
    .await?;
    // Rows in id order within each batch: the order the engine splits in (the rest goes last).
    let mut batches: BTreeMap<uuid::Uuid, (Decimal, String, Vec<Decimal>, Vec<Option<Decimal>>)> = BTreeMap::new();
    for (id, eth, share, received, coin) in rows {
        let batch = batches.entry(id).or_insert_with(|| (received, coin, Vec::new(), Vec::new()));
        batch.2.push(eth);
        batch.3.push(share);
    }
    let mut found = Vec::new();
    for (id, (received, coin, eth, held)) in batches {
        let decimals = Stablecoin::parse(&coin).unwrap_or_default().asset().decimals();
        let expected = match split_proportionally(received, &eth, decimals) {
            Ok(shares) => shares,
            Err(e) => {
                found.push(Violation::new("conversion_split_exact", format!("conversion {id}: its rows' ETH cannot be split: {e}")));
                continue;
            }
        };
        let wrong = expected.iter().zip(&held).filter(|(want, got)| Some(**want) != **got).count();
        if wrong > 0 {
            found.push(Violation::new(
                "conversion_split_exact",
                format!("conversion {id}: {wrong} of {} rows do not hold their share of {received} by the ETH they brought", held.len()),
            ));
        }
    }
    Ok(found)
}
