//! How one client payout is cut into exchanges: a payout above the per-exchange limit (5,000 USD
//! by default, or ChangeNow's own maximum when lower) is split into the fewest equal parts that
//! each fit, rounded down to USDT's 6 decimals with the rest on the last part, so the parts sum
//! exactly to the payout.

use rust_decimal::{Decimal, RoundingStrategy};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PartsError {
    #[error("the per-exchange limit must be above zero, got {0}")]
    NoLimit(Decimal),
    #[error("nothing to pay: {0}")]
    NothingToPay(Decimal),
}

/// Splits `total` (USDT) into parts of at most `limit`.
pub fn split_into_exchanges(total: Decimal, limit: Decimal) -> Result<Vec<Decimal>, PartsError> {
    if limit <= Decimal::ZERO {
        return Err(PartsError::NoLimit(limit));
    }
    if total <= Decimal::ZERO {
        return Err(PartsError::NothingToPay(total));
    }
    let count = (total / limit).round_dp_with_strategy(0, RoundingStrategy::ToPositiveInfinity);
    let count = u32::try_from(count.mantissa()).unwrap_or(u32::MAX).max(1);
    let base = (total / Decimal::from(count)).round_dp_with_strategy(6, RoundingStrategy::ToZero);
    let mut parts = vec![base; count as usize];
    let last = total - base * Decimal::from(count - 1);
    parts[count as usize - 1] = last;
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rust_decimal_macros::dec;

    #[test]
    fn twelve_thousand_at_five_thousand_is_three_equal_exchanges() {
        assert_eq!(split_into_exchanges(dec!(12000), dec!(5000)).unwrap(), vec![dec!(4000); 3]);
        assert_eq!(split_into_exchanges(dec!(100), dec!(5000)).unwrap(), vec![dec!(100)]);
        assert_eq!(split_into_exchanges(dec!(5000), dec!(5000)).unwrap(), vec![dec!(5000)]);
        assert_eq!(split_into_exchanges(dec!(10), dec!(3)).unwrap(), vec![dec!(2.5); 4]);
        assert!(split_into_exchanges(dec!(0), dec!(5000)).is_err());
        assert!(split_into_exchanges(dec!(10), dec!(0)).is_err());
    }

    proptest! {
        #[test]
        fn parts_sum_exactly_and_fit_the_limit(units in 1u64..=1_000_000_000_000, limit in 1u64..=10_000) {
            let total = Decimal::new(units as i64, 6);
            let limit = Decimal::from(limit);
            let parts = split_into_exchanges(total, limit).unwrap();
            prop_assert_eq!(parts.iter().sum::<Decimal>(), total);
            let tolerance = Decimal::new(parts.len() as i64, 6);
            for part in &parts {
                prop_assert!(*part > Decimal::ZERO || total < tolerance);
                prop_assert!(*part <= limit + tolerance, "{} > {}", part, limit);
            }
            prop_assert_eq!(parts.len() as u64, (total / limit).ceil().mantissa().max(1) as u64);
        }
    }
}
