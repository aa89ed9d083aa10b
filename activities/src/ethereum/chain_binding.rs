//! The chain a database's outbox belongs to.
//!
//! Nonces, receipts and balances only mean something on one chain. A database used with one node
//! and then pointed at another (two checkouts sharing the database `payouts`, each with its own
//! anvil; a node reset under a running stack) would hand out nonces after transfers the new chain
//! never saw, and every transfer would queue behind them. So the first hot wallet to connect
//! records the node's chain id and genesis hash in `chain_binding`; every later connection, and
//! every signing, compares the node with it and refuses another chain, naming both.
//!
//! A ledger from before the binding existed is bound only to a chain that holds it: every intent
//! must be of the node's chain id, and its latest confirmed transfer must be on the node.

use super::outbox::{rpc, HotWalletError};
use alloy::{
    eips::BlockNumberOrTag,
    primitives::TxHash,
    providers::{Provider, RootProvider},
};
use sqlx::PgPool;
use std::{fmt, str::FromStr};
use tracing::info;

/// What tells one chain from another: two anvils both say chain id 31337, but never share a
/// genesis block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainIdentity {
    pub chain_id: u64,
    /// Lower-case `0x` hex.
    pub genesis_hash: String,
}

impl fmt::Display for ChainIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "chain id {} with genesis block {}", self.chain_id, self.genesis_hash)
    }
}

/// The chain behind `provider` now.
pub(super) async fn node_identity(provider: &RootProvider) -> Result<ChainIdentity, HotWalletError> {
    let chain_id = provider.get_chain_id().await.map_err(rpc)?;
    let genesis = provider
        .get_block_by_number(BlockNumberOrTag::Number(0))
        .await
        .map_err(rpc)?
        .ok_or_else(|| HotWalletError::Rpc("the node has no genesis block".into()))?;
    Ok(ChainIdentity { chain_id, genesis_hash: format!("{:#x}", genesis.header.hash) })
}

/// The chain this database is bound to, if any.
pub async fn bound_chain(pool: &PgPool) -> Result<Option<ChainIdentity>, sqlx::Error> {
    let row: Option<(i64, String)> = sqlx::query_as("SELECT chain_id, genesis_hash FROM chain_binding").fetch_optional(pool).await?;
    Ok(row.map(|(chain_id, genesis_hash)| ChainIdentity { chain_id: chain_id as u64, genesis_hash }))
}

/// Binds an unbound database to `node` (after checking that a ledger already there is on it), or
/// checks that a bound one is bound to `node`.
pub(super) async fn bind_or_verify(pool: &PgPool, provider: &RootProvider, node: &ChainIdentity) -> Result<(), HotWalletError> {
    if let Some(bound) = bound_chain(pool).await? {
        return same_chain(&bound, node);
    }
    verify_unbound_ledger_is_on(pool, provider, node).await?;
    let inserted = sqlx::query("INSERT INTO chain_binding (chain_id, genesis_hash) VALUES ($1, $2) ON CONFLICT (only_row) DO NOTHING")
        .bind(node.chain_id as i64)
        .bind(&node.genesis_hash)
        .execute(pool)
        .await?
        .rows_affected();
    if inserted == 1 {
        info!(chain_id = node.chain_id, genesis_hash = %node.genesis_hash, "database bound to this chain");
    }
    // Another worker may have bound it a moment ago, to its own node.
    let bound = bound_chain(pool).await?.ok_or_else(|| HotWalletError::Corrupt("chain_binding vanished".into()))?;
    same_chain(&bound, node)
}

pub(super) fn same_chain(bound: &ChainIdentity, node: &ChainIdentity) -> Result<(), HotWalletError> {
    if bound == node {
        Ok(())
    } else {
        Err(HotWalletError::ForeignChain { bound: bound.to_string(), node: node.to_string() })
    }
}

async fn verify_unbound_ledger_is_on(pool: &PgPool, provider: &RootProvider, node: &ChainIdentity) -> Result<(), HotWalletError> {
    let other_chain: Option<i64> = sqlx::query_scalar("SELECT chain_id FROM transfer_intents WHERE chain_id <> $1 LIMIT 1")
        .bind(node.chain_id as i64)
        .fetch_optional(pool)
        .await?;
    if let Some(other) = other_chain {
        return Err(HotWalletError::ForeignChain {
            bound: format!("chain id {other} (its outbox holds transfers signed for it)"),
            node: node.to_string(),
        });
    }
    let latest: Option<(String, String)> = sqlx::query_as(
        "SELECT purpose_key, confirmed_tx_hash FROM transfer_intents WHERE status = 'confirmed'
         ORDER BY confirmed_block DESC, nonce DESC LIMIT 1",
    )
    .fetch_optional(pool)
    .await?;
    let Some((purpose_key, tx_hash)) = latest else { return Ok(()) };
    let hash = TxHash::from_str(&tx_hash).map_err(|_| HotWalletError::Corrupt(format!("stored hash {tx_hash}")))?;
    if provider.get_transaction_receipt(hash).await.map_err(rpc)?.is_none() {
        return Err(HotWalletError::ForeignChain {
            bound: format!("the chain that holds transfer {purpose_key} ({tx_hash}), confirmed in this database"),
            node: format!("{node}, which has never seen that transaction"),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(genesis: char) -> ChainIdentity {
        ChainIdentity { chain_id: 31337, genesis_hash: format!("0x{}", genesis.to_string().repeat(64)) }
    }

    #[test]
    fn two_chains_with_one_chain_id_are_told_apart_by_their_genesis() {
        assert!(same_chain(&chain('a'), &chain('a')).is_ok());
        let error = same_chain(&chain('a'), &chain('b')).unwrap_err().to_string();
        assert!(error.contains(&chain('a').genesis_hash) && error.contains(&chain('b').genesis_hash), "names both: {error}");
    }
}
