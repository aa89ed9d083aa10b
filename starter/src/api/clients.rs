//! The client's routes: public registration, then its own status and changes behind its key.

use super::{auth, channel_proof, decimal_text, read_json, ApiError, ApiPath, ApiState};
use crate::cli::clients::{self as rules, ClientInput};
use activities::db::{
    alerts::{self, AlertKind, NewAlert},
    client_status::{self, PastPayout, RecentPayment},
    clients::{self, ClientRecord, ClientStoreError},
};
use activities::telegram::login::TelegramUser;
use axum::{
    body::Bytes,
    extract::{ConnectInfo, State},
    http::{HeaderMap, StatusCode},
    Json,
};
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::{net::SocketAddr, time::Instant};
use utoipa::ToSchema;
use uuid::Uuid;
use workflows::domain::PayoutStrategy;

/// `POST /api/v1/clients`, named as the `clients` columns.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Registration {
    /// The Telegram channel id.
    pub client_id: String,
    pub wallet_address: String,
    /// The coin the client is paid in (`xmr`, `btc`, `eth`, ...).
    pub payout_currency: String,
    /// Defaults to the currency itself.
    #[serde(default)]
    pub payout_network: Option<String>,
    /// `instant` or `threshold`.
    pub payout_strategy: String,
    /// USD, a JSON string or number with at most 2 decimals; 50 up to the cap for `threshold`,
    /// absent or 0 for `instant`.
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "100")]
    pub payout_threshold_usd: Option<Value>,
    /// What Telegram's Login Widget handed back (`id`, `first_name`, `username`, ..., `auth_date`,
    /// `hash`), unchanged. Required: it proves who registers, and Telegram must say that user owns
    /// the channel.
    #[serde(default)]
    #[schema(value_type = Object, example = json!({"id": 42, "first_name": "Ann", "username": "ann", "auth_date": 1700000000, "hash": "bf62..."}))]
    pub telegram_auth: Option<Value>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Registered {
    pub client_id: String,
    /// Shown once: only its hash is stored. Send it as `Authorization: Bearer <client_key>`.
    pub client_key: String,
    /// The client's private status page.
    pub status_url: String,
}

