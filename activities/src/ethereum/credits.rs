//! Money coming back, credited once.
//!
//! ChangeNow reports a transaction hash for a conversion's USDT or for a refund; the hash alone
//! proves nothing: it may name any transfer into the hot wallet (a customer's payment forwarded
//! by NOWPayments, another exchange's refund, the same refund twice). So every path that counts
//! money coming back claims what the transaction paid the hot wallet in
//! `credited_incoming_transfers`, part by part (each token `Transfer` event by its log index, or
//! the transaction's ETH value), for one purpose. A later claim by another purpose is refused,
//! naming the first; the same purpose asking again gets the same answer.
//!
//! A refund counts only when it comes from ChangeNow's own senders (`CHANGENOW_SENDER_ADDRESSES`)
//! and never for more than the exchange was sent: a refund is what returns rows to the pool or
//! lets a payout be sent again. A partial one is credited as what it is, and its caller keeps the
//! rows (or the payout) for an operator; only the exchange's full amount returns them.

use super::{
    outbox::{rpc, ERC20_TRANSFER_EVENT},
    Asset, HotWallet, HotWalletError, IncomingState,
};
use alloy::{
    consensus::Transaction as _,
    network::TransactionResponse as _,
    primitives::{Address, TxHash, U256},
    providers::Provider,
};
use std::str::FromStr;
use tracing::info;

/// The `log_index` of a transaction's own ETH value.
const ETH_VALUE: i32 = -1;
/// The `log_index` of a whole transaction credited before parts were recorded.
const WHOLE_TRANSACTION: i32 = -2;

/// One thing a transaction paid the hot wallet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct IncomingPart {
    pub(super) log_index: i32,
    pub(super) from: Address,
    pub(super) amount: U256,
}

pub(super) enum IncomingParts {
    NotMined,
    Unconfirmed {
        block: u64,
        confirmations: u64,
        required: u64,
    },
    /// What it paid the hot wallet from someone else; none when it reverted or paid nothing.
    Confirmed {
        block: u64,
        parts: Vec<IncomingPart>,
    },
}

/// What to credit an incoming transfer to.
#[derive(Debug, Clone)]
pub struct Credit<'a> {
    /// `conversion:{batch}`, `conversion_refund:{batch}`, `payout_refund:{key}`, `instant_refund:{payment}`.
    pub credited_to: &'a str,
    pub refund: Option<Refund<'a>>,
}

/// The rule of a refund: only from `senders`, only for exactly `amount` (base units).
#[derive(Debug, Clone)]
pub struct Refund<'a> {
    pub senders: &'a [Address],
    pub amount: U256,
}

impl HotWallet {
    /// What `tx_hash` paid the hot wallet in `asset`, part by part, once it has its confirmations.
    pub(super) async fn incoming_parts(&self, tx_hash: &str, asset: Asset) -> Result<IncomingParts, HotWalletError> {
        let hash = parse_hash(tx_hash)?;
        let Some(receipt) = self.provider.get_transaction_receipt(hash).await.map_err(rpc)? else {
            return Ok(IncomingParts::NotMined);
        };
        let block = receipt.block_number.unwrap_or_default();
        let confirmations = self.confirmations(block).await?;
        if confirmations < self.settings.confirmations {
            return Ok(IncomingParts::Unconfirmed { block, confirmations, required: self.settings.confirmations });
        }
        if !receipt.status() {
            return Ok(IncomingParts::Confirmed { block, parts: Vec::new() });
        }
        let me = self.address();
        let parts = match asset {
            Asset::Eth => match self.provider.get_transaction_by_hash(hash).await.map_err(rpc)? {
                Some(tx) if tx.to() == Some(me) && tx.from() != me && !tx.value().is_zero() => {
                    vec![IncomingPart { log_index: ETH_VALUE, from: tx.from(), amount: tx.value() }]
                }
                _ => Vec::new(),
            },
            Asset::Erc20(contract) => receipt
                .inner
                .logs()
                .iter()
                .filter_map(|log| {
                    let (from, to, value) = token_transfers_of_log(log, contract)?;
                    let index = i32::try_from(log.log_index?).ok()?;
                    (to == me && from != me && !value.is_zero()).then_some(IncomingPart { log_index: index, from, amount: value })
                })
                .collect(),
        };
        Ok(IncomingParts::Confirmed { block, parts })
    }

    /// What `tx_hash` paid the hot wallet in `asset`, credited to `credit.credited_to` once. A
    /// transfer (or a part of it) already credited to something else is refused
    /// ([`HotWalletError::AlreadyCredited`]); a refund from anyone but ChangeNow's senders, or of
    /// another amount than the exchange's, is refused ([`HotWalletError::RefundNotCounted`]).
    /// Nothing is credited before the transaction has its confirmations, or when it paid nothing.
    pub async fn credit_incoming(&self, tx_hash: &str, asset: Asset, credit: &Credit<'_>) -> Result<IncomingState, HotWalletError> {
        let (block, mut parts) = match self.incoming_parts(tx_hash, asset).await? {
            IncomingParts::NotMined => return Ok(IncomingState::NotMined),
            IncomingParts::Unconfirmed { block, confirmations, required } => {
                return Ok(IncomingState::Unconfirmed { block, confirmations, required })
            }
            IncomingParts::Confirmed { block, parts } => (block, parts),
        };
        if let Some(refund) = &credit.refund {
            refund_counts(tx_hash, &asset.stored_name(), &mut parts, refund)?;
        }
        let amount = parts.iter().fold(U256::ZERO, |sum, part| sum.saturating_add(part.amount));
        if !amount.is_zero() {
            self.record_credit(tx_hash, asset, &parts, credit.credited_to).await?;
        }
        Ok(IncomingState::Confirmed { amount, block })
    }

