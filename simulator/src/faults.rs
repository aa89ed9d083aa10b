//! Failure injection, so tests and demos can drive every unhappy path on purpose:
//! - globally: the next N requests to an endpoint answer an HTTP error (5xx by default),
//!   and every answer can be delayed;
//! - per payout address: ChangeNow rejects the address, or exchanges to it end `failed`,
//!   `refunded` (the deposit is sent back on chain) or stall forever in `exchanging`;
//! - per exchange: the same outcomes, for an exchange that already exists.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Endpoint {
    Range,
    Estimate,
    CreateExchange,
    Status,
}

/// How an exchange ends, when forced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Failed,
    Refunded,
    /// Refunded less than the deposit (ChangeNow keeps a fee or a part is lost): 90 % of it.
    RefundedPartially,
    /// Never leaves `exchanging` (for deadline handling).
    Stall,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AddressRule {
    /// `POST /v2/exchange` answers 400 `not_valid_address`.
    Reject,
    #[serde(untagged)]
    Outcome(Outcome),
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Faults {
    /// Requests still to fail, per endpoint.
    #[serde(default)]
    pub fail_next: BTreeMap<Endpoint, u32>,
    /// The status failed requests answer (default 503).
    #[serde(default)]
    pub http_status: Option<u16>,
    /// Every API answer waits this long first.
    #[serde(default)]
    pub delay_ms: u64,
    /// By payout address (lower-case).
    #[serde(default)]
    pub address_rules: BTreeMap<String, AddressRule>,
}

impl Faults {
    /// Takes one injected failure for `endpoint`, if any is left.
    pub fn take_failure(&mut self, endpoint: Endpoint) -> Option<u16> {
        let left = self.fail_next.get_mut(&endpoint)?;
        if *left == 0 {
            return None;
        }
        *left -= 1;
        Some(self.http_status.unwrap_or(503))
    }

    pub fn rule_for(&self, payout_address: &str) -> Option<AddressRule> {
        self.address_rules.get(&payout_address.to_ascii_lowercase()).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn injected_failures_are_used_up() {
        let mut faults: Faults = serde_json::from_str(r#"{"fail_next": {"create_exchange": 2}}"#).unwrap();
        assert_eq!(faults.take_failure(Endpoint::CreateExchange), Some(503));
        assert_eq!(faults.take_failure(Endpoint::CreateExchange), Some(503));
        assert_eq!(faults.take_failure(Endpoint::CreateExchange), None);
        assert_eq!(faults.take_failure(Endpoint::Status), None);
    }

    #[test]
    fn rules_read_as_plain_words() {
        let rules: BTreeMap<String, AddressRule> =
            serde_json::from_str(r#"{"0xabc": "reject", "0xdef": "refunded", "0x123": "failed"}"#).unwrap();
        assert_eq!(rules["0xabc"], AddressRule::Reject);
        assert_eq!(rules["0xdef"], AddressRule::Outcome(Outcome::Refunded));
    }
}
