//! The `clients` table: channel owners and how they want to be paid.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use sqlx::{PgPool, Row};
use workflows::domain::PayoutStrategy;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRecord {
    pub client_id: String,
    pub wallet_address: String,
    pub payout_currency: String,
    pub payout_network: String,
    pub payout_strategy: PayoutStrategy,
    pub payout_threshold_usd: Decimal,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The fields an operator sets; validated by the caller before it reaches the database
/// (the table's CHECK constraints are the last line of defence, not the first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientSettings {
    pub client_id: String,
    pub wallet_address: String,
    pub payout_currency: String,
    pub payout_network: String,
    pub payout_strategy: PayoutStrategy,
    pub payout_threshold_usd: Decimal,
}

#[derive(Debug, thiserror::Error)]
pub enum ClientStoreError {
    #[error("client {0} already exists (use `client update`)")]
    AlreadyExists(String),
    #[error("client {0} does not exist")]
    NotFound(String),
    #[error("the stored client {client_id} is unreadable: {reason}")]
    Corrupt { client_id: String, reason: String },
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Where the cap on client thresholds lives (a trigger enforces it on `clients`).
pub const MAX_THRESHOLD_SETTING: &str = "max_client_threshold_usd";

/// The largest threshold a client may have.
pub async fn max_threshold(pool: &PgPool) -> Result<Decimal, ClientStoreError> {
    let value: Decimal = sqlx::query_scalar("SELECT max_client_threshold_usd()").fetch_one(pool).await?;
    Ok(value)
}

/// Sets the cap; the database refuses one below 50 USD or below an existing client's threshold,
/// with a message saying which.
pub async fn set_max_threshold(pool: &PgPool, usd: Decimal) -> Result<(), ClientStoreError> {
    Ok(super::settings::put(pool, MAX_THRESHOLD_SETTING, &format!("{usd:.2}")).await?)
}

const COLUMNS: &str = "client_id, wallet_address, payout_currency, payout_network, \
                       payout_strategy, payout_threshold_usd, created_at, updated_at";

pub async fn insert(pool: &PgPool, client: &ClientSettings) -> Result<ClientRecord, ClientStoreError> {
    insert_with_key(pool, client, None).await
}

/// Inserts the client with the SHA-256 (hex) of its client key, in one statement: a client never
/// exists without the key its registration returned.
pub async fn insert_with_key(pool: &PgPool, client: &ClientSettings, key_hash: Option<&str>) -> Result<ClientRecord, ClientStoreError> {
    insert_row(pool, client, key_hash, None).await
}

/// Inserts a client registered by its owner: the key's hash and the owner's Telegram user id,
/// proven before this call, in the same statement.
pub async fn insert_owned(
    pool: &PgPool,
    client: &ClientSettings,
    key_hash: &str,
    owner_telegram_id: i64,
) -> Result<ClientRecord, ClientStoreError> {
    insert_row(pool, client, Some(key_hash), Some(owner_telegram_id)).await
}

async fn insert_row(
    pool: &PgPool,
    client: &ClientSettings,
    key_hash: Option<&str>,
    owner_telegram_id: Option<i64>,
) -> Result<ClientRecord, ClientStoreError> {
    let row = sqlx::query(&format!(
        "INSERT INTO clients (client_id, wallet_address, payout_currency, payout_network, payout_strategy,
                              payout_threshold_usd, payout_threshold_updated_at, client_key_hash, owner_telegram_id)
         VALUES ($1, $2, $3, $4, $5, $6, now(), $7, $8)
         ON CONFLICT (client_id) DO NOTHING
         RETURNING {COLUMNS}"
    ))
    .bind(&client.client_id)
    .bind(&client.wallet_address)
    .bind(&client.payout_currency)
    .bind(&client.payout_network)
    .bind(client.payout_strategy.as_str())
    .bind(client.payout_threshold_usd)
    .bind(key_hash)
    .bind(owner_telegram_id)
    .fetch_optional(pool)
    .await?
    .ok_or_else(|| ClientStoreError::AlreadyExists(client.client_id.clone()))?;
    from_row(&row)
}

