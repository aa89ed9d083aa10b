//! The outbox behind [`HotWallet`]. Every step is idempotent on the purpose key and safe to
//! re-run after a crash at any point:
//!
//! - crash before the intent commits: nothing was signed or sent; the retry starts afresh;
//! - crash after commit, before broadcast: the retry finds the stored bytes and sends them;
//! - crash after broadcast: re-sending the same bytes is harmless (same hash), and `check`
//!   looks for a receipt of every attempt.

use super::{
    chain_binding::{self, ChainIdentity},
    credits::IncomingParts,
    dev_accounts::{anvil_dev_account, ANVIL_CHAIN_ID},
    fee_bump::{fee_bump, gwei, FeeBump, GasFees},
};
use crate::db::alerts::{self, AlertKind, NewAlert};
use alloy::{
    consensus::TxEnvelope,
    eips::{
        eip2718::{Decodable2718, Encodable2718},
        BlockNumberOrTag,
    },
    network::{EthereumWallet, TransactionBuilder},
    primitives::{Address, Bytes, TxHash, U256},
    providers::{Provider, RootProvider},
    rpc::types::TransactionRequest,
    signers::local::PrivateKeySigner,
};
use sqlx::{PgPool, Row};
use std::{str::FromStr, time::Duration};
use tracing::{info, warn};

pub(super) const ETH_TRANSFER_GAS: u64 = 21_000;
/// Enough for a plain ERC-20 `transfer` (USDT's costs about 50k-65k); fixed rather than
/// estimated, so the stored transaction never depends on the node's state at signing time.
const TOKEN_TRANSFER_GAS: u64 = 100_000;
/// `transfer(address,uint256)`
pub const ERC20_TRANSFER_SELECTOR: [u8; 4] = [0xa9, 0x05, 0x9c, 0xbb];
/// `keccak256("Transfer(address,address,uint256)")`
pub(super) const ERC20_TRANSFER_EVENT: alloy::primitives::B256 =
    alloy::primitives::b256!("ddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef");
/// `balanceOf(address)`
const ERC20_BALANCE_OF_SELECTOR: [u8; 4] = [0x70, 0xa0, 0x82, 0x31];

#[derive(Debug, thiserror::Error)]
pub enum HotWalletError {
    #[error("HOST_WALLET_PRIVATE_KEY is not a valid secp256k1 key")]
    BadKey,
    #[error(
        "HOST_WALLET_PRIVATE_KEY is anvil's public dev account #{index} ({address}), whose key anyone can look up; \
         ETH_RPC_URL is chain id {chain_id}, and that key is only allowed on anvil (chain id {ANVIL_CHAIN_ID}): use a key of your own"
    )]
    PublicDevKey { index: usize, address: String, chain_id: u64 },
    #[error(
        "this database's outbox belongs to {bound}, but ETH_RPC_URL is {node}: refusing to sign for another chain. \
         Point ETH_RPC_URL at the chain this database was used with, or DATABASE_URL at a database of its own"
    )]
    ForeignChain { bound: String, node: String },
    #[error("ETH_RPC_URL is not a valid URL")]
    BadRpcUrl,
    #[error("'{0}' is not an Ethereum address")]
    BadAddress(String),
    #[error("the amount of transfer {0} must be above zero")]
    ZeroAmount(String),
    #[error("the hot wallet holds {available} but transfer {purpose_key} needs {needed} (base units of {asset}); top it up")]
    InsufficientFunds { purpose_key: String, asset: String, available: U256, needed: U256 },
    #[error("purpose {purpose_key} was already prepared for a different transfer ({existing}); refusing to send another")]
    ConflictingIntent { purpose_key: String, existing: String },
    #[error("no transfer was prepared for purpose {0}")]
    UnknownPurpose(String),
    #[error("transfer {purpose_key} was mined in {tx_hash} but reverted; nothing was transferred")]
    Reverted { purpose_key: String, tx_hash: String },
    #[error("transaction {tx_hash} was already credited to {credited_to}; it cannot count for anything else")]
    AlreadyCredited { tx_hash: String, credited_to: String },
    #[error("refund {tx_hash} does not count: {reason}")]
    RefundNotCounted { tx_hash: String, reason: String },
    #[error("stored transfer data is unreadable: {0}")]
    Corrupt(String),
    #[error("Ethereum node error: {0}")]
    Rpc(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

impl HotWalletError {
    /// Node and database hiccups are worth retrying, and so is a wallet short of funds (an
    /// operator can top it up while Temporal retries) or a node that is not this ledger's chain
    /// (nothing was signed; the transfer goes on once ETH_RPC_URL is right again); the rest, among
    /// them `AlreadyCredited` and `RefundNotCounted` (answers about the chain), would fail the same
    /// way again.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Rpc(_) | Self::Database(_) | Self::InsufficientFunds { .. } | Self::ForeignChain { .. })
    }
}

