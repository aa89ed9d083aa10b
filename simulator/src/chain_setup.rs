//! Local chain set-up for `make up` and the tests: deploys the USDT-like test token
//! (`contracts/TestUsdt.sol`, bytecode committed beside it) and mints it to the hot wallet and
//! the simulator's treasury. Local chains only: the deployer is a public anvil dev account.

use alloy::{
    network::{EthereumWallet, TransactionBuilder},
    primitives::{Address, Bytes, U256},
    providers::{Provider, ProviderBuilder},
    rpc::types::TransactionRequest,
    signers::local::PrivateKeySigner,
};
use std::str::FromStr;

/// Creation bytecode of `contracts/TestUsdt.sol` (solc 0.8.26, optimized).
const TEST_USDT_BYTECODE: &str = include_str!("../../contracts/TestUsdt.bin");
/// anvil's tenth dev account deploys the token, so on a fresh anvil it always lands at the
/// same address.
pub const ANVIL_DEPLOYER_KEY: &str = "0x2a871d0798f97d79848a013d4936a73bf4cc922c825d33c1cf7073dff6d409c6";
/// `mint(address,uint256)`
const MINT_SELECTOR: [u8; 4] = [0x40, 0xc1, 0x0f, 0x19];

/// Deploys the test USDT unless the deployer's first contract already exists on this chain;
/// returns its address and whether it was deployed now.
pub async fn deploy_test_usdt(rpc_url: &str) -> anyhow::Result<(Address, bool)> {
    let signer = PrivateKeySigner::from_str(ANVIL_DEPLOYER_KEY)?;
    let deployer = signer.address();
    let provider = ProviderBuilder::new().wallet(EthereumWallet::from(signer)).connect_http(rpc_url.parse()?);
    let first = deployer.create(0);
    if !provider.get_code_at(first).await?.is_empty() {
        return Ok((first, false));
    }
    Ok((deploy_token(&provider).await?, true))
}

/// Deploys one instance of `contracts/TestUsdt.sol` from the deployer.
async fn deploy_token(provider: &impl Provider) -> anyhow::Result<Address> {
    let code = Bytes::from(alloy::hex::decode(TEST_USDT_BYTECODE.trim())?);
    let receipt = provider.send_transaction(TransactionRequest::default().with_deploy_code(code)).await?.get_receipt().await?;
    anyhow::ensure!(receipt.status(), "deploying a test token reverted");
    receipt.contract_address.ok_or_else(|| anyhow::anyhow!("no contract address in the receipt"))
}

/// Deploys another instance of the test token (the local USDC: same 6-decimal contract, its
/// role set by the variable that names it, `USDC_CONTRACT`) unless `existing` already holds code.
/// Returns its address and whether it was deployed now.
pub async fn deploy_test_token(rpc_url: &str, existing: Option<Address>) -> anyhow::Result<(Address, bool)> {
    let signer = PrivateKeySigner::from_str(ANVIL_DEPLOYER_KEY)?;
    let provider = ProviderBuilder::new().wallet(EthereumWallet::from(signer)).connect_http(rpc_url.parse()?);
    if let Some(existing) = existing {
        if !provider.get_code_at(existing).await?.is_empty() {
            return Ok((existing, false));
        }
    }
    Ok((deploy_token(&provider).await?, true))
}

/// Mints `units` (10^-6 USDT) of the test token to `to`.
pub async fn mint_test_usdt(rpc_url: &str, contract: Address, to: Address, units: u128) -> anyhow::Result<()> {
    let signer = PrivateKeySigner::from_str(ANVIL_DEPLOYER_KEY)?;
    let provider = ProviderBuilder::new().wallet(EthereumWallet::from(signer)).connect_http(rpc_url.parse()?);
    let mut data = Vec::with_capacity(68);
    data.extend_from_slice(&MINT_SELECTOR);
    data.extend_from_slice(&[0u8; 12]);
    data.extend_from_slice(to.as_slice());
    data.extend_from_slice(&U256::from(units).to_be_bytes::<32>());
    let receipt = provider
        .send_transaction(TransactionRequest::default().with_to(contract).with_input(Bytes::from(data)))
        .await?
        .get_receipt()
        .await?;
    anyhow::ensure!(receipt.status(), "minting test USDT reverted");
    Ok(())
}

/// Replaces (or appends) `KEY=value` in an env file, keeping every other line.
pub fn set_env_var(contents: &str, key: &str, value: &str) -> String {
    let mut found = false;
    let mut lines: Vec<String> = contents
        .lines()
        .map(|line| {
            if line.trim_start().starts_with(&format!("{key}=")) {
                found = true;
                format!("{key}={value}")
            } else {
                line.to_owned()
            }
        })
        .collect();
    if !found {
        lines.push(format!("{key}={value}"));
    }
    lines.join("\n") + "\n"
}

/// The value of `key` in env-file `contents`, if set and not empty.
pub fn env_value(contents: &str, key: &str) -> Option<String> {
    contents
        .lines()
        .find_map(|line| line.trim_start().strip_prefix(&format!("{key}=")).map(|v| v.trim().to_owned()))
        .filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_var_is_replaced_in_place_or_appended() {
        let env = "A=1\nUSDT_CONTRACT=\nB=2\n";
        assert_eq!(set_env_var(env, "USDT_CONTRACT", "0xabc"), "A=1\nUSDT_CONTRACT=0xabc\nB=2\n");
        assert_eq!(set_env_var("A=1", "USDT_CONTRACT", "0xabc"), "A=1\nUSDT_CONTRACT=0xabc\n");
        assert_eq!(env_value("A=1\nUSDC_CONTRACT=0xdef\n", "USDC_CONTRACT").as_deref(), Some("0xdef"));
        assert_eq!(env_value("USDC_CONTRACT=\n", "USDC_CONTRACT"), None);
    }

    #[test]
    fn the_committed_bytecode_is_hex() {
        assert!(alloy::hex::decode(TEST_USDT_BYTECODE.trim()).is_ok_and(|code| code.len() > 100));
    }
}
