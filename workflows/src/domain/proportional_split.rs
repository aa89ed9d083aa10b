//! The exact proportional split of one amount over many rows: the USDT a micro-batch received,
//! shared over its payments in proportion to the ETH each brought (`accumulated_eth`, seed 002's
//! formula). The USDT came from that ETH, so a row's share is what its ETH fetched, whatever its
//! USD price was at payment time; the USD value is what thresholds count, not what is split.
//!
//! Rule: every share but the last is its exact proportion **rounded down** to the stored
//! precision; the last row gets the rest. So the shares always sum to the total exactly, no
//! share is negative, each share but the last is within one unit below its exact proportion, and
//! the last is above its exact proportion by less than one unit per row. The arithmetic is in
//! integers (256-bit), so no digit is lost however large the amounts.

use ruint::aliases::U256;
use rust_decimal::Decimal;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SplitError {
    #[error("nothing to split over: no rows")]
    NoRows,
    #[error("amounts to split and weights must not be negative")]
    Negative,
    #[error("the rows' weights sum to zero")]
    ZeroWeight,
    #[error("{total} has digits below the stored precision of {decimals} decimals")]
    TotalTooPrecise { total: Decimal, decimals: u32 },
    #[error("a share does not fit a decimal amount")]
    Overflow,
}

/// Splits `total` over `weights` (in order), to `decimals` places. See the module docs.
pub fn split_proportionally(total: Decimal, weights: &[Decimal], decimals: u32) -> Result<Vec<Decimal>, SplitError> {
    if weights.is_empty() {
        return Err(SplitError::NoRows);
    }
    if total.is_sign_negative() && !total.is_zero() || weights.iter().any(|w| w.is_sign_negative() && !w.is_zero()) {
        return Err(SplitError::Negative);
    }
    let total_units = to_units(total, decimals).ok_or(SplitError::TotalTooPrecise { total, decimals })?;
    let weight_scale = weights.iter().map(|w| w.normalize().scale()).max().unwrap_or(0);
    // Every weight's scale is at most `weight_scale`, so each converts.
    let weight_units: Vec<U256> = weights.iter().filter_map(|w| to_units(*w, weight_scale)).collect();
    let weight_sum = weight_units.iter().fold(U256::ZERO, |sum, w| sum + *w);
    if weight_sum.is_zero() {
        return Err(SplitError::ZeroWeight);
    }

    let mut shares = Vec::with_capacity(weights.len());
    let mut given = U256::ZERO;
    for w in &weight_units[..weight_units.len() - 1] {
        let share = total_units * *w / weight_sum; // integer division rounds down
        given += share;
        shares.push(from_units(share, decimals)?);
    }
    shares.push(from_units(total_units - given, decimals)?);
    Ok(shares)
}

/// `amount * 10^decimals` as an integer, or `None` when that is not whole.
fn to_units(amount: Decimal, decimals: u32) -> Option<U256> {
    let normalized = amount.normalize();
    if normalized.scale() > decimals {
        return None;
    }
    let mantissa = U256::from(normalized.mantissa().unsigned_abs());
    Some(mantissa * U256::from(10u8).pow(U256::from(decimals - normalized.scale())))
}

