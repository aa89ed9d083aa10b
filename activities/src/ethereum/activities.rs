//! The `ethereum.*` activities: the workflows' view of the [`HotWallet`] outbox. Amounts cross
//! here from `Decimal` to integer base units, exactly or not at all.

use super::{Asset, Credit, HotWallet, HotWalletError, IncomingState, Refund, TransferRequest, TransferState};
use crate::polling::poll_until_final;
use alloy::primitives::{Address, U256};
use rust_decimal::Decimal;
use std::{str::FromStr, sync::Arc, time::Duration};
use temporalio_common::error::ApplicationFailure;
use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};
use tracing::warn;
use workflows::{
    activity_definitions::{
        AwaitTransferSettled, CheckTransfer, FindIncomingTransfer, HotWalletAddress, HotWalletBalances, IncomingTransfer,
        IncomingTransferMatch, MarkTransferUnconfirmed, OutboxWatchReport, OutboxWatchRequest, ReadHotWalletBalances, SendTransfer,
        TransferOrder, TransferProgress, TransferWatch, UnconfirmedTransfer, WatchOpenTransfers,
    },
    domain::{from_base_units, to_base_units, BaseUnitError, ChainAsset},
};

#[derive(Debug, thiserror::Error)]
pub enum EthereumActivityError {
    #[error(transparent)]
    Wallet(#[from] HotWalletError),
    #[error(transparent)]
    Amount(#[from] BaseUnitError),
    #[error("a USDT transfer was requested but USDT_CONTRACT is not configured")]
    NoUsdtContract,
    #[error("a USDC transfer was requested but USDC_CONTRACT is not configured")]
    NoUsdcContract,
    #[error("transaction {0} is not mined yet")]
    NotMinedYet(String),
    #[error("transaction {tx_hash} has {confirmations} of {required} confirmations; not counted yet")]
    NotConfirmedYet { tx_hash: String, confirmations: u64, required: u64 },
}

impl EthereumActivityError {
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Wallet(e) => e.is_retryable(),
            // Retried until the chain gets there.
            Self::NotMinedYet(_) | Self::NotConfirmedYet { .. } => true,
            Self::Amount(_) | Self::NoUsdtContract | Self::NoUsdcContract => false,
        }
    }

    fn into_activity_error(self) -> ActivityError {
        let retryable = self.is_retryable();
        if !retryable {
            warn!(error = %self, alert = true, "hot wallet step failed for good");
        } else if matches!(self, Self::Wallet(HotWalletError::InsufficientFunds { .. })) {
            warn!(error = %self, alert = true, "hot wallet is short of funds; retrying until it is topped up");
        } else if matches!(self, Self::Wallet(HotWalletError::ForeignChain { .. })) {
            warn!(error = %self, alert = true, "ETH_RPC_URL is not this database's chain; nothing signed, retrying");
        }
        ActivityError::application(if retryable { ApplicationFailure::new(self) } else { ApplicationFailure::non_retryable(self) })
    }
}

pub struct EthereumActivities {
    wallet: Arc<HotWallet>,
    usdt_contract: Option<Address>,
    usdc_contract: Option<Address>,
    /// `CHANGENOW_SENDER_ADDRESSES`: the only senders whose refunds count.
    changenow_senders: Vec<Address>,
    kill_after_broadcast: bool,
}

impl EthereumActivities {
    pub fn new(wallet: Arc<HotWallet>, usdt_contract: Option<Address>) -> Self {
        Self { wallet, usdt_contract, usdc_contract: None, changenow_senders: Vec::new(), kill_after_broadcast: false }
    }

    /// The addresses ChangeNow pays out and refunds from (`CHANGENOW_SENDER_ADDRESSES`); without
    /// them no refund is credited.
    pub fn with_changenow_senders(mut self, senders: Vec<Address>) -> Self {
        self.changenow_senders = senders;
        self
    }

    /// The alternative settlement stablecoin's token (`USDC_CONTRACT`).
    pub fn with_usdc_contract(mut self, usdc_contract: Option<Address>) -> Self {
        self.usdc_contract = usdc_contract;
        self
    }

    /// See `Config::fault_kill_after_broadcast`.
    pub fn killing_the_process_after_broadcast(mut self, enabled: bool) -> Self {
        self.kill_after_broadcast = enabled;
        self
    }

