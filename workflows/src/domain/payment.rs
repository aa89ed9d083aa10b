//! The states a payment and a client's payout preference can be in.
//!
//! Stored as text in Postgres; the migration's CHECK constraints list the same values, so a
//! typo on either side fails loudly instead of creating a state no code handles.

use serde::{Deserialize, Serialize};
use std::{fmt, str::FromStr};

/// The only currency the hot wallet receives from NOWPayments.
pub const SETTLEMENT_CURRENCY: &str = "eth";
/// Subscriptions are priced in USD; the accumulated value is a USD value.
pub const PRICE_CURRENCY: &str = "usd";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unknown {kind} '{value}'")]
pub struct UnknownVariant {
    pub kind: &'static str,
    pub value: String,
}

/// How a client is paid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PayoutStrategy {
    /// Every payment is swapped to the client's coin and sent at once.
    Instant,
    /// Payments are locked in USDT and paid out together when the client's threshold is reached.
    Threshold,
}

impl PayoutStrategy {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Instant => "instant",
            Self::Threshold => "threshold",
        }
    }
}

impl FromStr for PayoutStrategy {
    type Err = UnknownVariant;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "instant" => Ok(Self::Instant),
            "threshold" => Ok(Self::Threshold),
            other => Err(UnknownVariant { kind: "payout strategy", value: other.to_owned() }),
        }
    }
}

impl fmt::Display for PayoutStrategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Our processing state of a payment (NOWPayments' own status is stored beside it).
///
/// ```text
/// Received -> Processing -> Accumulated            (threshold client)
///                        -> AwaitingInstantPayout  (instant client; hand-off to the payout)
/// Received -> Unverified                           (NOWPayments does not confirm it: never paid)
/// Unverified -> Received                           (an operator's `starter payment verify`: ask again)
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    /// The IPN is stored; no workflow has processed it yet.
    Received,
    /// `PaymentWorkflow` has taken the payment.
    Processing,
    /// The net amount sits in one `payout_accumulation` row.
    Accumulated,
    /// The net amount waits for the instant payout workflow.
    AwaitingInstantPayout,
    /// NOWPayments' own record does not confirm a finished payment (unknown to it, another
    /// status, an order for an unregistered client): never paid, alerted, `unverified_reason` says why.
    Unverified,
}

impl PaymentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Received => "received",
            Self::Processing => "processing",
            Self::Accumulated => "accumulated",
            Self::AwaitingInstantPayout => "awaiting_instant_payout",
            Self::Unverified => "unverified",
        }
    }

    /// The explicit transition table; the activities refuse anything else.
    pub fn can_move_to(self, next: PaymentStatus) -> bool {
        use PaymentStatus::*;
        matches!(
            (self, next),
            (Received, Processing)
                | (Processing, Processing)
                | (Processing, Accumulated)
                | (Processing, AwaitingInstantPayout)
                | (Received, Unverified)
                | (Unverified, Received)
        )
    }

    /// The states a payment routed by `strategy` ends in.
    pub fn routed(strategy: PayoutStrategy) -> Self {
        match strategy {
            PayoutStrategy::Instant => Self::AwaitingInstantPayout,
            PayoutStrategy::Threshold => Self::Accumulated,
        }
    }
}

impl FromStr for PaymentStatus {
    type Err = UnknownVariant;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [Self::Received, Self::Processing, Self::Accumulated, Self::AwaitingInstantPayout, Self::Unverified]
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| UnknownVariant { kind: "payment status", value: s.to_owned() })
    }
}

impl fmt::Display for PaymentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_through_text() {
        for status in [
            PaymentStatus::Received,
            PaymentStatus::Processing,
            PaymentStatus::Accumulated,
            PaymentStatus::AwaitingInstantPayout,
            PaymentStatus::Unverified,
        ] {
            assert_eq!(status.as_str().parse::<PaymentStatus>(), Ok(status));
        }
        assert!("paid".parse::<PaymentStatus>().is_err());
        assert_eq!("threshold".parse::<PayoutStrategy>(), Ok(PayoutStrategy::Threshold));
        assert!("weekly".parse::<PayoutStrategy>().is_err());
    }

    #[test]
    fn only_forward_transitions_are_allowed() {
        use PaymentStatus::*;
        assert!(Received.can_move_to(Processing));
        assert!(Processing.can_move_to(Processing), "a retried activity re-enters processing");
        assert!(Processing.can_move_to(Accumulated));
        assert!(!Received.can_move_to(Accumulated), "routing must go through processing");
        assert!(!Accumulated.can_move_to(Processing));
        assert!(!AwaitingInstantPayout.can_move_to(Accumulated));
        assert!(Received.can_move_to(Unverified));
        assert!(!Unverified.can_move_to(Processing), "nothing unverified is ever processed");
        assert!(!Processing.can_move_to(Unverified), "a payment taken on NOWPayments' word stays taken");
    }
}
