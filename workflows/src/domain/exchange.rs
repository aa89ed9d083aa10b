//! What the workflows need to know about a ChangeNow exchange: which pair, and what its status
//! means. The HTTP details live in `activities::changenow`.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Which coin on which network goes in and comes out, e.g. eth/eth -> xmr/xmr, or
/// eth/eth -> usdt/eth (USDT as an ERC-20).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExchangePair {
    pub from_currency: String,
    pub from_network: String,
    pub to_currency: String,
    pub to_network: String,
}

impl ExchangePair {
    pub fn new(from: (&str, &str), to: (&str, &str)) -> Self {
        Self {
            from_currency: from.0.to_ascii_lowercase(),
            from_network: from.1.to_ascii_lowercase(),
            to_currency: to.0.to_ascii_lowercase(),
            to_network: to.1.to_ascii_lowercase(),
        }
    }
}

impl fmt::Display for ExchangePair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{} -> {}/{}", self.from_currency, self.from_network, self.to_currency, self.to_network)
    }
}

/// An exchange's status as ChangeNow reports it. Anything ChangeNow may add later is kept as
/// `Other` and is never taken for success.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum ExchangeStatus {
    New,
    Waiting,
    Confirming,
    Exchanging,
    Sending,
    Finished,
    Failed,
    Refunded,
    Verifying,
    Hold,
    Expired,
    Overdue,
    Other(String),
}

impl ExchangeStatus {
    pub fn as_str(&self) -> &str {
        match self {
            Self::New => "new",
            Self::Waiting => "waiting",
            Self::Confirming => "confirming",
            Self::Exchanging => "exchanging",
            Self::Sending => "sending",
            Self::Finished => "finished",
            Self::Failed => "failed",
            Self::Refunded => "refunded",
            Self::Verifying => "verifying",
            Self::Hold => "hold",
            Self::Expired => "expired",
            Self::Overdue => "overdue",
            Self::Other(s) => s,
        }
    }

    /// After these the exchange never changes again. Only `Finished` means the coin was paid out.
    pub fn is_final(&self) -> bool {
        matches!(self, Self::Finished | Self::Failed | Self::Refunded | Self::Expired)
    }
}

impl From<String> for ExchangeStatus {
    fn from(s: String) -> Self {
        match s.as_str() {
            "new" => Self::New,
            "waiting" => Self::Waiting,
            "confirming" => Self::Confirming,
            "exchanging" => Self::Exchanging,
            "sending" => Self::Sending,
            "finished" => Self::Finished,
            "failed" => Self::Failed,
            "refunded" => Self::Refunded,
            "verifying" => Self::Verifying,
            "hold" => Self::Hold,
            "expired" => Self::Expired,
            "overdue" => Self::Overdue,
            _ => Self::Other(s),
        }
    }
}

impl From<ExchangeStatus> for String {
    fn from(s: ExchangeStatus) -> Self {
        s.as_str().to_owned()
    }
}

impl fmt::Display for ExchangeStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_status_is_kept_and_is_not_final() {
        let status: ExchangeStatus = serde_json::from_str(r#""partially_sent""#).unwrap();
        assert_eq!(status, ExchangeStatus::Other("partially_sent".into()));
        assert!(!status.is_final());
        assert!(!ExchangeStatus::Verifying.is_final() && !ExchangeStatus::Hold.is_final());
        assert!(ExchangeStatus::Finished.is_final() && ExchangeStatus::Refunded.is_final());
        for known in ["new", "waiting", "confirming", "exchanging", "sending", "finished", "failed", "refunded"] {
            assert_eq!(ExchangeStatus::from(known.to_owned()).as_str(), known);
        }
    }
}
