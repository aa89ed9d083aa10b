//! The simulator's view of the chain: it finds deposits to the pay-in addresses it handed out
//! (ETH transfers, and `transfer` calls of the USDT contract) and pays out of its own funded
//! treasury account. Coins that do not live on this chain (XMR, BTC) get a simulated payout
//! hash instead of a transaction.

use crate::treasury_fees::{nonce_taken, refused_for_fee, treasury_fees};
use activities::ethereum::{erc20_transfer_calldata, fee_bump::GasFees, ERC20_TRANSFER_SELECTOR};
use alloy::{
    consensus::Transaction as _,
    eips::BlockNumberOrTag,
    network::{EthereumWallet, TransactionBuilder, TransactionResponse as _},
    primitives::{Address, TxHash, U256},
    providers::{DynProvider, Provider, ProviderBuilder, RootProvider},
    rpc::types::TransactionRequest,
    signers::local::PrivateKeySigner,
};
use rust_decimal::Decimal;
use std::{collections::HashSet, str::FromStr, time::Duration};
use tracing::warn;
use workflows::domain::{from_base_units, to_base_units, ChainAsset};

#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    #[error("Ethereum node: {0}")]
    Rpc(String),
    #[error("{0}")]
    Invalid(String),
}

fn rpc(e: impl std::fmt::Display) -> ChainError {
    ChainError::Rpc(e.to_string())
}

/// A deposit seen in a mined, successful transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deposit {
    pub to: Address,
    pub coin: &'static str,
    pub amount: Decimal,
    pub tx_hash: String,
}

pub struct Chain {
    reader: RootProvider,
    treasury: DynProvider,
    treasury_address: Address,
    usdt: Option<Address>,
    usdc: Option<Address>,
    /// One treasury transaction at a time, so each takes the next nonce.
    sending: tokio::sync::Mutex<()>,
}

/// How long an attempt may stay unmined before it is re-signed with more.
const STUCK_AFTER: Duration = Duration::from_secs(12);
/// Refusals of a transfer none of whose attempts the node took before it is given up (and
/// tried again by the lifecycle). Once an attempt is in the pool it is never given up: a later
/// transfer at the next nonce could otherwise pay twice what the lifecycle counts as failed.
const MAX_REFUSALS: u32 = 10;

impl Chain {
    pub async fn connect(rpc_url: &str, treasury_key: &str, usdt: Option<Address>) -> Result<Self, ChainError> {
        let url: alloy::transports::http::reqwest::Url =
            rpc_url.parse().map_err(|_| ChainError::Invalid(format!("'{rpc_url}' is not a URL")))?;
        let signer = PrivateKeySigner::from_str(treasury_key.trim())
            .map_err(|_| ChainError::Invalid("the treasury key is not a valid secp256k1 key".into()))?;
        let treasury_address = signer.address();
        let reader = RootProvider::new_http(url.clone());
        reader.get_chain_id().await.map_err(rpc)?;
        let treasury = ProviderBuilder::new().wallet(EthereumWallet::from(signer)).connect_http(url).erased();
        Ok(Self { reader, treasury, treasury_address, usdt, usdc: None, sending: tokio::sync::Mutex::new(()) })
    }

    /// The test USDC (`USDC_CONTRACT`), paid and watched like USDT.
    pub fn with_usdc(mut self, usdc: Option<Address>) -> Self {
        self.usdc = usdc;
        self
    }

    fn token(&self, coin: &str) -> Option<(Address, ChainAsset)> {
        match coin {
            "usdt" => self.usdt.map(|a| (a, ChainAsset::Usdt)),
            "usdc" => self.usdc.map(|a| (a, ChainAsset::Usdc)),
            _ => None,
        }
    }

    pub fn treasury_address(&self) -> Address {
        self.treasury_address
    }

    pub async fn latest_block(&self) -> Result<u64, ChainError> {
        self.reader.get_block_number().await.map_err(rpc)
    }

    /// Successful deposits in block `number` to any of `watched`.
    pub async fn deposits_in(&self, number: u64, watched: &HashSet<Address>) -> Result<Vec<Deposit>, ChainError> {
        let Some(block) = self.reader.get_block_by_number(number.into()).full().await.map_err(rpc)? else {
            return Ok(Vec::new());
        };
        let mut deposits = Vec::new();
        for tx in block.transactions.into_transactions() {
            let Some(to) = tx.to() else { continue };
            let candidate = if watched.contains(&to) && !tx.value().is_zero() {
                Some((to, "eth", from_base_units(u128::try_from(tx.value()).unwrap_or(u128::MAX), ChainAsset::Eth)))
            } else if let Some((coin, asset)) = ["usdt", "usdc"]
                .into_iter()
                .find_map(|coin| self.token(coin).filter(|(contract, _)| *contract == to).map(|(_, asset)| (coin, asset)))
            {
                decode_erc20_transfer(tx.input())
                    .filter(|(recipient, _)| watched.contains(recipient))
                    .map(|(recipient, units)| (recipient, coin, from_base_units(u128::try_from(units).unwrap_or(u128::MAX), asset)))
            } else {
                None
            };
            let Some((to, coin, Ok(amount))) = candidate else { continue };
            let hash = tx.tx_hash();
            let succeeded = self.reader.get_transaction_receipt(hash).await.map_err(rpc)?.is_some_and(|r| r.status());
            if succeeded {
                deposits.push(Deposit { to, coin, amount, tx_hash: hash.to_string() });
            }
        }
        Ok(deposits)
    }