    async fn record_credit(&self, tx_hash: &str, asset: Asset, parts: &[IncomingPart], credited_to: &str) -> Result<(), HotWalletError> {
        let tx_hash = format!("{:#x}", parse_hash(tx_hash)?);
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 22))").bind(&tx_hash).execute(&mut *tx).await?;
        let credited: Vec<(i32, String)> =
            sqlx::query_as("SELECT log_index, credited_to FROM credited_incoming_transfers WHERE tx_hash = $1")
                .bind(&tx_hash)
                .fetch_all(&mut *tx)
                .await?;
        let mine = |index: i32| index == WHOLE_TRANSACTION || parts.iter().any(|p| p.log_index == index);
        if let Some((_, other)) = credited.iter().find(|(index, to)| mine(*index) && to != credited_to) {
            return Err(HotWalletError::AlreadyCredited { tx_hash, credited_to: other.clone() });
        }
        for part in parts {
            sqlx::query(
                "INSERT INTO credited_incoming_transfers (tx_hash, log_index, asset, sender, amount_base_units, credited_to)
                 VALUES ($1, $2, $3, $4, $5::numeric, $6) ON CONFLICT DO NOTHING",
            )
            .bind(&tx_hash)
            .bind(part.log_index)
            .bind(asset.stored_name())
            .bind(part.from.to_checksum(None))
            .bind(part.amount.to_string())
            .bind(credited_to)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        info!(%tx_hash, credited_to, parts = parts.len(), "incoming transfer credited");
        Ok(())
    }
}

/// Keeps the parts from ChangeNow's senders, and refuses unless they are the exchange's amount.
fn refund_counts(tx_hash: &str, asset: &str, parts: &mut Vec<IncomingPart>, refund: &Refund<'_>) -> Result<(), HotWalletError> {
    let refused = |reason: String| Err(HotWalletError::RefundNotCounted { tx_hash: tx_hash.to_owned(), reason });
    if refund.senders.is_empty() {
        return refused(
            "CHANGENOW_SENDER_ADDRESSES is not set, so no refund is taken on ChangeNow's word; an operator checks it and acts".into(),
        );
    }
    let from_others: Vec<String> = parts.iter().filter(|p| !refund.senders.contains(&p.from)).map(|p| p.from.to_checksum(None)).collect();
    parts.retain(|p| refund.senders.contains(&p.from));
    let amount = parts.iter().fold(U256::ZERO, |sum, part| sum.saturating_add(part.amount));
    // Nothing from ChangeNow, or more than the exchange was ever sent: not this exchange's refund.
    // Less is a partial refund: credited to it, and the caller decides (the rows stay, say).
    if amount.is_zero() || amount > refund.amount {
        let others =
            if from_others.is_empty() { String::new() } else { format!(" (and more from {}, not ChangeNow)", from_others.join(", ")) };
        return refused(format!(
            "it paid the hot wallet {amount} base units of {asset} from ChangeNow's senders{others}, and the exchange was sent {}",
            refund.amount
        ));
    }
    Ok(())
}

fn token_transfers_of_log(log: &alloy::rpc::types::Log, contract: Address) -> Option<(Address, Address, U256)> {
    let topics = log.topics();
    (log.address() == contract && topics.len() == 3 && topics[0] == ERC20_TRANSFER_EVENT)
        .then(|| (Address::from_word(topics[1]), Address::from_word(topics[2]), U256::from_be_slice(&log.data().data)))
}

fn parse_hash(tx_hash: &str) -> Result<TxHash, HotWalletError> {
    TxHash::from_str(tx_hash.trim()).map_err(|_| HotWalletError::BadAddress(tx_hash.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(from: u8, amount: u64) -> IncomingPart {
        IncomingPart { log_index: from as i32, from: Address::from([from; 20]), amount: U256::from(amount) }
    }

    #[test]
    fn a_refund_counts_only_from_changenow_and_only_for_the_exchanges_amount() {
        let changenow = [Address::from([1; 20])];
        let rule = |amount: u64| Refund { senders: &changenow, amount: U256::from(amount) };
        let mut parts = vec![part(1, 100)];
        assert!(refund_counts("0xab", "ETH", &mut parts, &rule(100)).is_ok());

        let error = refund_counts("0xab", "ETH", &mut vec![part(2, 100)], &rule(100)).unwrap_err().to_string();
        assert!(error.contains("0 base units") && error.contains("not ChangeNow"), "another sender does not count: {error}");
        let error = refund_counts("0xab", "ETH", &mut vec![part(1, 101)], &rule(100)).unwrap_err().to_string();
        assert!(error.contains("101") && error.contains("was sent 100"), "more than was sent is not its refund: {error}");
        assert!(refund_counts("0xab", "ETH", &mut vec![part(1, 99)], &rule(100)).is_ok(), "a partial refund is credited as such");

        let mut mixed = vec![part(1, 100), part(2, 5)];
        assert!(refund_counts("0xab", "ETH", &mut mixed, &rule(100)).is_ok());
        assert_eq!(mixed, vec![part(1, 100)], "only ChangeNow's part is credited");

        let none = Refund { senders: &[], amount: U256::from(100) };
        assert!(refund_counts("0xab", "ETH", &mut vec![part(1, 100)], &none)
            .unwrap_err()
            .to_string()
            .contains("CHANGENOW_SENDER_ADDRESSES"));
    }
}