    fn asset(&self, asset: ChainAsset) -> Result<Asset, EthereumActivityError> {
        match asset {
            ChainAsset::Eth => Ok(Asset::Eth),
            ChainAsset::Usdt => self.usdt_contract.map(Asset::Erc20).ok_or(EthereumActivityError::NoUsdtContract),
            ChainAsset::Usdc => self.usdc_contract.map(Asset::Erc20).ok_or(EthereumActivityError::NoUsdcContract),
        }
    }

    async fn send(&self, order: TransferOrder) -> Result<String, EthereumActivityError> {
        let request = TransferRequest {
            purpose_key: order.purpose_key,
            asset: self.asset(order.asset)?,
            to: order.to,
            amount: U256::from(to_base_units(order.amount, order.asset)?),
        };
        self.wallet.prepare_transfer(&request).await?;
        let tx_hash = self.wallet.broadcast(&request.purpose_key).await?;
        if self.kill_after_broadcast {
            warn!(purpose_key = %request.purpose_key, %tx_hash, "fault injection: SIGKILL after broadcast");
            let _ = std::process::Command::new("kill").args(["-9", &std::process::id().to_string()]).status();
        }
        Ok(tx_hash)
    }

    /// What `query.tx_hash` paid the hot wallet, once confirmed; retryably refused before.
    pub async fn incoming(&self, query: IncomingTransferMatch) -> Result<IncomingTransfer, EthereumActivityError> {
        let asset = self.asset(query.asset)?;
        let sender = match query.expected_sender.as_deref() {
            None => None,
            Some(text) => Some(Address::from_str(text.trim()).map_err(|_| HotWalletError::BadAddress(text.to_owned()))?),
        };
        let state = match &query.credit {
            None => self.wallet.incoming(&query.tx_hash, asset, sender).await?,
            Some(credit) => {
                let refund = match credit.refund_of {
                    Some(amount) => {
                        Some(Refund { senders: &self.changenow_senders, amount: U256::from(to_base_units(amount, query.asset)?) })
                    }
                    None => None,
                };
                let credit = Credit { credited_to: &credit.credited_to, refund };
                self.wallet.credit_incoming(&query.tx_hash, asset, &credit).await?
            }
        };
        let (amount, block) = match state {
            IncomingState::Confirmed { amount, block } => (amount, block),
            IncomingState::NotMined => return Err(EthereumActivityError::NotMinedYet(query.tx_hash)),
            IncomingState::Unconfirmed { confirmations, required, .. } => {
                return Err(EthereumActivityError::NotConfirmedYet { tx_hash: query.tx_hash, confirmations, required })
            }
        };
        let units = u128::try_from(amount).map_err(|_| BaseUnitError::TooLarge(u128::MAX))?;
        Ok(IncomingTransfer { tx_hash: query.tx_hash, amount: from_base_units(units, query.asset)?, block })
    }
}

impl EthereumActivities {
    /// The transfer's receipt and confirmations, replacing it when stuck.
    async fn progress(&self, purpose_key: &str) -> Result<TransferProgress, EthereumActivityError> {
        let state = match self.wallet.check(purpose_key).await {
            Ok(state) => state,
            // An answer, not a failure: the workflow decides what a transfer that moved nothing means.
            Err(HotWalletError::Reverted { tx_hash, .. }) => return Ok(TransferProgress::Reverted { tx_hash }),
            Err(e) => return Err(e.into()),
        };
        Ok(match state {
            TransferState::Pending { latest_tx_hash, replaced } => TransferProgress::Pending { tx_hash: latest_tx_hash, replaced },
            TransferState::Mined { tx_hash, confirmations } => TransferProgress::Mined { tx_hash, confirmations },
            TransferState::Confirmed { tx_hash, block } => TransferProgress::Confirmed { tx_hash, block },
            TransferState::Cancelled { tx_hash, .. } => TransferProgress::Cancelled { tx_hash },
        })
    }
}

#[activities]
impl EthereumActivities {
    #[activity(definition = SendTransfer)]
    pub async fn send_transfer(self: Arc<Self>, _ctx: ActivityContext, order: TransferOrder) -> Result<String, ActivityError> {
        self.send(order).await.map_err(EthereumActivityError::into_activity_error)
    }