    /// Pays `amount` of `coin` to `to` from the treasury and waits until it is mined. Coins of
    /// other chains get a simulated hash.
    pub async fn pay(&self, coin: &str, to: &str, amount: Decimal) -> Result<String, ChainError> {
        let request = match coin {
            "eth" => {
                let wei = to_base_units(amount, ChainAsset::Eth).map_err(|e| ChainError::Invalid(e.to_string()))?;
                TransactionRequest::default().with_to(parse_address(to)?).with_value(U256::from(wei))
            }
            "usdt" | "usdc" => {
                let (contract, asset) =
                    self.token(coin).ok_or_else(|| ChainError::Invalid(format!("{}_CONTRACT is not configured", coin.to_uppercase())))?;
                let units = to_base_units(amount, asset).map_err(|e| ChainError::Invalid(e.to_string()))?;
                TransactionRequest::default().with_to(contract).with_input(erc20_transfer_calldata(parse_address(to)?, U256::from(units)))
            }
            other => return Ok(format!("simulated-{other}-payout-{}", uuid::Uuid::new_v4().simple())),
        };
        self.send(request).await
    }

    /// Sends one treasury transaction and waits until it is mined, as the engine's outbox does:
    /// the nonce is taken explicitly (one transfer at a time), fees follow the next base fee, and
    /// an attempt the node refuses for its fee, or that is not mined within [`STUCK_AFTER`], is
    /// re-signed at the same nonce with fees that meet the base fee. A refusal thus never leaves
    /// a nonce gap behind it.
    async fn send(&self, request: TransactionRequest) -> Result<String, ChainError> {
        let _turn = self.sending.lock().await;
        let from = self.treasury_address;
        let nonce = self.reader.get_transaction_count(from).pending().await.map_err(rpc)?;
        let gas = self.reader.estimate_gas(request.clone().with_from(from)).await.map_err(rpc)?;
        let mut previous: Option<GasFees> = None;
        let mut sent: Vec<TxHash> = Vec::new();
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            if let Some(hash) = self.mined(&sent).await? {
                return Ok(hash);
            }
            let base_fee = self.next_base_fee().await?;
            let fees = treasury_fees(base_fee, previous);
            let tx = request
                .clone()
                .with_nonce(nonce)
                .with_gas_limit(gas)
                .with_max_fee_per_gas(fees.max_fee)
                .with_max_priority_fee_per_gas(fees.priority);
            match self.treasury.send_transaction(tx).await {
                Ok(pending) => {
                    let hash = *pending.tx_hash();
                    sent.push(hash);
                    previous = Some(fees);
                    match pending.with_timeout(Some(STUCK_AFTER)).get_receipt().await {
                        Ok(receipt) if receipt.status() => return Ok(receipt.transaction_hash.to_string()),
                        Ok(receipt) => return Err(ChainError::Rpc(format!("treasury transaction {} reverted", receipt.transaction_hash))),
                        Err(e) => {
                            warn!(nonce, attempt, tx_hash = %hash, base_fee, max_fee = fees.max_fee, error = %e, "treasury transaction not mined; re-signing with more")
                        }
                    }
                }
                Err(e) if refused_for_fee(&e.to_string()) => {
                    warn!(nonce, attempt, base_fee, max_fee = fees.max_fee, error = %e, "treasury transaction refused for its fee; re-signing at the same nonce");
                    // Nothing holds the nonce yet: giving up leaves no gap behind.
                    if sent.is_empty() && attempt >= MAX_REFUSALS {
                        return Err(ChainError::Rpc(format!("treasury transaction refused {attempt} times for its fee: {e}")));
                    }
                    previous = Some(fees);
                }
                // An earlier attempt got the nonce: its receipt is looked up on the next round.
                Err(e) if nonce_taken(&e.to_string()) && !sent.is_empty() => {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(e) => return Err(rpc(e)),
            }
        }
    }

    /// The hash of whichever attempt was mined, if one was (a reverted one is an error).
    async fn mined(&self, sent: &[TxHash]) -> Result<Option<String>, ChainError> {
        for hash in sent {
            if let Some(receipt) = self.reader.get_transaction_receipt(*hash).await.map_err(rpc)? {
                if !receipt.status() {
                    return Err(ChainError::Rpc(format!("treasury transaction {hash} reverted")));
                }
                return Ok(Some(hash.to_string()));
            }
        }
        Ok(None)
    }

    /// The base fee the next block charges (what `anvil_setNextBlockBaseFeePerGas` sets).
    async fn next_base_fee(&self) -> Result<u128, ChainError> {
        let history = self.reader.get_fee_history(1, BlockNumberOrTag::Latest, &[]).await.map_err(rpc)?;
        history.next_block_base_fee().ok_or_else(|| ChainError::Rpc("the node reports no base fee (not an EIP-1559 chain)".into()))
    }
}

fn parse_address(text: &str) -> Result<Address, ChainError> {
    Address::from_str(text).map_err(|_| ChainError::Invalid(format!("'{text}' is not an Ethereum address")))
}

fn decode_erc20_transfer(input: &[u8]) -> Option<(Address, U256)> {
    if input.len() != 68 || input[..4] != ERC20_TRANSFER_SELECTOR {
        return None;
    }
    Some((Address::from_slice(&input[16..36]), U256::from_be_slice(&input[36..68])))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transfer_calls_decode_back() {
        let recipient = Address::from_str("0x70997970C51812dc3A010C7d01b50e0d17dc79C8").unwrap();
        let data = erc20_transfer_calldata(recipient, U256::from(48_500_000u64));
        assert_eq!(decode_erc20_transfer(&data), Some((recipient, U256::from(48_500_000u64))));
        assert_eq!(decode_erc20_transfer(&data[..67]), None);
    }
}
