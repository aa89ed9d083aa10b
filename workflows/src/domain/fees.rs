//! The platform fee.
//!
//! Rounding rule: the fee is computed on the gross amount and rounded **half away from zero**
//! to the unit's precision (cents for USD, wei for ETH); the client's net is `gross - fee`.
//! So `fee + net == gross` exactly, in both units, and a half cent (or half wei) goes to the
//! platform. ETH is computed in integer wei so no digit is lost to decimal scaling.

use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

/// USD amounts are fees-rounded to cents.
pub const USD_DECIMALS: u32 = 2;
/// ETH amounts are exact in wei.
pub const ETH_DECIMALS: u32 = 18;
/// Percentages finer than this are refused: they only invite rounding surprises.
const MAX_PERCENT_DECIMALS: u32 = 6;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FeeError {
    #[error("PLATFORM_FEE_PERCENT must be at least 0 and below 100, got {0}")]
    PercentOutOfRange(Decimal),
    #[error("PLATFORM_FEE_PERCENT may have at most {MAX_PERCENT_DECIMALS} decimals, got {0}")]
    PercentTooPrecise(Decimal),
    #[error("amount must not be negative, got {0}")]
    NegativeAmount(Decimal),
    #[error("ETH amount {0} is finer than one wei")]
    SubWeiAmount(Decimal),
    #[error("amount {0} is too large to split exactly")]
    Overflow(Decimal),
    #[error("{0} wei does not fit a decimal amount")]
    WeiOverflow(u128),
}

/// A validated fee percentage, e.g. `3` for 3 %.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Decimal", into = "Decimal")]
pub struct PlatformFee(Decimal);

impl TryFrom<Decimal> for PlatformFee {
    type Error = FeeError;
    fn try_from(percent: Decimal) -> Result<Self, FeeError> {
        Self::new(percent)
    }
}

impl From<PlatformFee> for Decimal {
    fn from(fee: PlatformFee) -> Decimal {
        fee.0
    }
}

/// The outcome of taking the fee from one payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeeSplit {
    pub fee_percent: Decimal,
    pub gross_usd: Decimal,
    pub fee_usd: Decimal,
    pub net_usd: Decimal,
    pub gross_eth: Decimal,
    pub fee_eth: Decimal,
    pub net_eth: Decimal,
}

impl PlatformFee {
    pub fn new(percent: Decimal) -> Result<Self, FeeError> {
        if percent.is_sign_negative() || percent >= Decimal::ONE_HUNDRED {
            return Err(FeeError::PercentOutOfRange(percent));
        }
        let percent = percent.normalize();
        if percent.scale() > MAX_PERCENT_DECIMALS {
            return Err(FeeError::PercentTooPrecise(percent));
        }
        Ok(Self(percent))
    }

    pub fn percent(self) -> Decimal {
        self.0
    }

    /// Takes the fee from a payment's USD value and from the ETH actually received for it.
    pub fn split(self, gross_usd: Decimal, gross_eth: Decimal) -> Result<FeeSplit, FeeError> {
        let fee_usd = self.fee_usd(gross_usd)?;
        let gross_wei = eth_to_wei(gross_eth)?;
        let fee_wei = self.fee_wei(gross_wei)?;
        Ok(FeeSplit {
            fee_percent: self.0,
            gross_usd,
            fee_usd,
            net_usd: gross_usd - fee_usd,
            gross_eth,
            fee_eth: wei_to_eth(fee_wei)?,
            net_eth: wei_to_eth(gross_wei - fee_wei)?,
        })
    }

    fn fee_usd(self, gross_usd: Decimal) -> Result<Decimal, FeeError> {
        if gross_usd.is_sign_negative() {
            return Err(FeeError::NegativeAmount(gross_usd));
        }
        let raw = gross_usd.checked_mul(self.0).and_then(|v| v.checked_div(Decimal::ONE_HUNDRED)).ok_or(FeeError::Overflow(gross_usd))?;
        Ok(raw.round_dp_with_strategy(USD_DECIMALS, RoundingStrategy::MidpointAwayFromZero))
    }

    /// `round_half_up(wei * percent / 100)` in integers: percent = mantissa / 10^scale.
    fn fee_wei(self, gross_wei: u128) -> Result<u128, FeeError> {
        let mantissa = u128::try_from(self.0.mantissa()).map_err(|_| FeeError::PercentOutOfRange(self.0))?;
        let denominator = 100u128 * 10u128.pow(self.0.scale());
        let numerator = gross_wei.checked_mul(mantissa).ok_or(FeeError::WeiOverflow(gross_wei))?;
        Ok((numerator + denominator / 2) / denominator)
    }
}

/// Exact conversion of an ETH amount to wei; refuses negative and sub-wei amounts.
pub fn eth_to_wei(eth: Decimal) -> Result<u128, FeeError> {
    if eth.is_sign_negative() {
        return Err(FeeError::NegativeAmount(eth));
    }
    let eth_n = eth.normalize();
    if eth_n.scale() > ETH_DECIMALS {
        return Err(FeeError::SubWeiAmount(eth));
    }
    let mantissa = u128::try_from(eth_n.mantissa()).map_err(|_| FeeError::Overflow(eth))?;
    mantissa.checked_mul(10u128.pow(ETH_DECIMALS - eth_n.scale())).ok_or(FeeError::Overflow(eth))
}

