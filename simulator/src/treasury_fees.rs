//! The treasury's fee rules, pure: the engine's own ([`activities::ethereum::fee_bump`]), so the
//! sandbox's transfers behave as the hot wallet's do. A first attempt offers twice the next base
//! fee plus the tip; a re-signed one at the same nonce outbids the attempt before it (nodes
//! refuse smaller bumps) and the base fee of now.

use activities::ethereum::fee_bump::{fee_bump, FeeBump, GasFees};

/// The tip offered per gas: 1 gwei, what anvil and public nodes suggest on a quiet chain.
pub const TIP: u128 = 1_000_000_000;

/// The fees of an attempt, given the next block's base fee and the attempt it replaces, if any.
pub fn treasury_fees(next_base_fee: u128, previous: Option<GasFees>) -> GasFees {
    let fresh = GasFees { max_fee: next_base_fee.saturating_mul(2).saturating_add(TIP), priority: TIP };
    let Some(previous) = previous else { return fresh };
    // Without a ceiling the engine's rule always finds a replacement.
    match fee_bump(previous, fresh, next_base_fee, u128::MAX) {
        FeeBump::Replace(fees) => fees,
        FeeBump::AtCeiling { wanted } => GasFees { max_fee: wanted, priority: fresh.priority },
    }
}

/// Whether the node refused a transaction for its fee (below the base fee, underpriced, or a
/// replacement that does not outbid the one it replaces): then nothing took the nonce, and the
/// same nonce is signed again with more.
pub fn refused_for_fee(message: &str) -> bool {
    let message = message.to_ascii_lowercase();
    ["underpriced", "less than block base fee", "fee cap", "max fee per gas less than"].iter().any(|m| message.contains(m))
}

/// Whether the nonce was taken meanwhile (an earlier attempt at it was mined).
pub fn nonce_taken(message: &str) -> bool {
    let message = message.to_ascii_lowercase();
    message.contains("nonce too low") || message.contains("already known")
}

#[cfg(test)]
mod tests {
    use super::*;

    const GWEI: u128 = 1_000_000_000;

    #[test]
    fn a_first_attempt_has_the_base_fee_headroom() {
        let fees = treasury_fees(10 * GWEI, None);
        assert_eq!(fees, GasFees { max_fee: 21 * GWEI, priority: GWEI });
        assert!(fees.max_fee >= 2 * 10 * GWEI + fees.priority);
    }

    #[test]
    fn a_re_signed_attempt_outbids_the_last_and_meets_a_risen_base_fee() {
        let first = treasury_fees(GWEI, None);
        assert_eq!(first, GasFees { max_fee: 3 * GWEI, priority: GWEI });
        // Same base fee: 1.25x the last attempt on both fees.
        let again = treasury_fees(GWEI, Some(first));
        assert_eq!(again, GasFees { max_fee: 3_750_000_000, priority: 1_250_000_000 });
        // The base fee jumped to 100 gwei: twice that plus the tip, far above the bump.
        let risen = treasury_fees(100 * GWEI, Some(first));
        assert_eq!(risen, GasFees { max_fee: 201_250_000_000, priority: 1_250_000_000 });
        assert!(risen.max_fee >= 100 * GWEI);
    }

    #[test]
    fn fee_refusals_are_told_from_other_errors() {
        for refusal in [
            "server returned an error response: error code -32003: max fee per gas less than block base fee",
            "transaction underpriced",
            "replacement transaction underpriced",
            "fee cap less than block base fee",
        ] {
            assert!(refused_for_fee(refusal), "{refusal}");
        }
        assert!(!refused_for_fee("insufficient funds for gas * price + value"));
        assert!(nonce_taken("nonce too low"));
        assert!(!nonce_taken("insufficient funds"));
    }
}
