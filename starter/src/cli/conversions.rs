//! `starter conversion resume|return-rows <batch_id>`: the operator's two ways out of a
//! conversion batch that failed with its rows kept (its ETH left the hot wallet).
//!
//! Both look at ChangeNow and the chain before touching the ledger: `resume` completes the batch
//! when its exchange finished late (ChangeNow's `verifying` or `hold` can last days) and the USDT
//! is seen on chain; `return-rows` returns the rows to the pool only when the refund of the full
//! amount is seen on chain, unless forced. Both credit what they count once, as the conversion
//! workflow does: a transaction already counted for something else is refused.

use activities::{
    changenow::ChangeNowClient,
    db::conversion_ledger::{self, FailedBatchView},
    ethereum::{Asset, Credit, HotWallet, IncomingState, Refund},
};
use alloy::primitives::Address;
use sqlx::PgPool;
use uuid::Uuid;
use workflows::{
    activity_definitions::{ConvertedBatch, SeenRefund},
    domain::{from_base_units, to_base_units, ChainAsset, ExchangeStatus, Stablecoin},
};

#[derive(Debug, thiserror::Error)]
pub enum ConversionCommandError {
    #[error("there is no conversion batch {0}")]
    UnknownBatch(Uuid),
    #[error("batch {batch_id} is '{status}'; only a failed batch can be recovered")]
    NotFailed { batch_id: Uuid, status: String },
    #[error("batch {0} has no ChangeNow exchange; nothing was sent, so it cannot have finished late")]
    NoExchange(Uuid),
    #[error("batch {0} already returned its rows to the pool; they were converted by a later batch")]
    RowsReleased(Uuid),
    #[error("ChangeNow: {0}")]
    ChangeNow(String),
    #[error("Ethereum node: {0}")]
    Chain(String),
    #[error("batch {0} converted into USDC but USDC_CONTRACT is not set")]
    NoUsdcContract(Uuid),
    #[error(transparent)]
    Ledger(#[from] conversion_ledger::ConversionLedgerError),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

/// What `resume` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResumeOutcome {
    /// The exchange finished and its USDT is on chain: the batch is `completed`, split exactly.
    Completed { usdt_received: rust_decimal::Decimal, usdt_tx_hash: String },
    /// Not final yet, or ended without paying: nothing changed.
    NotFinished { status: String },
}

/// The parts `resume` and `return-rows` read.
pub struct Recovery<'a> {
    pub pool: &'a PgPool,
    pub changenow: &'a ChangeNowClient,
    pub hot_wallet: &'a HotWallet,
    pub usdt_contract: Address,
    /// `USDC_CONTRACT`, for batches that converted into USDC.
    pub usdc_contract: Option<Address>,
    /// `CHANGENOW_SENDER_ADDRESSES`: a refund counts only from these.
    pub changenow_senders: &'a [Address],
}