/// The `Transfer(from, to, value)` events of the token `contract` in a receipt.
pub(super) fn token_transfers(
    receipt: &alloy::rpc::types::TransactionReceipt,
    contract: Address,
) -> impl Iterator<Item = (Address, Address, U256)> + '_ {
    receipt.inner.logs().iter().filter(move |log| log.address() == contract).filter_map(|log| {
        let topics = log.topics();
        (topics.len() == 3 && topics[0] == ERC20_TRANSFER_EVENT)
            .then(|| (Address::from_word(topics[1]), Address::from_word(topics[2]), U256::from_be_slice(&log.data().data)))
    })
}

/// Node errors can quote the RPC URL, and provider URLs often carry an API key.
pub(super) fn rpc(e: impl std::fmt::Display) -> HotWalletError {
    HotWalletError::Rpc(redact_urls(&e.to_string()))
}

/// Replaces every `http(s)://...` in `text` with `<url>`.
pub fn redact_urls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("http://").or_else(|| rest.find("https://")) {
        out.push_str(&rest[..start]);
        out.push_str("<url>");
        let tail = &rest[start..];
        let end = tail.find(|c: char| c.is_whitespace() || matches!(c, ')' | '"' | '\'' | ',')).unwrap_or(tail.len());
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

#[derive(Debug, Clone)]
pub struct OutboxSettings {
    /// Blocks on top of (and including) the one holding the transfer.
    pub confirmations: u64,
    /// Broadcast this long ago and still not mined: replace with higher fees.
    pub stuck_after: Duration,
    /// The most any attempt may offer per gas, in wei (`MAX_FEE_GWEI`).
    pub max_fee_per_gas: u128,
    /// Signed this long ago and never broadcast: its run has ended (the send step gives up after
    /// 30 minutes), and the outbox cancels it rather than send it for nobody
    /// ([`OutboxSettings::ABANDON_UNSENT_AFTER`]).
    pub abandon_unsent_after: Duration,
}

impl OutboxSettings {
    /// Twice the send step's schedule-to-close limit: no run can still be sending it.
    pub const ABANDON_UNSENT_AFTER: Duration = Duration::from_secs(2 * workflows::steps::STEP_GIVE_UP.as_secs());
}

/// What a transfer moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asset {
    Eth,
    /// An ERC-20 token, by contract address (USDT).
    Erc20(Address),
}

impl Asset {
    /// How the outbox stores it: `ETH` or the contract's checksummed address.
    pub fn stored_name(&self) -> String {
        match self {
            Asset::Eth => "ETH".to_owned(),
            Asset::Erc20(contract) => contract.to_checksum(None),
        }
    }
}

/// A transfer to make exactly once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferRequest {
    pub purpose_key: String,
    pub asset: Asset,
    /// The beneficiary (for a token, the recipient of the tokens).
    pub to: String,
    /// Base units: wei, or the token's smallest unit.
    pub amount: U256,
}

/// The call a transfer makes, as signed: the same for every attempt of one purpose key.
pub(super) struct TransferCall {
    pub(super) to: Address,
    pub(super) value: U256,
    pub(super) input: Bytes,
    pub(super) gas_limit: u64,
}

impl TransferCall {
    fn new(asset: Asset, beneficiary: Address, amount: U256) -> Self {
        match asset {
            Asset::Eth => Self { to: beneficiary, value: amount, input: Bytes::new(), gas_limit: ETH_TRANSFER_GAS },
            Asset::Erc20(contract) => {
                Self { to: contract, value: U256::ZERO, input: erc20_transfer_calldata(beneficiary, amount), gas_limit: TOKEN_TRANSFER_GAS }
            }
        }
    }
}

/// ABI encoding of `transfer(recipient, amount)`.
pub fn erc20_transfer_calldata(recipient: Address, amount: U256) -> Bytes {
    let mut data = Vec::with_capacity(68);
    data.extend_from_slice(&ERC20_TRANSFER_SELECTOR);
    data.extend_from_slice(&[0u8; 12]);
    data.extend_from_slice(recipient.as_slice());
    data.extend_from_slice(&amount.to_be_bytes::<32>());
    Bytes::from(data)
}

