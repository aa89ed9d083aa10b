//! The Ethereum hot wallet: exactly-once ETH and ERC-20 transfers through a Postgres outbox,
//! and the `ethereum.*` activities on top of it.
//!
//! A transfer is identified by its purpose key (a business id). [`HotWallet::prepare_transfer`]
//! takes a nonce, signs and stores the raw bytes before anything is broadcast;
//! [`HotWallet::broadcast`] re-sends the stored bytes (a retry sends the same transaction);
//! [`HotWallet::check`] waits for the configured confirmations and, when the transaction is
//! stuck and underpriced against the current base fee, signs a replacement with the same nonce
//! and fees at least 12.5 % higher, never above `MAX_FEE_GWEI` (reaching it raises an alert and
//! leaves the transaction as it is). All attempts of one purpose key share one nonce, so two of
//! them can never both land. An intent abandoned unsent by its run is cancelled at its nonce, and
//! the `outbox-watch` schedule checks every open intent until it ends ([`intent_watch`]).
//!
//! The key must belong to the outbox alone: a transaction sent with it from elsewhere would
//! take a nonce the outbox does not know about. anvil's public dev keys are refused on any chain
//! but anvil's ([`dev_accounts`]).

pub mod activities;
mod chain_audit;
pub mod chain_binding;
mod credits;
pub mod dev_accounts;
/// Public so the sandbox's treasury follows the same fee rules.
pub mod fee_bump;
mod intent_watch;
mod nonce_gap;
mod outbox;

pub use activities::EthereumActivities;
pub use chain_audit::MinedOutgoing;
pub use chain_binding::ChainIdentity;
pub use credits::{Credit, Refund};
pub use nonce_gap::NonceGap;
pub use outbox::{
    balance_of, erc20_transfer_calldata, Asset, HotWallet, HotWalletError, IncomingState, OutboxSettings, TransferRequest, TransferState,
    ERC20_TRANSFER_SELECTOR,
};