impl Recovery<'_> {
    async fn failed_batch(&self, batch_id: Uuid) -> Result<FailedBatchView, ConversionCommandError> {
        let batch = conversion_ledger::find_batch(self.pool, batch_id).await?.ok_or(ConversionCommandError::UnknownBatch(batch_id))?;
        if batch.conversion_status != "failed" {
            return Err(ConversionCommandError::NotFailed { batch_id, status: batch.conversion_status });
        }
        if batch.rows_released {
            return Err(ConversionCommandError::RowsReleased(batch_id));
        }
        Ok(batch)
    }

    /// Polls the batch's stored exchange once; completes the batch if it finished and its USDT
    /// reached the hot wallet.
    pub async fn resume(&self, batch_id: Uuid) -> Result<ResumeOutcome, ConversionCommandError> {
        let batch = self.failed_batch(batch_id).await?;
        let exchange_id = batch.cn_api_id.ok_or(ConversionCommandError::NoExchange(batch_id))?;
        let exchange = self.changenow.exchange_status(&exchange_id).await.map_err(|e| ConversionCommandError::ChangeNow(e.to_string()))?;
        let (ExchangeStatus::Finished, Some(usdt_tx_hash)) = (&exchange.status, exchange.payout_hash.clone()) else {
            return Ok(ResumeOutcome::NotFinished { status: exchange.status.to_string() });
        };
        // The stablecoin the batch converted into, as claimed: its payout is looked up on that token.
        let coin: String = sqlx::query_scalar("SELECT settlement_coin FROM batch_conversions WHERE batch_conversion_id = $1")
            .bind(batch_id)
            .fetch_one(self.pool)
            .await?;
        let coin = conversion_ledger::stored_coin(&coin);
        let contract = match coin {
            Stablecoin::Usdt => self.usdt_contract,
            Stablecoin::Usdc => self.usdc_contract.ok_or(ConversionCommandError::NoUsdcContract(batch_id))?,
        };
        let credited_to = format!("conversion:{batch_id}");
        let seen = self
            .hot_wallet
            .credit_incoming(&usdt_tx_hash, Asset::Erc20(contract), &Credit { credited_to: &credited_to, refund: None })
            .await
            .map_err(|e| ConversionCommandError::Chain(e.to_string()))?;
        let symbol = coin.asset().symbol();
        let units = match seen {
            IncomingState::Confirmed { amount, .. } if !amount.is_zero() => amount,
            IncomingState::Confirmed { .. } => {
                return Ok(ResumeOutcome::NotFinished { status: format!("finished, but {usdt_tx_hash} paid the hot wallet no {symbol}") })
            }
            IncomingState::NotMined | IncomingState::Unconfirmed { .. } => {
                return Ok(ResumeOutcome::NotFinished { status: format!("finished, but {usdt_tx_hash} is not confirmed yet") })
            }
        };
        let units = u128::try_from(units).map_err(|_| ConversionCommandError::Chain(format!("{units} {symbol} units overflow")))?;
        let usdt_received = from_base_units(units, coin.asset()).map_err(|e| ConversionCommandError::Chain(e.to_string()))?;
        let converted = ConvertedBatch { batch_id: batch_id.to_string(), exchange_id, usdt_tx_hash: usdt_tx_hash.clone(), usdt_received };
        conversion_ledger::complete_late(self.pool, &converted).await?;
        Ok(ResumeOutcome::Completed { usdt_received, usdt_tx_hash })
    }

    /// Returns the rows to the pool when the exchange's refund of the full amount is seen on
    /// chain, or when `force`d. Returns the rows returned and what was found.
    pub async fn return_rows(&self, batch_id: Uuid, force: bool) -> Result<(u64, String), ConversionCommandError> {
        let batch = self.failed_batch(batch_id).await?;
        let (refund, found) = match &batch.cn_api_id {
            Some(exchange_id) => match self.refund_seen(exchange_id, batch_id, batch.total_eth).await? {
                Ok(r) => {
                    let found = format!("refund {} returned {} ETH on chain, the batch's amount", r.tx_hash, r.amount_eth.normalize());
                    (Some(r), found)
                }
                Err(why) => (None, why),
            },
            None => (None, "the batch has no exchange".to_owned()),
        };
        let returned = match conversion_ledger::return_recovered_rows(self.pool, batch_id, refund.as_ref(), force).await {
            // Say why the refund did not count beside why the rows stay.
            Err(conversion_ledger::ConversionLedgerError::NotRecovered { batch_id, reason }) => {
                return Err(
                    conversion_ledger::ConversionLedgerError::NotRecovered { batch_id, reason: format!("{reason} ({found})") }.into()
                )
            }
            other => other?,
        };
        Ok((returned, found))
    }

    /// The refund ChangeNow reports for the exchange, credited to the batch when it counts (from
    /// ChangeNow's senders, for at most the batch's ETH, not counted for anything else); why not,
    /// otherwise.
    async fn refund_seen(
        &self,
        exchange_id: &str,
        batch_id: Uuid,
        batch_eth: rust_decimal::Decimal,
    ) -> Result<Result<SeenRefund, String>, ConversionCommandError> {
        let exchange = self.changenow.exchange_status(exchange_id).await.map_err(|e| ConversionCommandError::ChangeNow(e.to_string()))?;
        let Some(tx_hash) = exchange.refund_hash else { return Ok(Err(format!("ChangeNow reports no refund of exchange {exchange_id}"))) };
        let amount = to_base_units(batch_eth, ChainAsset::Eth).map_err(|e| ConversionCommandError::Chain(e.to_string()))?;
        let credited_to = format!("conversion_refund:{batch_id}");
        let credit = Credit {
            credited_to: &credited_to,
            refund: Some(Refund { senders: self.changenow_senders, amount: alloy::primitives::U256::from(amount) }),
        };
        let seen = match self.hot_wallet.credit_incoming(&tx_hash, Asset::Eth, &credit).await {
            Ok(seen) => seen,
            Err(
                e @ (activities::ethereum::HotWalletError::RefundNotCounted { .. }
                | activities::ethereum::HotWalletError::AlreadyCredited { .. }),
            ) => return Ok(Err(e.to_string())),
            Err(e) => return Err(ConversionCommandError::Chain(e.to_string())),
        };
        let IncomingState::Confirmed { amount: wei, .. } = seen else {
            return Ok(Err(format!("refund {tx_hash} is not confirmed on chain yet")));
        };
        let wei = u128::try_from(wei).map_err(|_| ConversionCommandError::Chain(format!("{wei} wei overflow")))?;
        let amount_eth = from_base_units(wei, ChainAsset::Eth).map_err(|e| ConversionCommandError::Chain(e.to_string()))?;
        Ok(Ok(SeenRefund { tx_hash, amount_eth }))
    }
}