/// Where a transfer stands after [`HotWallet::check`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransferState {
    /// Not mined yet (possibly just replaced with higher fees).
    Pending { latest_tx_hash: String, replaced: bool },
    /// Mined, waiting for more blocks.
    Mined { tx_hash: String, confirmations: u64 },
    /// Final: mined with enough confirmations.
    Confirmed { tx_hash: String, block: u64 },
    /// Final: the outbox's cancellation (a 0-value transfer to itself) took the nonce, with
    /// enough confirmations; the transfer's value never left the hot wallet.
    Cancelled { tx_hash: String, block: u64 },
}

/// What a transaction paid the hot wallet, once [`HotWallet::incoming`] has looked at it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IncomingState {
    NotMined,
    /// Mined, with fewer confirmations than the outbox requires (`required`).
    Unconfirmed {
        block: u64,
        confirmations: u64,
        required: u64,
    },
    /// Mined and confirmed: `amount` in base units, zero when it paid the hot wallet nothing
    /// (or nothing from the expected sender).
    Confirmed {
        amount: U256,
        block: u64,
    },
}

pub struct HotWallet {
    pub(super) pool: PgPool,
    pub(super) provider: RootProvider,
    signer: PrivateKeySigner,
    chain_id: u64,
    /// The chain this database is bound to ([`chain_binding`]), checked again before each signing.
    chain: ChainIdentity,
    pub(super) settings: OutboxSettings,
}

pub(super) struct StoredAttempt {
    pub(super) tx_hash: String,
    pub(super) attempt: i32,
    pub(super) fees: GasFees,
    raw_tx: Vec<u8>,
    /// Since this attempt was signed: a re-send must not restart the stuck clock.
    age: Duration,
    /// The outbox's cancellation of the intent, not the transfer itself.
    pub(super) cancels: bool,
}

impl HotWallet {
    pub async fn connect(pool: PgPool, rpc_url: &str, private_key: &str, settings: OutboxSettings) -> Result<Self, HotWalletError> {
        let signer = PrivateKeySigner::from_str(private_key.trim()).map_err(|_| HotWalletError::BadKey)?;
        let url = rpc_url.parse().map_err(|_| HotWalletError::BadRpcUrl)?;
        let provider = RootProvider::new_http(url);
        let chain = chain_binding::node_identity(&provider).await?;
        let chain_id = chain.chain_id;
        // Bots sweep these accounts on every public chain within seconds of a deposit.
        if chain_id != ANVIL_CHAIN_ID {
            if let Some(index) = anvil_dev_account(signer.address()) {
                return Err(HotWalletError::PublicDevKey { index, address: signer.address().to_checksum(None), chain_id });
            }
        }
        chain_binding::bind_or_verify(&pool, &provider, &chain).await?;
        Ok(Self { pool, provider, signer, chain_id, chain, settings })
    }

    /// The chain this wallet's database is bound to.
    pub fn chain(&self) -> &ChainIdentity {
        &self.chain
    }

    /// Refuses to go on when the node behind ETH_RPC_URL is no longer the bound chain (reset, or
    /// swapped for another): a nonce taken from it would mean nothing on the ledger's chain.
    async fn ensure_bound_chain(&self) -> Result<(), HotWalletError> {
        chain_binding::same_chain(&self.chain, &chain_binding::node_identity(&self.provider).await?)
    }

    pub fn address(&self) -> Address {
        self.signer.address()
    }

    pub fn chain_id(&self) -> u64 {
        self.chain_id
    }

    /// The hot wallet's balance of `asset`, in base units.
    pub async fn balance(&self, asset: Asset) -> Result<U256, HotWalletError> {
        balance_of(&self.provider, asset, self.address()).await
    }

