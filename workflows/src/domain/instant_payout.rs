//! The instant payout of one payment, as a state machine, and the range rule that decides
//! whether ChangeNow can take the amount at all.
//!
//! ```text
//! Pending -> ExchangeCreated -> Sent -> Completed
//!                                    -> Failed | Refunded      (the exchange gave up)
//! Pending -> Held                      (below ChangeNow's minimum or above its maximum)
//! Pending | ExchangeCreated -> Failed  (refused before any ETH left the hot wallet)
//! Pending -> AwaitingApproval -> Pending (approved) | Rejected   (over a limit)
//! ```
//!
//! Held is a deliberate stop, not a failure: the amount is too small (or too large) for one
//! exchange, nothing was sent, and an operator decides (the reason is recorded and alerted).
//! AwaitingApproval is the limits' stop (above the approval amount, or over the client's daily
//! limit): nothing is sent until an operator approves, which puts the payout back to Pending,
//! marked approved (`approved_at`), so it is never held again; Rejected ends it unsent.

use super::UnknownVariant;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InstantPayoutStatus {
    Pending,
    AwaitingApproval,
    Held,
    ExchangeCreated,
    Sent,
    Completed,
    Failed,
    Refunded,
    Rejected,
}

impl InstantPayoutStatus {
    pub const ALL: [Self; 9] = [
        Self::Pending,
        Self::AwaitingApproval,
        Self::Held,
        Self::ExchangeCreated,
        Self::Sent,
        Self::Completed,
        Self::Failed,
        Self::Refunded,
        Self::Rejected,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::AwaitingApproval => "awaiting_approval",
            Self::Held => "held",
            Self::ExchangeCreated => "exchange_created",
            Self::Sent => "sent",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Refunded => "refunded",
            Self::Rejected => "rejected",
        }
    }

    pub fn can_move_to(self, next: Self) -> bool {
        use InstantPayoutStatus::*;
        matches!(
            (self, next),
            (Pending, ExchangeCreated | Held | Failed | AwaitingApproval)
                | (AwaitingApproval, Pending | Rejected)
                | (ExchangeCreated, Sent | Failed)
                | (Sent, Completed | Failed | Refunded)
        )
    }

    pub fn is_final(self) -> bool {
        matches!(self, Self::Held | Self::Completed | Self::Failed | Self::Refunded | Self::Rejected)
    }
}

impl FromStr for InstantPayoutStatus {
    type Err = UnknownVariant;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| UnknownVariant { kind: "instant payout status", value: s.to_owned() })
    }
}

/// Whether one exchange can take `amount`, given ChangeNow's range for the pair.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "verdict")]
pub enum RangeVerdict {
    Within,
    BelowMinimum { minimum: Decimal },
    AboveMaximum { maximum: Decimal },
}

impl RangeVerdict {
    pub fn judge(amount: Decimal, minimum: Decimal, maximum: Option<Decimal>) -> Self {
        if amount < minimum {
            return Self::BelowMinimum { minimum };
        }
        match maximum {
            Some(maximum) if amount > maximum => Self::AboveMaximum { maximum },
            _ => Self::Within,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;
    use InstantPayoutStatus::*;

    #[test]
    fn the_happy_path_and_its_exits() {
        assert!(Pending.can_move_to(ExchangeCreated));
        assert!(ExchangeCreated.can_move_to(Sent));
        assert!(Sent.can_move_to(Completed));
        assert!(Sent.can_move_to(Refunded));
        assert!(Pending.can_move_to(Held));
        assert!(ExchangeCreated.can_move_to(Failed), "a refused exchange fails before sending");
    }

    #[test]
    fn a_payout_awaiting_approval_is_approved_back_to_pending_or_rejected_and_never_sent_from_there() {
        assert!(Pending.can_move_to(AwaitingApproval));
        assert!(AwaitingApproval.can_move_to(Pending), "approved");
        assert!(AwaitingApproval.can_move_to(Rejected));
        for skipped in [ExchangeCreated, Sent, Completed, Held, Failed, Refunded] {
            assert!(!AwaitingApproval.can_move_to(skipped), "awaiting_approval -> {skipped:?}");
        }
        assert!(!Pending.can_move_to(Rejected), "only a payout awaiting approval is rejected");
        assert!(Rejected.is_final() && !AwaitingApproval.is_final());
    }

    #[test]
    fn nothing_leaves_a_final_state_and_nothing_skips_sending() {
        for from in InstantPayoutStatus::ALL.into_iter().filter(|s| s.is_final()) {
            for to in InstantPayoutStatus::ALL {
                assert!(!from.can_move_to(to), "{from:?} -> {to:?}");
            }
        }
        assert!(!Pending.can_move_to(Completed));
        assert!(!ExchangeCreated.can_move_to(Completed));
        assert!(!ExchangeCreated.can_move_to(Refunded), "no refund without a deposit");
    }

    #[test]
    fn statuses_round_trip_through_their_stored_text() {
        for status in InstantPayoutStatus::ALL {
            assert_eq!(status.as_str().parse::<InstantPayoutStatus>(), Ok(status));
        }
        assert!("done".parse::<InstantPayoutStatus>().is_err());
    }

    #[test]
    fn range_edges_are_inclusive() {
        assert_eq!(RangeVerdict::judge(dec!(0.01), dec!(0.01), None), RangeVerdict::Within);
        assert_eq!(RangeVerdict::judge(dec!(0.0099), dec!(0.01), None), RangeVerdict::BelowMinimum { minimum: dec!(0.01) });
        assert_eq!(RangeVerdict::judge(dec!(5), dec!(0.01), Some(dec!(5))), RangeVerdict::Within);
        assert_eq!(RangeVerdict::judge(dec!(5.1), dec!(0.01), Some(dec!(5))), RangeVerdict::AboveMaximum { maximum: dec!(5) });
    }
}
