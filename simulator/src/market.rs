//! The simulated market: USD prices per coin, the exchange fee, the minimum amount, and the
//! payout address rules ChangeNow applies. All Decimal; amounts out are rounded **down** to the
//! coin's precision, as an exchange would.

use rust_decimal::{Decimal, RoundingStrategy};
use std::collections::BTreeMap;

#[derive(Debug, Clone)]
pub struct Market {
    /// USD per coin, by ticker (`eth`, `usdt`, `xmr`, `btc`).
    pub usd_prices: BTreeMap<String, Decimal>,
    /// Taken from the amount out, in percent.
    pub fee_percent: Decimal,
    /// The smallest exchange, in USD; ChangeNow's `minAmount` is this in the from-coin.
    pub min_usd: Decimal,
    /// The largest exchange, in USD (`maxAmount`); `None` for no maximum.
    pub max_usd: Option<Decimal>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MarketError {
    #[error("pair_is_inactive: {0} is not traded")]
    UnknownCoin(String),
}

impl Market {
    pub fn price(&self, coin: &str) -> Result<Decimal, MarketError> {
        self.usd_prices.get(coin).copied().ok_or_else(|| MarketError::UnknownCoin(coin.to_owned()))
    }

    /// Smallest and largest `from` amounts.
    pub fn range(&self, from: &str) -> Result<(Decimal, Option<Decimal>), MarketError> {
        let price = self.price(from)?;
        let precision = precision(from);
        let min = (self.min_usd / price).round_dp_with_strategy(precision, RoundingStrategy::ToPositiveInfinity);
        let max = self.max_usd.map(|usd| (usd / price).round_dp_with_strategy(precision, RoundingStrategy::ToZero));
        Ok((min.normalize(), max.map(|m| m.normalize())))
    }

    /// What `amount` of `from` buys of `to`, after the fee, rounded down to `to`'s precision.
    pub fn quote(&self, from: &str, to: &str, amount: Decimal) -> Result<Decimal, MarketError> {
        let gross = amount * self.price(from)? / self.price(to)?;
        let net = gross * (Decimal::ONE_HUNDRED - self.fee_percent) / Decimal::ONE_HUNDRED;
        Ok(net.round_dp_with_strategy(precision(to), RoundingStrategy::ToZero).normalize())
    }
}

impl Default for Market {
    fn default() -> Self {
        let prices = [("eth", 3000), ("usdt", 1), ("usdc", 1), ("xmr", 150), ("btc", 60000), ("ltc", 80)];
        Self {
            usd_prices: prices.iter().map(|(c, p)| (c.to_string(), Decimal::from(*p))).collect(),
            fee_percent: Decimal::new(5, 1),
            min_usd: Decimal::from(5),
            max_usd: None,
        }
    }
}

/// Decimals a coin is counted in.
pub fn precision(coin: &str) -> u32 {
    match coin {
        "eth" => 18,
        "usdt" | "usdc" => 6,
        "xmr" => 12,
        _ => 8,
    }
}

/// ChangeNow's payout address check, per network, in the simulator's simple form.
pub fn address_is_valid(network: &str, address: &str) -> bool {
    let base58 = |s: &str| s.chars().all(|c| c.is_ascii_alphanumeric() && !"0OIl".contains(c));
    match network {
        "eth" => address.len() == 42 && address.starts_with("0x") && address[2..].chars().all(|c| c.is_ascii_hexdigit()),
        "xmr" => (address.len() == 95 || address.len() == 106) && address.starts_with(['4', '8']) && base58(address),
        "btc" => {
            let lower = address.to_ascii_lowercase();
            (lower.starts_with("bc1") && (14..=74).contains(&address.len()))
                || (address.starts_with(['1', '3']) && (26..=35).contains(&address.len()) && base58(address))
        }
        _ => !address.trim().is_empty(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn quotes_take_the_fee_and_round_down() {
        let market = Market::default();
        // 0.01 ETH = 30 USD -> 30 USDT - 0.5 % = 29.85
        assert_eq!(market.quote("eth", "usdt", dec!(0.01)).unwrap(), dec!(29.85));
        // 1 USDT -> 1/150 XMR * 0.995, 12 decimals, rounded down
        assert_eq!(market.quote("usdt", "xmr", dec!(1)).unwrap(), dec!(0.006633333333));
    }

    #[test]
    fn the_minimum_is_rounded_up_so_it_is_never_below_min_usd() {
        let (min, max) = Market::default().range("eth").unwrap();
        assert_eq!(min, dec!(0.001666666666666667));
        assert!(min * dec!(3000) >= dec!(5));
        assert_eq!(max, None);
    }

    #[test]
    fn addresses_are_checked_per_network() {
        assert!(address_is_valid("eth", "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"));
        assert!(!address_is_valid("eth", "0x7099"));
        assert!(!address_is_valid("xmr", "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"));
        assert!(address_is_valid("xmr", "44AFFq5kSiGBoZ4NMDwYtN18obc8AemS33DBLWs3H7otXft3XjrpDtQGv7SqSsaBYBb98uNbr2VBBEt7f2wfn3RVGQBEP3A"));
    }
}