/// `PATCH /api/v1/clients/{client_id}`: what to change; the rest stays.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientChange {
    pub wallet_address: Option<String>,
    pub payout_currency: Option<String>,
    pub payout_network: Option<String>,
    pub payout_strategy: Option<String>,
    #[schema(value_type = Option<String>, example = "250")]
    pub payout_threshold_usd: Option<Value>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ClientView {
    pub client_id: String,
    pub wallet_address: String,
    pub payout_currency: String,
    pub payout_network: String,
    pub payout_strategy: String,
    #[schema(value_type = String)]
    pub payout_threshold_usd: Decimal,
    /// Rows not paid yet stay with the wallet they were paid in for: where each group goes.
    pub unpaid_rows_paid_to: Vec<UnpaidRows>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct UnpaidRows {
    pub wallet_address: String,
    pub rows: i64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ClientStatus {
    pub client_id: String,
    pub payout_strategy: String,
    pub payout_currency: String,
    pub payout_network: String,
    pub wallet_address: String,
    #[schema(value_type = String)]
    pub threshold_usd: Decimal,
    /// Converted to USDT at the rate of the day, not paid yet.
    #[schema(value_type = String)]
    pub accumulated_usdt: Decimal,
    /// Net USD of payments still being converted.
    #[schema(value_type = String)]
    pub pending_conversion_usd: Decimal,
    #[schema(value_type = String)]
    pub remaining_usd: Decimal,
    #[schema(value_type = String)]
    pub progress_percent: Decimal,
    /// At the client's own pace over the last 30 days; null without recent payments.
    pub estimated_payout_at: Option<DateTime<Utc>>,
    pub recent_payments: Vec<PaymentView>,
    /// Threshold payouts (payout batches), most recent first.
    pub payouts: Vec<PayoutView>,
    /// Instant payouts, one per payment, most recent first.
    pub instant_payouts: Vec<InstantPayoutView>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct InstantPayoutView {
    pub payment_id: i64,
    /// `pending`, `awaiting_approval`, `held`, `exchange_created`, `sent`, `completed`, `failed`, `refunded` or `rejected`.
    pub status: String,
    #[schema(value_type = String)]
    pub amount_eth: Decimal,
    pub payout_currency: String,
    #[schema(value_type = Option<String>)]
    pub amount_received: Option<Decimal>,
    /// The transaction that paid the client on its own chain.
    pub payout_hash: Option<String>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PaymentView {
    pub payment_id: i64,
    #[schema(value_type = String)]
    pub price_usd: Decimal,
    #[schema(value_type = Option<String>)]
    pub net_usd: Option<Decimal>,
    pub status: String,
    pub received_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PayoutView {
    pub batch_id: Uuid,
    pub status: String,
    #[schema(value_type = String)]
    pub total_usdt: Decimal,
    pub payout_currency: String,
    pub wallet_address: String,
    /// The USDT transfer(s) from the hot wallet to ChangeNow.
    pub tx_hash: Option<String>,
    /// The transaction(s) that paid the client on its own chain (comma-separated when the payout
    /// took several exchanges).
    pub payout_hash: Option<String>,
    pub created_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
}

/// The registration rules of the CLI (`client add`), then the cap on thresholds.
async fn validated(state: &ApiState, input: &ClientInput, existing: Option<&ClientRecord>) -> Result<clients::ClientSettings, ApiError> {
    let settings = rules::validate(input, existing)?;
    let max = clients::max_threshold(&state.pool).await.map_err(ApiError::internal)?;
    rules::check_max(&settings, max)?;
    Ok(settings)
}

fn store_error(e: ClientStoreError) -> ApiError {
    match e {
        ClientStoreError::AlreadyExists(id) => ApiError::conflict(format!("client {id} already exists")),
        ClientStoreError::NotFound(id) => ApiError::not_found(format!("there is no client {id}")),
        other => ApiError::internal(other),
    }
}

/// Register a client (public; rate-limited per address).
#[utoipa::path(post, path = "/api/v1/clients", tag = "clients", request_body = Registration,
    responses(
        (status = 201, description = "Registered; the client key is shown this once", body = Registered),
        (status = 400, description = "Not JSON", body = super::ErrorBody),
        (status = 401, description = "`telegram_auth` missing, forged or stale; nothing stored", body = super::ErrorBody),
        (status = 403, description = "Telegram says this user does not own the channel; nothing stored", body = super::ErrorBody),
        (status = 409, description = "The client exists", body = super::ErrorBody),
        (status = 422, description = "A field is invalid", body = super::ErrorBody),
        (status = 429, description = "Too many registrations from this address", body = super::ErrorBody),
        (status = 503, description = "Telegram cannot be asked now, or registration is off; nothing stored", body = super::ErrorBody)))]
pub async fn register(
    State(state): State<ApiState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    body: Bytes,
) -> Result<(StatusCode, Json<Registered>), ApiError> {
    if !state.allow_registration(peer.ip(), Instant::now()) {
        return Err(ApiError::too_many_requests("too many registrations from this address; try again in a minute"));
    }
    let form: Registration = read_json(&body)?;
    let owner = channel_proof::verified_user(&state, form.telegram_auth.as_ref())?;
    let registered = register_client(&state, form, &owner).await?;
    Ok((StatusCode::CREATED, Json(registered)))
}

/// Registration, shared by the API and the `/register` page, for a user whose Telegram login was
/// verified: the fields are checked (422), then Telegram is asked whether the user owns the
/// channel (403), and only then is anything stored (409 if the channel is taken). Checking
/// ownership before the conflict keeps strangers from learning which channels are registered.
pub async fn register_client(state: &ApiState, form: Registration, owner: &TelegramUser) -> Result<Registered, ApiError> {
    let input = ClientInput {
        client_id: form.client_id,
        wallet_address: Some(form.wallet_address),
        payout_currency: Some(form.payout_currency),
        payout_network: form.payout_network.filter(|n| !n.trim().is_empty()),
        payout_strategy: Some(form.payout_strategy),
        payout_threshold_usd: decimal_text("payout_threshold_usd", form.payout_threshold_usd)?,
    };
    let settings = validated(state, &input, None).await?;
    channel_proof::require_owner(state, owner, &settings.client_id).await?;
    let client_key = auth::new_client_key();
    let client = clients::insert_owned(&state.pool, &settings, &auth::key_hash(&client_key), owner.id).await.map_err(store_error)?;
    tracing::info!(client_id = %client.client_id, strategy = %client.payout_strategy, owner_telegram_id = owner.id, "client registered");
    let status_url = format!("/clients/{}?key={client_key}", client.client_id);
    Ok(Registered { client_id: client.client_id, client_key, status_url })
}

/// The client's payout status.
#[utoipa::path(get, path = "/api/v1/clients/{client_id}/status", tag = "clients",
    params(("client_id" = String, Path, description = "The channel id")),
    security(("client_key" = [])),
    responses(
        (status = 200, body = ClientStatus),
        (status = 401, body = super::ErrorBody,
            description = "No key, a wrong key or a channel never registered: one answer, so probing tells nothing")))]
pub async fn status(
    State(state): State<ApiState>,
    ApiPath(client_id): ApiPath<String>,
    headers: HeaderMap,
) -> Result<Json<ClientStatus>, ApiError> {
    let client = auth::authorize_client(&state.pool, &client_id, auth::bearer(&headers)).await?;
    Ok(Json(client_status_of(&state, &client).await?))
}

pub async fn client_status_of(state: &ApiState, client: &ClientRecord) -> Result<ClientStatus, ApiError> {
    let totals = client_status::totals(&state.pool, &client.client_id).await?;
    let threshold = match client.payout_strategy {
        PayoutStrategy::Threshold => client.payout_threshold_usd,
        PayoutStrategy::Instant => Decimal::ZERO,
    };
    let progress = client_status::progress(&totals, threshold, Utc::now());
    let recent = client_status::recent_payments(&state.pool, &client.client_id).await?;
    let payouts = client_status::past_payouts(&state.pool, &client.client_id).await?;
    let instant = client_status::instant_payouts(&state.pool, &client.client_id).await?;
    Ok(ClientStatus {
        client_id: client.client_id.clone(),
        payout_strategy: client.payout_strategy.as_str().to_owned(),
        payout_currency: client.payout_currency.clone(),
        payout_network: client.payout_network.clone(),
        wallet_address: client.wallet_address.clone(),
        threshold_usd: threshold,
        accumulated_usdt: totals.accumulated_usdt,
        pending_conversion_usd: totals.pending_conversion_usd,
        remaining_usd: progress.remaining_usd,
        progress_percent: progress.progress_percent,
        estimated_payout_at: progress.estimated_payout_at,
        recent_payments: recent.into_iter().map(PaymentView::from).collect(),
        payouts: payouts.into_iter().map(PayoutView::from).collect(),
        instant_payouts: instant
            .into_iter()
            .map(|p| InstantPayoutView {
                payment_id: p.payment_id,
                status: p.status,
                amount_eth: p.amount_eth,
                payout_currency: p.payout_currency,
                amount_received: p.amount_received,
                payout_hash: p.payout_hash,
                created_at: p.created_at,
            })
            .collect(),
    })
}

impl From<RecentPayment> for PaymentView {
    fn from(p: RecentPayment) -> Self {
        Self {
            payment_id: p.payment_id,
            price_usd: p.price_amount,
            net_usd: p.net_amount_usd,
            status: p.status,
            received_at: p.received_at,
        }
    }
}

impl From<PastPayout> for PayoutView {
    fn from(p: PastPayout) -> Self {
        Self {
            batch_id: p.batch_id,
            status: p.status,
            total_usdt: p.total_amount_usdt,
            payout_currency: p.payout_currency,
            wallet_address: p.wallet_address,
            tx_hash: p.tx_hash,
            payout_hash: p.payout_hash,
            created_at: p.created_at,
            completed_at: p.completed_at,
        }
    }
}

/// Change the client's wallet, coin, network, strategy or threshold.
#[utoipa::path(patch, path = "/api/v1/clients/{client_id}", tag = "clients", request_body = ClientChange,
    params(("client_id" = String, Path, description = "The channel id")),
    security(("client_key" = [])),
    responses(
        (status = 200, body = ClientView),
        (status = 400, body = super::ErrorBody),
        (status = 401, body = super::ErrorBody,
            description = "No key, a wrong key or a channel never registered: one answer, so probing tells nothing"),
        (status = 422, body = super::ErrorBody)))]
