//! When and how a stuck transaction is replaced: the fee policy of the outbox, pure, so its rules
//! (at least 1.25x the old fees, the next base fee's headroom, never above `MAX_FEE_GWEI`) are
//! unit-tested without a chain.

use rust_decimal::Decimal;

/// Replacement fee bump in per-mille: 1.25x, above the 12.5 % the issue (and geth's 10 %) require.
/// A replacement offers at least this much more than the attempt it replaces, on both fees.
const REPLACEMENT_BUMP_PER_MILLE: u128 = 1_250;

/// `value * 1.25`, rounded up, so the bump is never below the required minimum.
pub fn bump(value: u128) -> u128 {
    value.saturating_mul(REPLACEMENT_BUMP_PER_MILLE).div_ceil(1_000)
}

/// What an attempt offers per gas, in wei.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GasFees {
    pub max_fee: u128,
    pub priority: u128,
}

impl GasFees {
    /// At most `ceiling` per gas, the tip included.
    pub(super) fn capped(self, ceiling: u128) -> Self {
        let max_fee = self.max_fee.min(ceiling);
        Self { max_fee, priority: self.priority.min(max_fee) }
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum FeeBump {
    Replace(GasFees),
    /// No replacement within the ceiling would get in; `wanted` is the max fee it would need.
    AtCeiling {
        wanted: u128,
    },
}

/// The replacement for an attempt offering `stuck`, underpriced against `base_fee`: at least
/// 1.25x both old fees (nodes refuse smaller bumps), today's estimate, and twice the next base fee
/// plus the tip (the usual headroom; estimates follow the last block, not the next), capped at
/// `ceiling`.
/// The cap alone is no reason to give up (a max fee is only a limit: a block charges its base fee
/// plus the tip), but a capped replacement that nodes would refuse, or that is still below the
/// base fee, is pointless: then the ceiling is reached.
pub fn fee_bump(stuck: GasFees, estimate: GasFees, base_fee: u128, ceiling: u128) -> FeeBump {
    let priority = bump(stuck.priority).max(estimate.priority);
    let headroom = base_fee.saturating_mul(2).saturating_add(priority);
    let wanted = GasFees { max_fee: bump(stuck.max_fee).max(estimate.max_fee).max(headroom), priority };
    let fees = wanted.capped(ceiling);
    let accepted_as_replacement = fees.max_fee >= bump(stuck.max_fee) && fees.priority >= bump(stuck.priority);
    if accepted_as_replacement && fees.max_fee >= base_fee {
        FeeBump::Replace(fees)
    } else {
        FeeBump::AtCeiling { wanted: wanted.max_fee }
    }
}

/// The fees of the cancellation of an attempt offering `latest`: enough to replace it in any
/// mempool that holds it (1.25x both fees) and at least today's estimate, capped at `ceiling`
/// (an attempt never broadcast needs no bump, and a capped one still takes a free nonce).
pub(super) fn cancellation_fees(latest: GasFees, estimate: GasFees, ceiling: u128) -> GasFees {
    let wanted = GasFees { max_fee: bump(latest.max_fee).max(estimate.max_fee), priority: bump(latest.priority).max(estimate.priority) };
    wanted.capped(ceiling)
}

/// Wei per gas as gwei, for people.
pub(super) fn gwei(wei: u128) -> Decimal {
    i128::try_from(wei).ok().and_then(|wei| Decimal::try_from_i128_with_scale(wei, 9).ok()).unwrap_or(Decimal::MAX).normalize()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cancellation_outbids_the_attempt_it_cancels_within_the_ceiling() {
        let latest = GasFees { max_fee: 20_000_000_000, priority: 1_000_000_000 };
        let calm = GasFees { max_fee: 2_000_000_000, priority: 100_000_000 };
        assert_eq!(cancellation_fees(latest, calm, u128::MAX), GasFees { max_fee: 25_000_000_000, priority: 1_250_000_000 });
        let busy = GasFees { max_fee: 90_000_000_000, priority: 3_000_000_000 };
        assert_eq!(cancellation_fees(latest, busy, u128::MAX), busy, "today's estimate when it is higher");
        let capped = cancellation_fees(latest, busy, 50_000_000_000);
        assert_eq!(capped, GasFees { max_fee: 50_000_000_000, priority: 3_000_000_000 });
    }

    #[test]
    fn replacement_fees_rise_by_at_least_twelve_and_a_half_percent() {
        for fee in [1u128, 7, 8, 1_000_000_000, 123_456_789_012] {
            assert!(bump(fee) * 1000 >= fee * 1125, "{fee} -> {}", bump(fee));
            assert!(bump(fee) > fee);
        }
    }

    const GWEI: u128 = 1_000_000_000;

    fn fees(max_fee: u128, priority: u128) -> GasFees {
        GasFees { max_fee: max_fee * GWEI, priority: priority * GWEI }
    }

    #[test]
    fn an_underpriced_attempt_is_bumped_to_the_estimate_within_the_ceiling() {
        // An estimate that lags behind the next base fee: twice the base fee plus the tip.
        let bumped = fee_bump(fees(2, 1), fees(3, 1), 20 * GWEI, 200 * GWEI);
        assert_eq!(bumped, FeeBump::Replace(GasFees { max_fee: 40 * GWEI + bump(GWEI), priority: bump(GWEI) }));
        // A higher estimate wins.
        let bumped = fee_bump(fees(2, 1), fees(60, 1), 20 * GWEI, 200 * GWEI);
        assert_eq!(bumped, FeeBump::Replace(GasFees { max_fee: 60 * GWEI, priority: bump(GWEI) }));
        // Both below a valid bump: the bump wins.
        let bumped = fee_bump(fees(30, 2), fees(11, 1), 5 * GWEI, 200 * GWEI);
        assert_eq!(bumped, FeeBump::Replace(GasFees { max_fee: bump(30 * GWEI), priority: bump(2 * GWEI) }));
    }

    #[test]
    fn the_ceiling_caps_a_replacement_that_still_gets_in() {
        let bumped = fee_bump(fees(2, 1), fees(9, 1), 4 * GWEI, 5 * GWEI);
        assert_eq!(bumped, FeeBump::Replace(GasFees { max_fee: 5 * GWEI, priority: bump(GWEI) }));
    }

    #[test]
    fn no_replacement_past_the_ceiling() {
        // The base fee itself is above the ceiling.
        assert_eq!(fee_bump(fees(2, 1), fees(3, 1), 50 * GWEI, 5 * GWEI), FeeBump::AtCeiling { wanted: 100 * GWEI + bump(GWEI) });
        // Already at the ceiling: no valid bump is left.
        assert!(matches!(fee_bump(fees(5, 1), fees(9, 1), 6 * GWEI, 5 * GWEI), FeeBump::AtCeiling { .. }));
    }

    #[test]
    fn gas_prices_read_in_gwei() {
        assert_eq!(gwei(1_500_000_000).to_string(), "1.5");
        assert_eq!(gwei(200 * GWEI).to_string(), "200");
    }
}
