//! What a transaction of the hot wallet actually moved, read from the chain alone: the
//! reconciliation holds the outbox's records against it.

use super::outbox::{rpc, token_transfers, Asset, HotWallet, HotWalletError};
use alloy::{
    consensus::Transaction as _,
    network::TransactionResponse as _,
    primitives::{Address, TxHash, U256},
    providers::Provider,
};
use std::str::FromStr;

/// A mined transaction sent by the hot wallet, and what it paid out of it in one asset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MinedOutgoing {
    pub block: u64,
    /// `false`: reverted; nothing but gas left the wallet.
    pub succeeded: bool,
    /// Every payment of the asset out of the hot wallet: `(recipient, base units)`.
    pub payments: Vec<(Address, U256)>,
}

impl HotWallet {
    /// `None` when `tx_hash` is not mined (or unknown to the node).
    pub async fn mined_outgoing(&self, tx_hash: &str, asset: Asset) -> Result<Option<MinedOutgoing>, HotWalletError> {
        let hash = TxHash::from_str(tx_hash).map_err(|_| HotWalletError::BadAddress(tx_hash.to_owned()))?;
        let Some(receipt) = self.provider.get_transaction_receipt(hash).await.map_err(rpc)? else {
            return Ok(None);
        };
        let block = receipt.block_number.unwrap_or_default();
        if !receipt.status() {
            return Ok(Some(MinedOutgoing { block, succeeded: false, payments: Vec::new() }));
        }
        let me = self.address();
        let payments = match asset {
            Asset::Eth => {
                let tx = self.provider.get_transaction_by_hash(hash).await.map_err(rpc)?;
                match tx {
                    Some(tx) if tx.from() == me && !tx.value().is_zero() => tx.to().map(|to| vec![(to, tx.value())]).unwrap_or_default(),
                    _ => Vec::new(),
                }
            }
            Asset::Erc20(contract) => {
                token_transfers(&receipt, contract).filter(|(from, _, _)| *from == me).map(|(_, to, value)| (to, value)).collect()
            }
        };
        Ok(Some(MinedOutgoing { block, succeeded: true, payments }))
    }
}
