//! The simulator's view of the chain: it finds deposits to the pay-in addresses it handed out
//! (ETH transfers, and `transfer` calls of the USDT contract) and pays out of its own funded
//! treasury account. Coins that do not live on this chain (XMR, BTC) get a simulated payout
//! hash instead of a transaction.

use alloy::{
    consensus::Transaction as _,
    network::{EthereumWallet, TransactionBuilder, TransactionResponse as _},
    primitives::{Address, U256},
    providers::{DynProvider, Provider, ProviderBuilder, RootProvider},
    rpc::types::TransactionRequest,
    signers::local::PrivateKeySigner,
};
use activities::ethereum::{erc20_transfer_calldata, ERC20_TRANSFER_SELECTOR};
use rust_decimal::Decimal;
use std::{collections::HashSet, str::FromStr};
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
}

impl Chain {
    pub async fn connect(rpc_url: &str, treasury_key: &str, usdt: Option<Address>) -> Result<Self, ChainError> {
        let url: alloy::transports::http::reqwest::Url = rpc_url.parse().map_err(|_| ChainError::Invalid(format!("'{rpc_url}' is not a URL")))?;
        let signer = PrivateKeySigner::from_str(treasury_key.trim())
            .map_err(|_| ChainError::Invalid("the treasury key is not a valid secp256k1 key".into()))?;
        let treasury_address = signer.address();
        let reader = RootProvider::new_http(url.clone());
        reader.get_chain_id().await.map_err(rpc)?;
        let treasury = ProviderBuilder::new().wallet(EthereumWallet::from(signer)).connect_http(url).erased();
        Ok(Self { reader, treasury, treasury_address, usdt, usdc: None })
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
                let (contract, asset) = self
                    .token(coin)
                    .ok_or_else(|| ChainError::Invalid(format!("{}_CONTRACT is not configured", coin.to_uppercase())))?;
                let units = to_base_units(amount, asset).map_err(|e| ChainError::Invalid(e.to_string()))?;
                TransactionRequest::default()
                    .with_to(contract)
                    .with_input(erc20_transfer_calldata(parse_address(to)?, U256::from(units)))
            }
            other => return Ok(format!("simulated-{other}-payout-{}", uuid::Uuid::new_v4().simple())),
        };
        let pending = self.treasury.send_transaction(request).await.map_err(rpc)?;
        let receipt = pending.get_receipt().await.map_err(rpc)?;
        if !receipt.status() {
            return Err(ChainError::Rpc(format!("treasury transaction {} reverted", receipt.transaction_hash)));
        }
        Ok(receipt.transaction_hash.to_string())
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
