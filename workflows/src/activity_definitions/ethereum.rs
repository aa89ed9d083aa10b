//! `ethereum.*`: the hot wallet, through the outbox. Retryable: node or database away, wallet
//! short of funds. Non-retryable: a malformed address or amount, a purpose key reused for a
//! different transfer, a transfer that reverted.
#![allow(unused_variables)]

use crate::domain::ChainAsset;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use temporalio_macros::activity_definitions;
use temporalio_sdk::activities::ActivityError;

pub use self::ethereum::{
    AwaitTransferSettled, CheckTransfer, FindIncomingTransfer, HotWalletAddress, MarkTransferUnconfirmed, ReadHotWalletBalances,
    SendTransfer, WatchOpenTransfers,
};

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
    /// Final: mined and reverted; nothing but gas left the hot wallet.
    Reverted { tx_hash: String },
    /// Final: abandoned unsent by an earlier run and cancelled by the outbox at its nonce; nothing
    /// left the hot wallet.
    Cancelled { tx_hash: String },
}

impl TransferProgress {
    /// Confirmed, reverted or cancelled: nothing more will happen to it.
    pub fn is_final(&self) -> bool {
        matches!(self, Self::Confirmed { .. } | Self::Reverted { .. } | Self::Cancelled { .. })
    }
}

/// One polling step: the transfer of `purpose_key` is checked until it is final or
/// `budget_secs` have passed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferWatch {
    pub purpose_key: String,
    pub budget_secs: u64,
}

/// A transfer past its run's deadline, to be recorded sent-unconfirmed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnconfirmedTransfer {
    pub purpose_key: String,
    /// How long its run has waited since sending it.
    pub waited_secs: u64,
}

/// One pass of the outbox watch: open intents older than `min_age_secs`, at most `limit`, for at
/// most `budget_secs` (the rest waits for the next pass).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxWatchRequest {
    pub min_age_secs: u64,
    pub limit: i64,
    pub budget_secs: u64,
}

/// What one pass of the outbox watch found, by how each open intent stands now.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxWatchReport {
    pub checked: u32,
    pub confirmed: u32,
    pub cancelled: u32,
    pub reverted: u32,
    pub still_open: u32,
    /// Not checked this pass (node or database away); the next pass tries again.
    pub errors: u32,
}

/// What one transaction paid the hot wallet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncomingTransferQuery {
    pub tx_hash: String,
    pub asset: ChainAsset,
}

impl IncomingTransferQuery {
    /// The same question, counting only what `sender` paid.
    pub fn from_sender(self, sender: impl Into<String>) -> IncomingTransferMatch {
        IncomingTransferMatch { expected_sender: Some(sender.into()), ..self.into() }
    }

    /// What the transaction paid the hot wallet, credited once to `credited_to` (see
    /// [`IncomingCredit`]): another purpose claiming it later is refused.
    pub fn credited_to(self, credited_to: impl Into<String>) -> IncomingTransferMatch {
        IncomingTransferMatch { credit: Some(IncomingCredit { credited_to: credited_to.into(), refund_of: None }), ..self.into() }
    }

    /// A refund of an exchange that was sent `amount`: it counts only from ChangeNow's own
    /// senders (`CHANGENOW_SENDER_ADDRESSES`) and never for more than `amount`; credited once to
    /// `credited_to`.
    pub fn refund_credited_to(self, credited_to: impl Into<String>, amount: Decimal) -> IncomingTransferMatch {
        IncomingTransferMatch { credit: Some(IncomingCredit { credited_to: credited_to.into(), refund_of: Some(amount) }), ..self.into() }
    }
}

/// What an incoming transfer is credited to, in the table of credited incoming transfers: one
/// purpose per transfer (`conversion:{batch}`, `conversion_refund:{batch}`,
/// `payout_refund:{transfer purpose key}`, `instant_refund:{payment id}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncomingCredit {
    pub credited_to: String,
    /// A refund: the amount the exchange was sent (never credited for more).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_of: Option<Decimal>,
}

