//! `starter threshold set|auto|show`: the micro-batch conversion threshold, stored as data in
//! `settings.micro_batch_threshold_usd` and read by every conversion run (no restart needed);
//! `auto` sets it from the week's volume at each run (`activities::db::auto_threshold`).

use rust_decimal::Decimal;
use sqlx::PgPool;
use std::str::FromStr;

/// Above this a typo is likelier than intent (a pool this large is many days of payments).
pub const MAX_THRESHOLD_USD: Decimal = Decimal::from_parts(1_000_000, 0, 0, false, 0);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ThresholdError {
    #[error("'{0}' is not a USD amount (expected e.g. 20 or 25.50)")]
    NotANumber(String),
    #[error("the threshold must be above 0 USD, got {0}")]
    NotPositive(Decimal),
    #[error("the threshold is in whole cents, got {0}")]
    TooPrecise(Decimal),
    #[error("the threshold must be at most {MAX_THRESHOLD_USD} USD, got {0}")]
    TooLarge(Decimal),
}

pub fn parse_threshold(text: &str) -> Result<Decimal, ThresholdError> {
    let value = Decimal::from_str(text.trim()).map_err(|_| ThresholdError::NotANumber(text.to_owned()))?;
    if value <= Decimal::ZERO {
        return Err(ThresholdError::NotPositive(value));
    }
    if value.normalize().scale() > 2 {
        return Err(ThresholdError::TooPrecise(value));
    }
    if value > MAX_THRESHOLD_USD {
        return Err(ThresholdError::TooLarge(value));
    }
    Ok(value.round_dp(2))
}

/// An operator's threshold; turns the automatic threshold off.
pub async fn set(pool: &PgPool, value: Decimal) -> Result<(), sqlx::Error> {
    activities::db::auto_threshold::set_manually(pool, value).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn accepts_cents_and_refuses_the_rest_with_a_reason() {
        assert_eq!(parse_threshold("20"), Ok(dec!(20)));
        assert_eq!(parse_threshold(" 25.50 "), Ok(dec!(25.50)));
        assert!(matches!(parse_threshold("twenty"), Err(ThresholdError::NotANumber(_))));
        assert!(matches!(parse_threshold("-5"), Err(ThresholdError::NotPositive(_))));
        assert!(matches!(parse_threshold("0"), Err(ThresholdError::NotPositive(_))));
        assert!(matches!(parse_threshold("20.001"), Err(ThresholdError::TooPrecise(_))));
        assert!(matches!(parse_threshold("1000000.01"), Err(ThresholdError::TooLarge(_))));
        assert!(parse_threshold("NaN").is_err() && parse_threshold("").is_err());
    }
}
