//! The settlement stablecoin: what threshold payments are converted into and held in until paid
//! out. USDT by default; USDC is the alternative when USDT loses its peg (seed 000, risk 1). Both
//! are 6-decimal ERC-20 tokens on Ethereum. The coin is recorded on every batch and row, so a
//! switch never touches money already converted, and a payout never mixes the two.

use super::ChainAsset;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stablecoin {
    #[default]
    Usdt,
    Usdc,
}

impl Stablecoin {
    /// ChangeNow's ticker, also how it is stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Usdt => "usdt",
            Self::Usdc => "usdc",
        }
    }

    /// ChangeNow's network for both tokens.
    pub fn network(self) -> &'static str {
        "eth"
    }

    pub fn asset(self) -> ChainAsset {
        match self {
            Self::Usdt => ChainAsset::Usdt,
            Self::Usdc => ChainAsset::Usdc,
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "usdt" => Some(Self::Usdt),
            "usdc" => Some(Self::Usdc),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_coins_are_six_decimal_tokens_named_as_changenow_names_them() {
        for coin in [Stablecoin::Usdt, Stablecoin::Usdc] {
            assert_eq!(coin.asset().decimals(), 6);
            assert_eq!(Stablecoin::parse(coin.as_str()), Some(coin));
            assert_eq!(serde_json::to_string(&coin).unwrap(), format!("\"{}\"", coin.as_str()));
        }
        assert_eq!(Stablecoin::parse(" USDC "), Some(Stablecoin::Usdc));
        assert_eq!(Stablecoin::parse("dai"), None);
        assert_eq!(Stablecoin::default(), Stablecoin::Usdt, "histories without a coin held USDT");
    }
}
