//! Where the depeg watch reads a stablecoin's US-dollar price. Behind a trait so a configured
//! price API can replace ChangeNow without touching the rule.

use super::{api::Flow, client::ChangeNowClient, ChangeNowError};
use rust_decimal::{Decimal, MathematicalOps};
use rust_decimal_macros::dec;
use workflows::domain::ExchangePair;

/// How much of each coin the estimates quote: large enough that rounding to 6 decimals is noise.
const QUOTED_AMOUNT: Decimal = dec!(1000);

#[allow(async_fn_in_trait)]
pub trait StablecoinPriceSource {
    /// `coin`'s price in US dollars.
    async fn usd_price(&self, coin: &str) -> Result<Decimal, ChangeNowError>;
}

/// The stablecoin the price is read against: each one's price is read against the other.
pub fn reference_coin(coin: &str) -> &'static str {
    if coin.eq_ignore_ascii_case("usdc") {
        "usdt"
    } else {
        "usdc"
    }
}

/// The price of `coin` in the reference coin from two estimates of `QUOTED_AMOUNT`: `coin` to the
/// reference gives `p x (1 - fee)`, back gives `(1 / p) x (1 - fee)`; their ratio is `p²`, whatever
/// the fee. The reference coin is taken as one dollar (both depegging at once is not detected).
pub fn price_from_round_trip(there: Decimal, back: Decimal) -> Option<Decimal> {
    if there <= Decimal::ZERO || back <= Decimal::ZERO {
        return None;
    }
    (there / back).sqrt().map(|p| p.round_dp(6))
}

impl StablecoinPriceSource for ChangeNowClient {
    async fn usd_price(&self, coin: &str) -> Result<Decimal, ChangeNowError> {
        let coin = coin.to_ascii_lowercase();
        let reference = reference_coin(&coin);
        let there = ExchangePair::new((&coin, "eth"), (reference, "eth"));
        let back = ExchangePair::new((reference, "eth"), (&coin, "eth"));
        let to_reference = self.estimate(&there, QUOTED_AMOUNT, Flow::Standard).await?.to_amount;
        let from_reference = self.estimate(&back, QUOTED_AMOUNT, Flow::Standard).await?.to_amount;
        price_from_round_trip(to_reference, from_reference)
            .ok_or_else(|| ChangeNowError::BadResponse(format!("estimates {to_reference} and {from_reference} give no price")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exchange_fee_cancels_out_of_the_round_trip() {
        // 1 USDT = 0.97 USD, 0.5 % fee each way: 1000 -> 965.15 USDC, 1000 USDC -> 1025.773195 USDT
        let there = dec!(1000) * dec!(0.97) * dec!(0.995);
        let back = (dec!(1000) / dec!(0.97) * dec!(0.995)).round_dp(6);
        assert_eq!(price_from_round_trip(there, back), Some(dec!(0.97)));
        assert_eq!(price_from_round_trip(dec!(995), dec!(995)), Some(dec!(1)));
        assert_eq!(price_from_round_trip(Decimal::ZERO, dec!(995)), None);
    }

    #[test]
    fn each_stablecoin_is_priced_against_the_other() {
        assert_eq!(reference_coin("usdt"), "usdc");
        assert_eq!(reference_coin("USDC"), "usdt");
    }
}