/// The Telegram user who proved they own the client's channel; `None` for a client added by an
/// operator without that proof (or an unknown client).
pub async fn owner_telegram_id(pool: &PgPool, client_id: &str) -> Result<Option<i64>, ClientStoreError> {
    let owner: Option<Option<i64>> =
        sqlx::query_scalar("SELECT owner_telegram_id FROM clients WHERE client_id = $1").bind(client_id).fetch_optional(pool).await?;
    Ok(owner.flatten())
}

pub async fn update(pool: &PgPool, client: &ClientSettings) -> Result<ClientRecord, ClientStoreError> {
    let row = sqlx::query(&format!(
        "UPDATE clients SET wallet_address = $2, payout_currency = $3, payout_network = $4,
                payout_strategy = $5, payout_threshold_usd = $6, updated_at = now(),
                payout_threshold_updated_at = CASE WHEN payout_threshold_usd <> $6 THEN now()
                                                   ELSE payout_threshold_updated_at END
         WHERE client_id = $1
         RETURNING {COLUMNS}"
    ))
    .bind(&client.client_id)
    .bind(&client.wallet_address)
    .bind(&client.payout_currency)
    .bind(&client.payout_network)
    .bind(client.payout_strategy.as_str())
    .bind(client.payout_threshold_usd)
    .fetch_optional(pool)
    .await?
    .ok_or_else(|| ClientStoreError::NotFound(client.client_id.clone()))?;
    from_row(&row)
}

/// Replaces the client's key by one with this SHA-256 (hex); whether the client exists.
pub async fn set_key_hash(pool: &PgPool, client_id: &str, key_hash: &str) -> Result<bool, ClientStoreError> {
    let done = sqlx::query("UPDATE clients SET client_key_hash = $2, updated_at = now() WHERE client_id = $1")
        .bind(client_id)
        .bind(key_hash)
        .execute(pool)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// The SHA-256 (hex) of the client's key; `None` for an unknown client or one without a key.
pub async fn key_hash(pool: &PgPool, client_id: &str) -> Result<Option<String>, ClientStoreError> {
    let hash: Option<Option<String>> =
        sqlx::query_scalar("SELECT client_key_hash FROM clients WHERE client_id = $1").bind(client_id).fetch_optional(pool).await?;
    Ok(hash.flatten())
}

/// Rows of the client not paid out yet (converted or not), and the wallet they will be paid to.
pub async fn unpaid_rows(pool: &PgPool, client_id: &str) -> Result<Vec<(String, i64)>, ClientStoreError> {
    Ok(sqlx::query_as(
        "SELECT client_wallet_address, count(*) FROM payout_accumulation
         WHERE client_id = $1 AND NOT is_paid_out GROUP BY client_wallet_address ORDER BY client_wallet_address",
    )
    .bind(client_id)
    .fetch_all(pool)
    .await?)
}

pub async fn find(pool: &PgPool, client_id: &str) -> Result<Option<ClientRecord>, ClientStoreError> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM clients WHERE client_id = $1")).bind(client_id).fetch_optional(pool).await?;
    row.as_ref().map(from_row).transpose()
}

fn from_row(row: &sqlx::postgres::PgRow) -> Result<ClientRecord, ClientStoreError> {
    let client_id: String = row.try_get("client_id")?;
    let strategy: String = row.try_get("payout_strategy")?;
    let payout_strategy = strategy.parse().map_err(|e: workflows::domain::UnknownVariant| ClientStoreError::Corrupt {
        client_id: client_id.clone(),
        reason: e.to_string(),
    })?;
    Ok(ClientRecord {
        client_id,
        wallet_address: row.try_get("wallet_address")?,
        payout_currency: row.try_get("payout_currency")?,
        payout_network: row.try_get("payout_network")?,
        payout_strategy,
        payout_threshold_usd: row.try_get("payout_threshold_usd")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}