/// The input of `ethereum.find_incoming_transfer`: an [`IncomingTransferQuery`] (which converts
/// into it, so existing callers are unchanged) and, optionally, the one sender whose payment
/// counts. Only a confirmed transaction counts (`ETH_CONFIRMATIONS`), and only what it paid the
/// hot wallet from someone else.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncomingTransferMatch {
    pub tx_hash: String,
    pub asset: ChainAsset,
    /// A checksummed or lower-case address; `None` accepts any sender. Absent from inputs
    /// recorded before it existed, and left out when `None`, so those payloads stay as they were.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_sender: Option<String>,
    /// Credit the transfer once to a purpose (absent from inputs recorded before credits existed:
    /// those only read). Not combined with `expected_sender`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credit: Option<IncomingCredit>,
}

impl From<IncomingTransferQuery> for IncomingTransferMatch {
    fn from(query: IncomingTransferQuery) -> Self {
        Self { tx_hash: query.tx_hash, asset: query.asset, expected_sender: None, credit: None }
    }
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

    /// Checks the transfer every few seconds (replacing it when stuck, as `check_transfer` does),
    /// heartbeating, until it is final or the watch's budget is spent; returns the last progress
    /// either way.
    #[activity(name = "ethereum.await_transfer_settled")]
    pub fn await_transfer_settled(watch: TransferWatch) -> Result<TransferProgress, ActivityError> {
        unimplemented!()
    }

    /// Records a transfer past its run's deadline as sent-unconfirmed, with one alert (settled
    /// when it ends). Not a failure: it may still land.
    #[activity(name = "ethereum.mark_transfer_unconfirmed")]
    pub fn mark_transfer_unconfirmed(transfer: UnconfirmedTransfer) -> Result<(), ActivityError> {
        unimplemented!()
    }

    /// The outbox watch: checks open intents until they end, cancels those abandoned unsent.
    #[activity(name = "ethereum.watch_open_transfers")]
    pub fn watch_open_transfers(request: OutboxWatchRequest) -> Result<OutboxWatchReport, ActivityError> {
        unimplemented!()
    }

    /// The hot wallet's ETH and USDT and the next base fee, for the alert rules and the metrics.
    #[activity(name = "ethereum.hot_wallet_balances")]
    pub fn read_hot_wallet_balances(unit: ()) -> Result<super::HotWalletBalances, ActivityError> {
        unimplemented!()
    }

    /// The hot wallet's address (where ChangeNow pays converted USDT).
    #[activity(name = "ethereum.hot_wallet_address")]
    pub fn hot_wallet_address(unit: ()) -> Result<String, ActivityError> {
        unimplemented!()
    }

    /// Reads a mined transaction (a refund, a payout) and what it paid the hot wallet (from the
    /// expected sender, when one is given). Retried until the transaction has its confirmations.
    #[activity(name = "ethereum.find_incoming_transfer")]
    pub fn find_incoming_transfer(query: IncomingTransferMatch) -> Result<IncomingTransfer, ActivityError> {
        unimplemented!()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_expected_sender_is_optional_on_the_wire() {
        let recorded = r#"{"tx_hash":"0xab","asset":"usdt"}"#;
        let read: IncomingTransferMatch = serde_json::from_str(recorded).unwrap();
        assert_eq!(read, IncomingTransferMatch { tx_hash: "0xab".into(), asset: ChainAsset::Usdt, expected_sender: None, credit: None });
        assert_eq!(serde_json::to_string(&read).unwrap(), recorded, "payloads without a sender are unchanged");
        let query = IncomingTransferQuery { tx_hash: "0xab".into(), asset: ChainAsset::Usdt };
        assert_eq!(
            query.from_sender("0x70997970C51812dc3A010C7d01b50e0d17dc79C8").expected_sender.as_deref(),
            Some("0x70997970C51812dc3A010C7d01b50e0d17dc79C8")
        );
    }
}