    /// Signs and stores the transfer for `purpose_key` once; later calls return the same
    /// transaction hash (and refuse a different asset, destination or amount for the same purpose).
    pub async fn prepare_transfer(&self, request: &TransferRequest) -> Result<String, HotWalletError> {
        let to = Address::from_str(&request.to).map_err(|_| HotWalletError::BadAddress(request.to.clone()))?;
        if request.amount.is_zero() {
            return Err(HotWalletError::ZeroAmount(request.purpose_key.clone()));
        }
        let from = self.address().to_checksum(None);
        let asset = request.asset.stored_name();
        let mut tx = self.pool.begin().await?;
        // One allocator at a time per hot wallet: nonces are handed out without gaps or repeats.
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))").bind(&from).execute(&mut *tx).await?;

        if let Some(row) =
            sqlx::query("SELECT asset, to_address, amount_base_units::text AS amount FROM transfer_intents WHERE purpose_key = $1")
                .bind(&request.purpose_key)
                .fetch_optional(&mut *tx)
                .await?
        {
            let (stored_asset, stored_to, stored_amount): (String, String, String) =
                (row.try_get("asset")?, row.try_get("to_address")?, row.try_get("amount")?);
            if stored_asset != asset || stored_to != to.to_checksum(None) || stored_amount != request.amount.to_string() {
                return Err(HotWalletError::ConflictingIntent {
                    purpose_key: request.purpose_key.clone(),
                    existing: format!("{stored_amount} base units of {stored_asset} to {stored_to}"),
                });
            }
            tx.commit().await?;
            return Ok(self.latest_attempt(&request.purpose_key).await?.tx_hash);
        }

        self.ensure_bound_chain().await?;
        let estimate = self.fee_estimate().await?;
        let fees = estimate.capped(self.settings.max_fee_per_gas);
        if fees != estimate {
            // Signed anyway: it waits for fees to fall, and `check` alerts if it stays stuck.
            warn!(purpose_key = %request.purpose_key, estimate = estimate.max_fee, ceiling = fees.max_fee,
                "fee estimate above MAX_FEE_GWEI; signing at the ceiling");
        }
        let call = TransferCall::new(request.asset, to, request.amount);
        self.ensure_funds(&mut tx, request, &asset, &call, fees.max_fee).await?;
        let stored_next: i64 =
            sqlx::query_scalar("SELECT COALESCE(MAX(nonce) + 1, 0) FROM transfer_intents WHERE chain_id = $1 AND from_address = $2")
                .bind(self.chain_id as i64)
                .bind(&from)
                .fetch_one(&mut *tx)
                .await?;
        let chain_next = self.provider.get_transaction_count(self.address()).pending().await.map_err(rpc)?;
        let nonce = chain_next.max(u64::try_from(stored_next).unwrap_or(0));
        let gas_limit = call.gas_limit;
        let envelope = self.sign(call, nonce, fees.max_fee, fees.priority).await?;
        let tx_hash = envelope.tx_hash().to_string();

        sqlx::query(
            "INSERT INTO transfer_intents (purpose_key, chain_id, from_address, nonce, asset, to_address, amount_base_units)
             VALUES ($1, $2, $3, $4, $5, $6, $7::numeric)",
        )
        .bind(&request.purpose_key)
        .bind(self.chain_id as i64)
        .bind(&from)
        .bind(nonce as i64)
        .bind(&asset)
        .bind(to.to_checksum(None))
        .bind(request.amount.to_string())
        .execute(&mut *tx)
        .await?;
        let fees = AttemptFees { max_fee: fees.max_fee, priority: fees.priority, gas_limit };
        insert_attempt(&mut tx, &request.purpose_key, 0, &envelope, fees, false).await?;
        tx.commit().await?;
        info!(purpose_key = %request.purpose_key, nonce, tx_hash, asset, "transfer signed and stored");
        Ok(tx_hash)
    }

    /// What the transaction `tx_hash` paid the hot wallet in `asset` (ETH value, or the sum of the
    /// token's `Transfer` events to the hot wallet), once it has the configured confirmations.
    /// Only payments from someone else count (a transfer to itself brings nothing), and only from
    /// `expected_sender` when one is given.
    pub async fn incoming(&self, tx_hash: &str, asset: Asset, expected_sender: Option<Address>) -> Result<IncomingState, HotWalletError> {
        Ok(match self.incoming_parts(tx_hash, asset).await? {
            IncomingParts::NotMined => IncomingState::NotMined,
            IncomingParts::Unconfirmed { block, confirmations, required } => IncomingState::Unconfirmed { block, confirmations, required },
            IncomingParts::Confirmed { block, parts } => {
                let amount = parts
                    .iter()
                    .filter(|part| expected_sender.is_none_or(|sender| sender == part.from))
                    .fold(U256::ZERO, |sum, part| sum.saturating_add(part.amount));
                IncomingState::Confirmed { amount, block }
            }
        })
    }

    /// Blocks on top of (and including) `block`.
    pub(super) async fn confirmations(&self, block: u64) -> Result<u64, HotWalletError> {
        let head = self.provider.get_block_number().await.map_err(rpc)?;
        Ok(head.saturating_sub(block) + 1)
    }

    /// Refuses (retryably) a transfer the wallet cannot cover: the amount plus, for ETH, the most
    /// its gas can cost, on top of what open transfers of the same asset have already claimed.
    /// Open transfers already mined are counted twice until confirmed: the error errs on the
    /// safe side, and a retry moments later passes.
    async fn ensure_funds(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
        request: &TransferRequest,
        asset: &str,
        call: &TransferCall,
        max_fee_per_gas: u128,
    ) -> Result<(), HotWalletError> {
        let reserved: String = sqlx::query_scalar(
            "SELECT COALESCE(SUM(amount_base_units), 0)::text FROM transfer_intents
             WHERE status = 'signed' AND asset = $1 AND chain_id = $2 AND from_address = $3",
        )
        .bind(asset)
        .bind(self.chain_id as i64)
        .bind(self.address().to_checksum(None))
        .fetch_one(&mut **tx)
        .await?;
        let reserved = U256::from_str(&reserved).map_err(|e| HotWalletError::Corrupt(e.to_string()))?;
        let gas = U256::from(call.gas_limit) * U256::from(max_fee_per_gas);
        let needed = request.amount + reserved + if request.asset == Asset::Eth { gas } else { U256::ZERO };
        let available = self.balance(request.asset).await?;
        if available < needed {
            return Err(HotWalletError::InsufficientFunds {
                purpose_key: request.purpose_key.clone(),
                asset: asset.to_owned(),
                available,
                needed,
            });
        }
        Ok(())
    }

    /// Sends the latest stored attempt, byte for byte. "Already known" is success.
    /// An intent abandoned unsent is cancelled instead ([`HotWallet::sendable_attempt`]).
    pub async fn broadcast(&self, purpose_key: &str) -> Result<String, HotWalletError> {
        let attempt = self.sendable_attempt(purpose_key).await?;
        self.send_raw(purpose_key, &attempt).await?;
        Ok(attempt.tx_hash)
    }

    /// Looks for a receipt of any attempt; replaces a stuck transaction; re-sends otherwise (and
    /// the open transfers with lower nonces first, which would hold it back).
    pub async fn check(&self, purpose_key: &str) -> Result<TransferState, HotWalletError> {
        self.check_one(purpose_key, true).await
    }

    /// [`HotWallet::check`], without re-sending the lower nonces when `resend_lower` is false (the
    /// outbox watch goes through them itself, lowest first).
    pub(super) async fn check_one(&self, purpose_key: &str, resend_lower: bool) -> Result<TransferState, HotWalletError> {
        let hashes: Vec<(String, bool)> =
            sqlx::query_as("SELECT tx_hash, cancels FROM transfer_attempts WHERE purpose_key = $1 ORDER BY attempt")
                .bind(purpose_key)
                .fetch_all(&self.pool)
                .await?;
        if hashes.is_empty() {
            return Err(HotWalletError::UnknownPurpose(purpose_key.to_owned()));
        }
        for (hash, cancels) in &hashes {
            let parsed = TxHash::from_str(hash).map_err(|e| HotWalletError::Corrupt(e.to_string()))?;
            let Some(receipt) = self.provider.get_transaction_receipt(parsed).await.map_err(rpc)? else { continue };
            let block = receipt.block_number.unwrap_or_default();
            if *cancels {
                // Mined at the intent's nonce, so no attempt of the transfer can land any more.
                let confirmations = self.confirmations(block).await?;
                if confirmations < self.settings.confirmations {
                    return Ok(TransferState::Pending { latest_tx_hash: hash.clone(), replaced: false });
                }
                self.finish(purpose_key, "cancelled", hash, block).await?;
                return Ok(TransferState::Cancelled { tx_hash: hash.clone(), block });
            }
            // A revert counts only with its confirmations, like a success: a reorg can put the
            // same transaction in another place where it succeeds, and a revert lets the value be
            // sent again.
            let confirmations = self.confirmations(block).await?;
            if confirmations < self.settings.confirmations {
                return Ok(TransferState::Mined { tx_hash: hash.clone(), confirmations });
            }
            if !receipt.status() {
                self.finish(purpose_key, "reverted", hash, block).await?;
                return Err(HotWalletError::Reverted { purpose_key: purpose_key.to_owned(), tx_hash: hash.clone() });
            }
            self.finish(purpose_key, "confirmed", hash, block).await?;
            return Ok(TransferState::Confirmed { tx_hash: hash.clone(), block });
        }

        let latest = self.sendable_attempt(purpose_key).await?;
        if latest.age >= self.settings.stuck_after {
            // Only fees below the base fee keep a transaction out of every block; one that pays it
            // is merely slow (or was dropped, and is sent again below), and a replacement would
            // only cost more.
            let base_fee = self.next_base_fee().await?;
            if latest.fees.max_fee < base_fee {
                let estimate = self.fee_estimate().await?;
                match fee_bump(latest.fees, estimate, base_fee, self.settings.max_fee_per_gas) {
                    FeeBump::Replace(fees) => {
                        let replacement = self.replace(purpose_key, &latest, fees).await?;
                        self.send_raw(purpose_key, &replacement).await?;
                        return Ok(TransferState::Pending { latest_tx_hash: replacement.tx_hash, replaced: true });
                    }
                    FeeBump::AtCeiling { wanted } => self.alert_fee_ceiling(purpose_key, &latest, base_fee, wanted).await?,
                }
            }
        }
        // A lower nonce still open would hold this one back: send those again first.
        if resend_lower {
            self.resend_open_below(purpose_key).await?;
        }
        // Dropped from a mempool, or never sent: the same bytes again.
        self.send_raw(purpose_key, &latest).await?;
        Ok(TransferState::Pending { latest_tx_hash: latest.tx_hash, replaced: false })
    }

    /// Today's EIP-1559 estimate.
    pub(super) async fn fee_estimate(&self) -> Result<GasFees, HotWalletError> {
        let estimate = self.provider.estimate_eip1559_fees().await.map_err(rpc)?;
        Ok(GasFees { max_fee: estimate.max_fee_per_gas, priority: estimate.max_priority_fee_per_gas })
    }

    /// The base fee the next block charges (`anvil_setNextBlockBaseFeePerGas` sets it in tests).
    pub async fn next_base_fee(&self) -> Result<u128, HotWalletError> {
        let history = self.provider.get_fee_history(1, BlockNumberOrTag::Latest, &[]).await.map_err(rpc)?;
        history
            .next_block_base_fee()
            .ok_or_else(|| HotWalletError::Rpc("the node reports no base fee; the outbox needs an EIP-1559 chain".into()))
    }

    /// The ceiling stops a replacement: the transfer stays as it is (it lands once fees fall),
    /// and an operator hears about it once per attempt.
    async fn alert_fee_ceiling(
        &self,
        purpose_key: &str,
        stuck: &StoredAttempt,
        base_fee: u128,
        wanted: u128,
    ) -> Result<(), HotWalletError> {
        let ceiling = self.settings.max_fee_per_gas;
        let message = format!(
            "transfer {purpose_key} ({}) offers at most {} gwei per gas but the next block's base fee is {} gwei; \
             a replacement would need {} gwei, above MAX_FEE_GWEI = {} gwei. It is left as it is and lands when fees \
             fall; raise MAX_FEE_GWEI to bump it",
            stuck.tx_hash,
            gwei(stuck.fees.max_fee),
            gwei(base_fee),
            gwei(wanted),
            gwei(ceiling),
        );
        let mut tx = self.pool.begin().await?;
        let alert = NewAlert {
            dedupe_key: format!("transfer-fee-ceiling:{purpose_key}:{}", stuck.attempt),
            kind: AlertKind::TransferFeeCeiling,
            subject: purpose_key.to_owned(),
            message: &message,
        };
        alerts::raise(&mut tx, &alert).await?;
        tx.commit().await?;
        warn!(purpose_key, tx_hash = %stuck.tx_hash, base_fee, max_fee = stuck.fees.max_fee, ceiling, alert = true,
            "stuck transfer needs fees above MAX_FEE_GWEI; left as it is");
        Ok(())
    }

    /// Re-sends the latest attempt of every open intent with a lower nonce than `purpose_key`'s
    /// that was broadcast before (or cancels it, when abandoned unsent). One never broadcast and
    /// younger than `abandon_unsent_after` belongs to its own send step, or to a run that has just
    /// failed: sending it here could pay for a batch already recorded failed.
    async fn resend_open_below(&self, purpose_key: &str) -> Result<(), HotWalletError> {
        let lower: Vec<String> = sqlx::query_scalar(
            "SELECT o.purpose_key FROM transfer_intents o JOIN transfer_intents me ON me.purpose_key = $1
             WHERE o.status = 'signed' AND o.chain_id = me.chain_id AND o.from_address = me.from_address
               AND o.nonce < me.nonce
               AND (o.created_at < now() - make_interval(secs => $2)
                    OR EXISTS (SELECT 1 FROM transfer_attempts a
                               WHERE a.purpose_key = o.purpose_key AND a.last_broadcast_at IS NOT NULL))
             ORDER BY o.nonce",
        )
        .bind(purpose_key)
        .bind(self.settings.abandon_unsent_after.as_secs_f64())
        .fetch_all(&self.pool)
        .await?;
        for key in lower {
            let attempt = self.sendable_attempt(&key).await?;
            self.send_raw(&key, &attempt).await?;
        }
        Ok(())
    }

    /// The same call again (a cancellation stays a cancellation) with higher fees.
    async fn replace(&self, purpose_key: &str, stuck: &StoredAttempt, fees: GasFees) -> Result<StoredAttempt, HotWalletError> {
        let original = TxEnvelope::decode_2718(&mut stuck.raw_tx.as_slice()).map_err(|e| HotWalletError::Corrupt(e.to_string()))?;
        let TxEnvelope::Eip1559(signed) = &original else {
            return Err(HotWalletError::Corrupt("stored transaction is not EIP-1559".into()));
        };
        let body = signed.tx();
        let to = body.to.to().copied().ok_or_else(|| HotWalletError::Corrupt("transfer without recipient".into()))?;
        // The very same call (recipient, value, calldata, gas) and nonce; only the fees rise.
        let call = TransferCall { to, value: body.value, input: body.input.clone(), gas_limit: body.gas_limit };
        let stored = AttemptFees { max_fee: fees.max_fee, priority: fees.priority, gas_limit: call.gas_limit };
        let envelope = self.sign(call, body.nonce, fees.max_fee, fees.priority).await?;

        let mut tx = self.pool.begin().await?;
        let attempt = stuck.attempt + 1;
        insert_attempt(&mut tx, purpose_key, attempt, &envelope, stored, stuck.cancels).await?;
        tx.commit().await?;
        warn!(purpose_key, stuck_tx = %stuck.tx_hash, replacement = %envelope.tx_hash(), max_fee = fees.max_fee,
            "underpriced transfer replaced with higher fees");
        self.latest_attempt(purpose_key).await
    }

    pub(super) async fn sign(&self, call: TransferCall, nonce: u64, max_fee: u128, priority: u128) -> Result<TxEnvelope, HotWalletError> {
        let request = TransactionRequest::default()
            .with_from(self.address())
            .with_to(call.to)
            .with_value(call.value)
            .with_input(call.input)
            .with_nonce(nonce)
            .with_chain_id(self.chain_id)
            .with_gas_limit(call.gas_limit)
            .with_max_fee_per_gas(max_fee)
            .with_max_priority_fee_per_gas(priority);
        let wallet = EthereumWallet::from(self.signer.clone());
        request.build(&wallet).await.map_err(|e| HotWalletError::Corrupt(format!("cannot sign: {e}")))
    }

    pub(super) async fn send_raw(&self, purpose_key: &str, attempt: &StoredAttempt) -> Result<(), HotWalletError> {
        match self.provider.send_raw_transaction(&attempt.raw_tx).await {
            Ok(_) => {}
            // The node has it already, or a sibling attempt with this nonce was mined: either way
            // `check` decides from the receipts.
            Err(e) if is_benign_resend(&e.to_string()) => {}
            Err(e) => return Err(rpc(e)),
        }
        sqlx::query("UPDATE transfer_attempts SET last_broadcast_at = now() WHERE tx_hash = $1")
            .bind(&attempt.tx_hash)
            .execute(&self.pool)
            .await?;
        info!(purpose_key, tx_hash = %attempt.tx_hash, "transfer broadcast");
        Ok(())
    }

    pub(super) async fn latest_attempt(&self, purpose_key: &str) -> Result<StoredAttempt, HotWalletError> {
        let row = sqlx::query(
            "SELECT tx_hash, attempt, max_fee_per_gas::text AS max_fee, max_priority_fee_per_gas::text AS priority, raw_tx, cancels,
                    (EXTRACT(EPOCH FROM (now() - signed_at)) * 1000)::bigint AS age_ms
             FROM transfer_attempts WHERE purpose_key = $1 ORDER BY attempt DESC LIMIT 1",
        )
        .bind(purpose_key)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| HotWalletError::UnknownPurpose(purpose_key.to_owned()))?;
        let number = |name: &str| -> Result<u128, HotWalletError> {
            let text: String = row.try_get(name)?;
            text.parse().map_err(|_| HotWalletError::Corrupt(format!("{name} = {text}")))
        };
        Ok(StoredAttempt {
            tx_hash: row.try_get("tx_hash")?,
            attempt: row.try_get("attempt")?,
            fees: GasFees { max_fee: number("max_fee")?, priority: number("priority")? },
            raw_tx: row.try_get("raw_tx")?,
            age: Duration::from_millis(u64::try_from(row.try_get::<i64, _>("age_ms")?).unwrap_or(0)),
            cancels: row.try_get("cancels")?,
        })
    }

    /// Ends the intent (which frees what it reserved) and settles its unconfirmed-transfer alert.
    async fn finish(&self, purpose_key: &str, status: &str, tx_hash: &str, block: u64) -> Result<(), HotWalletError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "UPDATE transfer_intents SET status = $2, confirmed_tx_hash = $3, confirmed_block = $4, updated_at = now()
             WHERE purpose_key = $1",
        )
        .bind(purpose_key)
        .bind(status)
        .bind(tx_hash)
        .bind(block as i64)
        .execute(&mut *tx)
        .await?;
        alerts::settle(&mut tx, &unconfirmed_alert_key(purpose_key)).await?;
        tx.commit().await?;
        Ok(())
    }
}