/// Wei back to ETH. Decimal holds 28 significant digits (about 7.9 * 10^10 ETH in wei), far
/// beyond any payment; larger values are refused rather than rounded.
pub fn wei_to_eth(wei: u128) -> Result<Decimal, FeeError> {
    i128::try_from(wei)
        .ok()
        .and_then(|wei| Decimal::try_from_i128_with_scale(wei, ETH_DECIMALS).ok())
        .map(|eth| eth.normalize())
        .ok_or(FeeError::WeiOverflow(wei))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rust_decimal_macros::dec;

    fn three_percent() -> PlatformFee {
        PlatformFee::new(dec!(3)).unwrap()
    }

    #[test]
    fn takes_three_percent_of_a_round_amount() {
        let split = three_percent().split(dec!(100.00), dec!(0.05)).unwrap();
        assert_eq!(split.fee_usd, dec!(3.00));
        assert_eq!(split.net_usd, dec!(97.00));
        assert_eq!(split.fee_eth, dec!(0.0015));
        assert_eq!(split.net_eth, dec!(0.0485));
    }

    #[test]
    fn a_half_cent_goes_to_the_platform() {
        // 3 % of 0.50 is 0.015: half away from zero gives 0.02.
        let split = three_percent().split(dec!(0.50), dec!(0)).unwrap();
        assert_eq!(split.fee_usd, dec!(0.02));
        assert_eq!(split.net_usd, dec!(0.48));
        // 3 % of 10.05 is 0.3015: below the midpoint, rounds down.
        let split = three_percent().split(dec!(10.05), dec!(0)).unwrap();
        assert_eq!(split.fee_usd, dec!(0.30));
        assert_eq!(split.net_usd, dec!(9.75));
    }

    #[test]
    fn a_half_wei_goes_to_the_platform() {
        // 3 % of 50 wei is 1.5 wei -> 2 wei fee; 3 % of 49 wei is 1.47 -> 1 wei.
        let split = three_percent().split(dec!(0), wei_to_eth(50).unwrap()).unwrap();
        assert_eq!(eth_to_wei(split.fee_eth).unwrap(), 2);
        assert_eq!(eth_to_wei(split.net_eth).unwrap(), 48);
        let split = three_percent().split(dec!(0), wei_to_eth(49).unwrap()).unwrap();
        assert_eq!(eth_to_wei(split.fee_eth).unwrap(), 1);
    }

    #[test]
    fn fractional_percentages_work_in_integer_wei() {
        let fee = PlatformFee::new(dec!(2.5)).unwrap();
        let split = fee.split(dec!(19.99), dec!(1.000000000000000001)).unwrap();
        assert_eq!(split.fee_usd, dec!(0.50)); // 0.49975 -> 0.50
        assert_eq!(split.fee_eth, dec!(0.025)); // 0.025000000000000000025 -> rounds to 0.025
        assert_eq!(split.net_eth, dec!(0.975000000000000001));
    }

    #[test]
    fn zero_fee_keeps_everything_for_the_client() {
        let split = PlatformFee::new(dec!(0)).unwrap().split(dec!(12.34), dec!(0.1)).unwrap();
        assert_eq!((split.fee_usd, split.net_usd), (dec!(0), dec!(12.34)));
        assert_eq!(split.net_eth, dec!(0.1));
    }

    #[test]
    fn refuses_bad_percentages_and_amounts() {
        assert_eq!(PlatformFee::new(dec!(100)), Err(FeeError::PercentOutOfRange(dec!(100))));
        assert_eq!(PlatformFee::new(dec!(-1)), Err(FeeError::PercentOutOfRange(dec!(-1))));
        assert!(matches!(PlatformFee::new(dec!(1.0000001)), Err(FeeError::PercentTooPrecise(_))));
        assert!(matches!(three_percent().split(dec!(-1), dec!(0)), Err(FeeError::NegativeAmount(_))));
        assert!(matches!(three_percent().split(dec!(1), dec!(0.0000000000000000001)), Err(FeeError::SubWeiAmount(_))));
    }

    #[test]
    fn percent_survives_serde_and_is_validated_on_the_way_in() {
        let json = serde_json::to_string(&three_percent()).unwrap();
        assert_eq!(serde_json::from_str::<PlatformFee>(&json).unwrap(), three_percent());
        assert!(serde_json::from_str::<PlatformFee>("\"150\"").is_err());
    }

    fn usd() -> impl Strategy<Value = Decimal> {
        (0i64..=1_000_000_000_00).prop_map(|cents| Decimal::new(cents, 2))
    }
    fn eth() -> impl Strategy<Value = Decimal> {
        (0u64..=u64::MAX).prop_map(|wei| wei_to_eth(wei as u128 * 1_000).unwrap())
    }
    fn percent() -> impl Strategy<Value = PlatformFee> {
        (0i64..100_000_000).prop_map(|p| PlatformFee::new(Decimal::new(p, 6)).unwrap())
    }

    proptest! {
        #[test]
        fn fee_and_net_always_sum_to_gross(fee in percent(), gross_usd in usd(), gross_eth in eth()) {
            let split = fee.split(gross_usd, gross_eth).unwrap();
            prop_assert_eq!(split.fee_usd + split.net_usd, gross_usd);
            prop_assert_eq!(split.fee_eth + split.net_eth, gross_eth);
            prop_assert!(!split.net_usd.is_sign_negative() && !split.net_eth.is_sign_negative());
        }

        #[test]
        fn fee_is_within_half_a_unit_of_the_exact_percentage(fee in percent(), gross_usd in usd()) {
            let split = fee.split(gross_usd, Decimal::ZERO).unwrap();
            let exact = gross_usd * fee.percent() / Decimal::ONE_HUNDRED;
            prop_assert!((split.fee_usd - exact).abs() <= dec!(0.005));
            prop_assert!(split.fee_usd.scale() <= USD_DECIMALS);
        }

        #[test]
        fn wei_conversion_round_trips(wei in 0u128..=10u128.pow(28)) {
            prop_assert_eq!(eth_to_wei(wei_to_eth(wei).unwrap()).unwrap(), wei);
        }
    }
}
