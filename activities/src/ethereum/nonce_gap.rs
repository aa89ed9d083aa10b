//! A nonce gap: an open intent whose nonce the chain has not reached while no transaction holds
//! an earlier one. The chain runs a sender's transactions in nonce order, so such a transfer, and
//! every one signed after it, waits for ever; nothing else would say so before its run's deadline.
//! It happens when the database and the node are of different chains, when the chain was reset,
//! or when something else signed with the hot wallet's key. The outbox watch looks every minute
//! and keeps one `nonce_gap` alert open while it lasts; the reconciliation names it too.

use super::{outbox::rpc, HotWallet, HotWalletError};
use crate::db::alerts::{self, AlertKind, NewAlert};
use alloy::providers::Provider;
use tracing::warn;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NonceGap {
    /// The node's next nonce for the hot wallet, counting what its mempool holds.
    pub chain_next: u64,
    /// The lowest nonce of an open intent, and its purpose key.
    pub lowest_open: u64,
    pub lowest_open_key: String,
    /// What this database records at the missing nonces: `(nonce, purpose key, status)` (at most
    /// five); none when nothing of the outbox ever held them.
    pub recorded_at_missing: Vec<(u64, String, String)>,
}

impl NonceGap {
    pub fn describe(&self, wallet: &str) -> String {
        let missing = if self.lowest_open == self.chain_next + 1 {
            format!("nonce {} is", self.chain_next)
        } else {
            format!("nonces {} to {} are", self.chain_next, self.lowest_open - 1)
        };
        let cause = if self.recorded_at_missing.is_empty() {
            "No transfer of this database ever held them: was the hot wallet's key used elsewhere, or were transactions dropped?".to_owned()
        } else {
            let recorded: Vec<String> =
                self.recorded_at_missing.iter().map(|(nonce, key, status)| format!("{key} at nonce {nonce} ({status})")).collect();
            format!(
                "This database records {} there, which the chain never saw: the database and ETH_RPC_URL are of different chains, \
                 or the chain was reset.",
                recorded.join(", ")
            )
        };
        format!(
            "the hot wallet {wallet} is at nonce {} on its chain, but the lowest open transfer, {} , has nonce {}: {missing} held by no \
             transaction, so it and every transfer after it wait for ever. {cause} Run `starter reconcile`, and check ETH_RPC_URL and \
             DATABASE_URL before anything else is signed",
            self.chain_next, self.lowest_open_key, self.lowest_open
        )
    }
}

impl HotWallet {
    /// The gap in front of the outbox's open intents, if there is one.
    pub async fn nonce_gap(&self) -> Result<Option<NonceGap>, HotWalletError> {
        let from = self.address().to_checksum(None);
        // The ledger first, then the chain: an intent that lands in between only moves the
        // chain's nonce up, which can hide a gap for one pass but never invent one.
        let lowest: Option<(i64, String)> = sqlx::query_as(
            "SELECT nonce, purpose_key FROM transfer_intents WHERE status = 'signed' AND chain_id = $1 AND from_address = $2
             ORDER BY nonce LIMIT 1",
        )
        .bind(self.chain_id() as i64)
        .bind(&from)
        .fetch_optional(&self.pool)
        .await?;
        let Some((lowest_open, lowest_open_key)) = lowest else { return Ok(None) };
        let lowest_open = lowest_open as u64;
        let chain_next = self.provider.get_transaction_count(self.address()).pending().await.map_err(rpc)?;
        if lowest_open <= chain_next {
            return Ok(None);
        }
        let recorded: Vec<(i64, String, String)> = sqlx::query_as(
            "SELECT nonce, purpose_key, status FROM transfer_intents
             WHERE chain_id = $1 AND from_address = $2 AND nonce >= $3 AND nonce < $4 ORDER BY nonce LIMIT 5",
        )
        .bind(self.chain_id() as i64)
        .bind(&from)
        .bind(chain_next as i64)
        .bind(lowest_open as i64)
        .fetch_all(&self.pool)
        .await?;
        let recorded_at_missing = recorded.into_iter().map(|(nonce, key, status)| (nonce as u64, key, status)).collect();
        Ok(Some(NonceGap { chain_next, lowest_open, lowest_open_key, recorded_at_missing }))
    }

    /// Keeps one `nonce_gap` alert open while a gap lasts, and settles it once the gap is gone.
    pub(super) async fn alert_nonce_gap(&self) -> Result<Option<NonceGap>, HotWalletError> {
        let gap = self.nonce_gap().await?;
        let dedupe_key = format!("nonce-gap:{}:{}", self.chain_id(), self.address().to_checksum(None));
        let mut tx = self.pool.begin().await?;
        match &gap {
            Some(gap) => {
                let message = gap.describe(&self.address().to_checksum(None));
                let alert = NewAlert { dedupe_key, kind: AlertKind::NonceGap, subject: gap.lowest_open_key.clone(), message: &message };
                if alerts::raise_unless_open(&mut tx, &alert).await? {
                    warn!(chain_next = gap.chain_next, lowest_open = gap.lowest_open, purpose_key = %gap.lowest_open_key, alert = true,
                        "nonce gap: an open transfer waits behind nonces no transaction holds");
                }
            }
            None => alerts::settle_condition(&mut tx, &dedupe_key).await?,
        }
        tx.commit().await?;
        Ok(gap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_alert_names_the_missing_nonces_and_what_the_database_holds_there() {
        let gap = NonceGap {
            chain_next: 3,
            lowest_open: 5,
            lowest_open_key: "payout:b".into(),
            recorded_at_missing: vec![(3, "payment:1".into(), "confirmed".into())],
        };
        let text = gap.describe("0xabc");
        assert!(text.contains("nonces 3 to 4 are held by no transaction"), "{text}");
        assert!(text.contains("payment:1 at nonce 3 (confirmed)") && text.contains("different chains"), "{text}");
        assert!(text.contains("payout:b") && text.contains("starter reconcile"), "{text}");
        let lone = NonceGap { lowest_open: 4, recorded_at_missing: vec![], ..gap };
        assert!(lone.describe("0xabc").contains("nonce 3 is held") && lone.describe("0xabc").contains("key used elsewhere"));
    }
}
