//! Decimal amounts <-> integer base units at the chain boundary: wei (ETH, 18 decimals) and
//! USDT's 10^-6 (6 decimals). A conversion that would lose a digit is an error, never a silent
//! rounding: the caller decides how to round before it reaches the chain.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChainAsset {
    Eth,
    /// The USDT ERC-20 at `USDT_CONTRACT`.
    Usdt,
    /// The USDC ERC-20 at `USDC_CONTRACT`, the alternative settlement stablecoin.
    Usdc,
}

impl ChainAsset {
    pub fn decimals(self) -> u32 {
        match self {
            ChainAsset::Eth => 18,
            ChainAsset::Usdt | ChainAsset::Usdc => 6,
        }
    }

    pub fn symbol(self) -> &'static str {
        match self {
            ChainAsset::Eth => "ETH",
            ChainAsset::Usdt => "USDT",
            ChainAsset::Usdc => "USDC",
        }
    }
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum BaseUnitError {
    #[error("{amount} {symbol} is negative")]
    Negative { amount: Decimal, symbol: &'static str },
    #[error("{amount} {symbol} has digits below the smallest unit (10^-{decimals})")]
    TooPrecise { amount: Decimal, symbol: &'static str, decimals: u32 },
    #[error("{0} base units do not fit a decimal amount")]
    TooLarge(u128),
}

/// `1.5 ETH -> 1_500_000_000_000_000_000`; refuses amounts finer than one base unit.
pub fn to_base_units(amount: Decimal, asset: ChainAsset) -> Result<u128, BaseUnitError> {
    let symbol = asset.symbol();
    if amount.is_sign_negative() && !amount.is_zero() {
        return Err(BaseUnitError::Negative { amount, symbol });
    }
    let normalized = amount.normalize();
    let decimals = asset.decimals();
    if normalized.scale() > decimals {
        return Err(BaseUnitError::TooPrecise { amount, symbol, decimals });
    }
    // mantissa * 10^(decimals - scale); the mantissa of a Decimal fits 96 bits, 10^18 fits 60.
    let mantissa = normalized.mantissa().unsigned_abs();
    Ok(mantissa * 10u128.pow(decimals - normalized.scale()))
}

/// The reverse, exact.
pub fn from_base_units(units: u128, asset: ChainAsset) -> Result<Decimal, BaseUnitError> {
    let mantissa = i128::try_from(units).map_err(|_| BaseUnitError::TooLarge(units))?;
    Decimal::try_from_i128_with_scale(mantissa, asset.decimals()).map(|d| d.normalize()).map_err(|_| BaseUnitError::TooLarge(units))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rust_decimal_macros::dec;

    #[test]
    fn known_values() {
        assert_eq!(to_base_units(dec!(1.5), ChainAsset::Eth), Ok(1_500_000_000_000_000_000));
        assert_eq!(to_base_units(dec!(0.000000000000000001), ChainAsset::Eth), Ok(1));
        assert_eq!(to_base_units(dec!(48.50), ChainAsset::Usdt), Ok(48_500_000));
        assert_eq!(to_base_units(dec!(0), ChainAsset::Usdt), Ok(0));
        assert_eq!(from_base_units(48_500_000, ChainAsset::Usdt), Ok(dec!(48.5)));
    }

    #[test]
    fn a_digit_below_the_smallest_unit_is_refused() {
        assert!(matches!(to_base_units(dec!(0.0000001), ChainAsset::Usdt), Err(BaseUnitError::TooPrecise { .. })));
        assert!(matches!(to_base_units(dec!(-1), ChainAsset::Eth), Err(BaseUnitError::Negative { .. })));
    }

    proptest! {
        #[test]
        fn round_trips_exactly(units in 0u128..=(u64::MAX as u128) * 1_000_000, usdt in any::<bool>()) {
            let asset = if usdt { ChainAsset::Usdt } else { ChainAsset::Eth };
            let amount = from_base_units(units, asset).unwrap();
            prop_assert_eq!(to_base_units(amount, asset).unwrap(), units);
        }
    }
}