pub async fn change(
    State(state): State<ApiState>,
    ApiPath(client_id): ApiPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<ClientView>, ApiError> {
    let client = auth::authorize_client(&state.pool, &client_id, auth::bearer(&headers)).await?;
    let change: ClientChange = read_json(&body)?;
    Ok(Json(change_client(&state, &client, change).await?))
}

/// A change, shared by the API and the status page's form. A new wallet while rows are unpaid
/// raises an alert for operators (seed 000, risk 5): those rows are still paid to the wallet they
/// were accumulated for, which the answer lists.
pub async fn change_client(state: &ApiState, client: &ClientRecord, change: ClientChange) -> Result<ClientView, ApiError> {
    let input = ClientInput {
        client_id: client.client_id.clone(),
        wallet_address: change.wallet_address,
        payout_currency: change.payout_currency,
        payout_network: change.payout_network,
        payout_strategy: change.payout_strategy,
        payout_threshold_usd: decimal_text("payout_threshold_usd", change.payout_threshold_usd)?,
    };
    let settings = validated(state, &input, Some(client)).await?;
    let updated = clients::update(&state.pool, &settings).await.map_err(store_error)?;
    let unpaid = clients::unpaid_rows(&state.pool, &updated.client_id).await.map_err(ApiError::internal)?;
    let elsewhere: Vec<&(String, i64)> = unpaid.iter().filter(|(wallet, _)| *wallet != updated.wallet_address).collect();
    if updated.wallet_address != client.wallet_address && !elsewhere.is_empty() {
        let rows: i64 = elsewhere.iter().map(|(_, n)| n).sum();
        let message = format!(
            "client {} changed its wallet from {} to {} with {rows} unpaid payment(s) still to be paid to the old wallet; \
             confirm the change with the client before they are paid",
            updated.client_id, client.wallet_address, updated.wallet_address
        );
        let mut tx = state.pool.begin().await?;
        let alert = NewAlert {
            dedupe_key: format!("wallet-changed-with-unpaid:{}:{}", updated.client_id, updated.wallet_address),
            kind: AlertKind::WalletChangedWithUnpaid,
            subject: updated.client_id.clone(),
            message: &message,
        };
        alerts::raise_unless_open(&mut tx, &alert).await?;
        tx.commit().await?;
        tracing::warn!(client_id = %updated.client_id, rows, alert = true, "wallet changed with unpaid rows");
    }
    Ok(ClientView {
        client_id: updated.client_id,
        wallet_address: updated.wallet_address,
        payout_currency: updated.payout_currency,
        payout_network: updated.payout_network,
        payout_strategy: updated.payout_strategy.as_str().to_owned(),
        payout_threshold_usd: updated.payout_threshold_usd,
        unpaid_rows_paid_to: unpaid.into_iter().map(|(wallet_address, rows)| UnpaidRows { wallet_address, rows }).collect(),
    })
}