    #[activity(definition = CheckTransfer)]
    pub async fn check_transfer(self: Arc<Self>, _ctx: ActivityContext, purpose_key: String) -> Result<TransferProgress, ActivityError> {
        self.progress(&purpose_key).await.map_err(EthereumActivityError::into_activity_error)
    }

    #[activity(definition = AwaitTransferSettled)]
    pub async fn await_transfer_settled(
        self: Arc<Self>,
        ctx: ActivityContext,
        watch: TransferWatch,
    ) -> Result<TransferProgress, ActivityError> {
        let budget = Duration::from_secs(watch.budget_secs);
        poll_until_final(
            &ctx,
            budget,
            || self.progress(&watch.purpose_key),
            TransferProgress::is_final,
            EthereumActivityError::is_retryable,
        )
        .await
        .map_err(EthereumActivityError::into_activity_error)
    }

    #[activity(definition = MarkTransferUnconfirmed)]
    pub async fn mark_transfer_unconfirmed(
        self: Arc<Self>,
        _ctx: ActivityContext,
        transfer: UnconfirmedTransfer,
    ) -> Result<(), ActivityError> {
        let waited = Duration::from_secs(transfer.waited_secs);
        self.wallet.mark_unconfirmed(&transfer.purpose_key, waited).await.map_err(|e| EthereumActivityError::from(e).into_activity_error())
    }

    #[activity(definition = WatchOpenTransfers)]
    pub async fn watch_open_transfers(
        self: Arc<Self>,
        ctx: ActivityContext,
        request: OutboxWatchRequest,
    ) -> Result<OutboxWatchReport, ActivityError> {
        let (min_age, budget) = (Duration::from_secs(request.min_age_secs), Duration::from_secs(request.budget_secs));
        let ctx = Arc::new(ctx);
        let heartbeat = move || {
            let ctx = ctx.clone();
            // A lost heartbeat only risks a retry of the pass, which is idempotent.
            async move {
                let _ = ctx.record_heartbeat(()).await;
            }
        };
        self.wallet
            .watch_open_transfers(min_age, request.limit, budget, heartbeat)
            .await
            .map_err(|e| EthereumActivityError::from(e).into_activity_error())
    }

    #[activity(definition = ReadHotWalletBalances)]
    pub async fn read_hot_wallet_balances(self: Arc<Self>, _ctx: ActivityContext, _unit: ()) -> Result<HotWalletBalances, ActivityError> {
        let read = async {
            let eth = self.wallet.balance(Asset::Eth).await?;
            let base_fee = self.wallet.next_base_fee().await?;
            let usdt = match self.usdt_contract {
                Some(contract) => Some(self.wallet.balance(Asset::Erc20(contract)).await?),
                None => None,
            };
            let usdc = match self.usdc_contract {
                Some(contract) => Some(self.wallet.balance(Asset::Erc20(contract)).await?),
                None => None,
            };
            Ok::<_, HotWalletError>((eth, base_fee, usdt, usdc))
        };
        let (eth, base_fee, usdt, usdc) = read.await.map_err(|e| EthereumActivityError::from(e).into_activity_error())?;
        let decimal = |v: U256| Decimal::from_str(&v.to_string()).unwrap_or(Decimal::MAX);
        Ok(HotWalletBalances {
            eth_wei: decimal(eth),
            base_fee_wei: Decimal::from(base_fee),
            usdt_base_units: usdt.map(decimal),
            usdc_base_units: usdc.map(decimal),
        })
    }

    #[activity(definition = HotWalletAddress)]
    pub async fn hot_wallet_address(self: Arc<Self>, _ctx: ActivityContext, _unit: ()) -> Result<String, ActivityError> {
        Ok(self.wallet.address().to_checksum(None))
    }

    #[activity(definition = FindIncomingTransfer)]
    pub async fn find_incoming_transfer(
        self: Arc<Self>,
        _ctx: ActivityContext,
        query: IncomingTransferMatch,
    ) -> Result<IncomingTransfer, ActivityError> {
        self.incoming(query).await.map_err(EthereumActivityError::into_activity_error)
    }
}