fn from_units(units: U256, decimals: u32) -> Result<Decimal, SplitError> {
    let units = i128::try_from(units).map_err(|_| SplitError::Overflow)?;
    Decimal::try_from_i128_with_scale(units, decimals).map_err(|_| SplitError::Overflow)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rust_decimal_macros::dec;

    const USDT: u32 = 6;

    #[test]
    fn the_seeds_example() {
        // 10, 15 and 25 USD of a 50 USD pool; 48.50 USDT received.
        let shares = split_proportionally(dec!(48.50), &[dec!(10), dec!(15), dec!(25)], USDT).unwrap();
        assert_eq!(shares, vec![dec!(9.70), dec!(14.55), dec!(24.25)]);
    }

    #[test]
    fn the_remainder_goes_to_the_last_row() {
        let shares = split_proportionally(dec!(1), &[dec!(1), dec!(1), dec!(1)], USDT).unwrap();
        assert_eq!(shares, vec![dec!(0.333333), dec!(0.333333), dec!(0.333334)]);
    }

    #[test]
    fn bad_inputs_are_refused() {
        assert_eq!(split_proportionally(dec!(1), &[], USDT), Err(SplitError::NoRows));
        assert_eq!(split_proportionally(dec!(1), &[dec!(0), dec!(0)], USDT), Err(SplitError::ZeroWeight));
        assert_eq!(split_proportionally(dec!(-1), &[dec!(1)], USDT), Err(SplitError::Negative));
        assert!(matches!(split_proportionally(dec!(0.0000001), &[dec!(1)], USDT), Err(SplitError::TotalTooPrecise { .. })));
    }

    #[test]
    fn thousands_of_rows_and_very_large_amounts_sum_exactly() {
        let weights: Vec<Decimal> = (1..=5000).map(|i| Decimal::new(i * 7919 % 100_000 + 1, 2)).collect();
        let total = dec!(79228162514.264337);
        let shares = split_proportionally(total, &weights, USDT).unwrap();
        assert_eq!(shares.iter().sum::<Decimal>(), total);
        let huge = split_proportionally(dec!(1000000000000.000001), &[dec!(99999999999999.99999999), dec!(0.00000001)], USDT).unwrap();
        assert_eq!(huge.iter().sum::<Decimal>(), dec!(1000000000000.000001));
    }

    #[test]
    fn equal_usd_but_different_eth_is_split_by_the_eth() {
        // Two 100 USD payments, 3 % fee: 97 USD net each, but 0.0291 and 0.0485 ETH net because
        // the ETH price moved between them. The ETH is what was exchanged, 291 : 485.
        let eth = [dec!(0.029100000000000000), dec!(0.048500000000000000)];
        let shares = split_proportionally(dec!(232.8), &eth, USDT).unwrap();
        assert_eq!(shares, vec![dec!(87.3), dec!(145.5)]);
        // Rounding down, the rest to the last: 1 USDT over 291 : 485 is 0.375 (exact) : 0.625.
        let shares = split_proportionally(dec!(1.000001), &eth, USDT).unwrap();
        assert_eq!(shares, vec![dec!(0.375000), dec!(0.625001)]); // 0.375000375 rounds down
    }

    #[test]
    fn wei_sized_weights_split_exactly() {
        // One wei beside a thousand ETH: its exact share is far below one USDT unit, so nothing.
        let shares = split_proportionally(dec!(3000000), &[dec!(0.000000000000000001), dec!(1000)], USDT).unwrap();
        assert_eq!(shares, vec![dec!(0), dec!(3000000)]);
        // A row that brought no ETH gets no USDT; the others share all of it.
        let shares = split_proportionally(dec!(100), &[dec!(0.0291), dec!(0), dec!(0.0485)], USDT).unwrap();
        assert_eq!(shares, vec![dec!(37.5), dec!(0), dec!(62.5)]);
        // 18-decimal amounts that differ only in their last wei.
        let eth = [dec!(0.323333333333333333), dec!(0.323333333333333334), dec!(0.323333333333333333)];
        let shares = split_proportionally(dec!(2910), &eth, USDT).unwrap();
        assert_eq!(shares.iter().sum::<Decimal>(), dec!(2910));
        assert_eq!(shares, vec![dec!(969.999999), dec!(970), dec!(970.000001)]);
    }

    fn amount(max_units: u64, decimals: u32) -> impl Strategy<Value = Decimal> {
        (0..=max_units).prop_map(move |u| Decimal::new(u as i64, decimals))
    }

    proptest! {
        #[test]
        fn shares_sum_exactly_and_stay_within_a_unit_of_their_proportion(
            total in amount(1_000_000_000_000_000, USDT),
            weights in prop::collection::vec(amount(10_000_000_000_000, 8), 1..200),
        ) {
            prop_assume!(weights.iter().any(|w| !w.is_zero()));
            let shares = split_proportionally(total, &weights, USDT).unwrap();
            prop_assert_eq!(shares.len(), weights.len());
            prop_assert_eq!(shares.iter().sum::<Decimal>(), total);
            let weight_sum: Decimal = weights.iter().sum();
            let unit = Decimal::new(1, USDT);
            let n = Decimal::from(weights.len());
            for (i, (share, weight)) in shares.iter().zip(&weights).enumerate() {
                prop_assert!(!share.is_sign_negative() || share.is_zero());
                prop_assert!(share.scale() <= USDT);
                // Decimal's own division is exact to ~28 digits: enough for a one-unit bound.
                let exact = total * *weight / weight_sum;
                if i + 1 < shares.len() {
                    prop_assert!(*share <= exact + unit / dec!(1000) && exact - *share < unit, "{share} vs {exact}");
                } else {
                    prop_assert!(*share + unit / dec!(1000) >= exact && *share - exact < unit * n, "{share} vs {exact}");
                }
            }
        }

        #[test]
        fn the_result_depends_only_on_the_rows_amounts_and_order(
            total in amount(1_000_000_000, USDT),
            weights in prop::collection::vec(amount(1_000_000_000, 2), 1..50),
        ) {
            prop_assume!(weights.iter().any(|w| !w.is_zero()));
            let once = split_proportionally(total, &weights, USDT).unwrap();
            let again = split_proportionally(total, &weights.clone(), USDT).unwrap();
            prop_assert_eq!(&once, &again);
            // Scaling every weight by the same factor (USD vs cents) changes nothing.
            let scaled: Vec<Decimal> = weights.iter().map(|w| *w * dec!(100)).collect();
            prop_assert_eq!(once, split_proportionally(total, &scaled, USDT).unwrap());
        }

        #[test]
        fn eth_weights_in_wei_give_each_row_its_exact_proportion_rounded_down(
            total_units in 0..=10u128.pow(18), // up to 10^12 USDT
            weights_wei in prop::collection::vec(0..=10u128.pow(24), 1..200), // up to 10^6 ETH a row
        ) {
            prop_assume!(weights_wei.iter().any(|w| *w != 0));
            let total = Decimal::from_i128_with_scale(total_units as i128, USDT);
            let eth: Vec<Decimal> = weights_wei.iter().map(|w| Decimal::from_i128_with_scale(*w as i128, 18)).collect();
            let shares = split_proportionally(total, &eth, USDT).unwrap();
            prop_assert_eq!(shares.iter().sum::<Decimal>(), total);
            // Checked in integers: share_i = floor(total * wei_i / sum of wei), the last the rest.
            let wei_sum = weights_wei.iter().fold(U256::ZERO, |s, w| s + U256::from(*w));
            let mut floors = U256::ZERO;
            for (i, (share, wei)) in shares.iter().zip(&weights_wei).enumerate() {
                prop_assert!(share.scale() <= USDT && !(share.is_sign_negative() && !share.is_zero()));
                let units = to_units(*share, USDT).unwrap();
                let floor = U256::from(total_units) * U256::from(*wei) / wei_sum;
                floors += floor;
                if i + 1 < shares.len() {
                    prop_assert_eq!(units, floor, "row {}", i);
                } else {
                    // The rest: its own floor plus what rounding took from every row, each < 1 unit.
                    prop_assert!(units >= floor && units - floor < U256::from(shares.len()), "last row {} vs {}", units, floor);
                }
            }
            prop_assert!(U256::from(total_units) - floors < U256::from(shares.len()));
            // The same ETH as whole wei, or in ETH: the same split.
            let as_wei: Vec<Decimal> = weights_wei.iter().map(|w| Decimal::from_i128_with_scale(*w as i128, 0)).collect();
            prop_assert_eq!(shares, split_proportionally(total, &as_wei, USDT).unwrap());
        }

        #[test]
        fn a_single_row_gets_everything(total in amount(u64::MAX / 2, USDT), weight in amount(1_000_000, 2)) {
            prop_assume!(!weight.is_zero());
            prop_assert_eq!(split_proportionally(total, &[weight], USDT).unwrap(), vec![total]);
        }
    }
}
