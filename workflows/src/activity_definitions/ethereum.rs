//! `ethereum.*`: the hot wallet, through the outbox. Retryable: node or database away, wallet
//! short of funds. Non-retryable: a malformed address or amount, a purpose key reused for a
//! different transfer, a transfer that reverted.
#![allow(unused_variables)]

use crate::domain::ChainAsset;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use temporalio_macros::activity_definitions;
use temporalio_sdk::activities::ActivityError;

pub use self::ethereum::{CheckTransfer, FindIncomingTransfer, HotWalletAddress, SendTransfer};

/// A transfer out of the hot wallet, made exactly once per purpose key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferOrder {
    pub purpose_key: String,
    pub asset: ChainAsset,
    pub to: String,
    /// Exact in the asset's base units (refused otherwise).
    pub amount: Decimal,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum TransferProgress {
    /// Not mined yet (possibly just replaced with higher fees).
    Pending { tx_hash: String, replaced: bool },
    /// Mined, waiting for more blocks.
    Mined { tx_hash: String, confirmations: u64 },
    /// Final.
    Confirmed { tx_hash: String, block: u64 },
}

/// What one transaction paid the hot wallet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncomingTransferQuery {
    pub tx_hash: String,
    pub asset: ChainAsset,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncomingTransfer {
    pub tx_hash: String,
    /// Zero when the transaction paid the hot wallet nothing of `asset`.
    pub amount: Decimal,
    pub block: u64,
}

pub struct Ethereum;

#[activity_definitions]
impl Ethereum {
    /// Signs and stores the transfer (once per purpose key), then broadcasts the stored bytes.
    /// Returns the hash of the transaction sent.
    #[activity(name = "ethereum.send_transfer")]
    pub fn send_transfer(order: TransferOrder) -> Result<String, ActivityError> {
        unimplemented!()
    }

    /// Receipt and confirmations of the transfer; replaces it when stuck.
    #[activity(name = "ethereum.check_transfer")]
    pub fn check_transfer(purpose_key: String) -> Result<TransferProgress, ActivityError> {
        unimplemented!()
    }

    /// The hot wallet's address (where ChangeNow pays converted USDT).
    #[activity(name = "ethereum.hot_wallet_address")]
    pub fn hot_wallet_address(unit: ()) -> Result<String, ActivityError> {
        unimplemented!()
    }

    /// Reads a mined transaction (a refund, a payout) and what it paid the hot wallet. Retried
    /// until the transaction is mined.
    #[activity(name = "ethereum.find_incoming_transfer")]
    pub fn find_incoming_transfer(query: IncomingTransferQuery) -> Result<IncomingTransfer, ActivityError> {
        unimplemented!()
    }
}