pub(super) struct AttemptFees {
    pub(super) max_fee: u128,
    pub(super) priority: u128,
    pub(super) gas_limit: u64,
}

/// The alert raised while a transfer is past its run's deadline; settled when the intent ends.
pub(super) fn unconfirmed_alert_key(purpose_key: &str) -> String {
    format!("transfer-unconfirmed:{purpose_key}")
}

pub(super) async fn insert_attempt(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    purpose_key: &str,
    attempt: i32,
    envelope: &TxEnvelope,
    fees: AttemptFees,
    cancels: bool,
) -> Result<(), HotWalletError> {
    sqlx::query(
        "INSERT INTO transfer_attempts (tx_hash, purpose_key, attempt, max_fee_per_gas, max_priority_fee_per_gas, gas_limit, raw_tx, cancels)
         VALUES ($1, $2, $3, $4::numeric, $5::numeric, $6, $7, $8)",
    )
    .bind(envelope.tx_hash().to_string())
    .bind(purpose_key)
    .bind(attempt)
    .bind(fees.max_fee.to_string())
    .bind(fees.priority.to_string())
    .bind(fees.gas_limit as i64)
    .bind(envelope.encoded_2718())
    .bind(cancels)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Balance of ETH or of an ERC-20 token (`balanceOf`), in base units.
pub async fn balance_of(provider: &RootProvider, asset: Asset, owner: Address) -> Result<U256, HotWalletError> {
    match asset {
        Asset::Eth => provider.get_balance(owner).await.map_err(rpc),
        Asset::Erc20(contract) => {
            let mut data = Vec::with_capacity(36);
            data.extend_from_slice(&ERC20_BALANCE_OF_SELECTOR);
            data.extend_from_slice(&[0u8; 12]);
            data.extend_from_slice(owner.as_slice());
            let call = TransactionRequest::default().with_to(contract).with_input(Bytes::from(data));
            let answer = provider.call(call).await.map_err(rpc)?;
            if answer.len() < 32 {
                return Err(HotWalletError::Rpc(format!("{contract} answered balanceOf with {} bytes; is it an ERC-20?", answer.len())));
            }
            Ok(U256::from_be_slice(&answer[..32]))
        }
    }
}

fn is_benign_resend(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    // "underpriced" / "fee too low": the node refused these fees; `check` replaces the attempt
    // with higher ones once it counts as stuck.
    m.contains("already known")
        || m.contains("already imported")
        || m.contains("nonce too low")
        || m.contains("underpriced")
        || m.contains("fee too low")
        || m.contains("less than block base fee")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_transfer_calldata_is_the_abi_encoding_of_transfer() {
        let recipient = Address::from_str("0x70997970C51812dc3A010C7d01b50e0d17dc79C8").unwrap();
        let data = erc20_transfer_calldata(recipient, U256::from(1_500_000u64));
        assert_eq!(
            alloy::hex::encode(&data),
            "a9059cbb00000000000000000000000070997970c51812dc3a010c7d01b50e0d17dc79c8\
             000000000000000000000000000000000000000000000000000000000016e360"
        );
    }

    #[test]
    fn resend_errors_that_mean_already_there_are_benign() {
        assert!(is_benign_resend("server returned an error response: error code -32003: Transaction already known"));
        assert!(is_benign_resend("nonce too low"));
        assert!(!is_benign_resend("insufficient funds for gas * price + value"));
        assert!(is_benign_resend("replacement transaction underpriced"));
    }

    #[test]
    fn urls_never_reach_error_messages() {
        let message = "error sending request for url (https://mainnet.infura.io/v3/SECRETKEY): timed out";
        assert_eq!(redact_urls(message), "error sending request for url (<url>): timed out");
        assert_eq!(redact_urls("no url here"), "no url here");
    }
}
