//! The JSON API under `/api/v1` (DESIGN.md, "Surfaces"): public registration; a client's own
//! status and changes behind its client key; operator routes behind `ADMIN_TOKEN` (off without
//! it). Described by the OpenAPI 3 document at `/api/v1/openapi.json`, generated from these
//! handlers ([`openapi`]). Every error is JSON `{"error", "field"}` ([`ApiError`]); validation is
//! the CLI's own code path.

mod auth;
pub mod channel_proof;
pub mod clients;
mod error;
mod extract;
pub mod instant_payouts;
pub mod openapi;
pub mod operators;
mod rate_limit;

pub use auth::{authorize_client, bearer, constant_time_eq, key_hash, new_client_key};
pub use error::{ApiError, ErrorBody};
pub use extract::{ApiPath, ApiQuery};

use crate::{pages::AdminSessions, temporal_gateway::TemporalGateway};
use activities::{config::Secret, telegram::TelegramConfig};
use axum::{
    routing::{get, patch, post},
    Router,
};
use rate_limit::RateLimiter;
use serde::de::DeserializeOwned;
use serde_json::Value;
use sqlx::PgPool;
use std::{sync::Arc, time::Duration};

/// Registrations per address per minute.
const REGISTRATIONS_PER_MINUTE: u32 = 10;
/// Admin login attempts per address and minute, right or wrong.
pub const ADMIN_LOGINS_PER_MINUTE: u32 = 5;

#[derive(Clone)]
pub struct ApiState {
    pub pool: PgPool,
    pub temporal: Arc<TemporalGateway>,
    admin_token: Option<Secret>,
    registrations: Arc<RateLimiter>,
    admin_logins: Arc<RateLimiter>,
    pub admin_sessions: Arc<AdminSessions>,
    /// `TEMPORAL_UI_URL`, for links into the Temporal UI, and the namespace they point into.
    pub temporal_ui_url: String,
    pub temporal_namespace: String,
    /// The platform's bot: who registers a channel proves through it that they own it.
    pub telegram: Arc<TelegramConfig>,
}

impl ApiState {
    pub fn new(
        pool: PgPool,
        temporal: Arc<TemporalGateway>,
        admin_token: Option<Secret>,
        temporal_ui_url: &str,
        telegram: TelegramConfig,
    ) -> Self {
        let registrations = Arc::new(RateLimiter::new(REGISTRATIONS_PER_MINUTE, Duration::from_secs(60)));
        let temporal_namespace = temporal.namespace().to_owned();
        Self {
            pool,
            temporal,
            admin_token,
            registrations,
            admin_logins: Arc::new(RateLimiter::new(ADMIN_LOGINS_PER_MINUTE, Duration::from_secs(60))),
            admin_sessions: Arc::default(),
            temporal_ui_url: temporal_ui_url.trim_end_matches('/').to_owned(),
            temporal_namespace,
            telegram: Arc::new(telegram),
        }
    }

    /// Counts one registration from `ip`; whether it is within the limit (API and page share it).
    pub fn allow_registration(&self, ip: std::net::IpAddr, now: std::time::Instant) -> bool {
        self.registrations.allow(ip, now)
    }

    /// Counts one admin login attempt from `ip`; whether it may be checked (guessing the token
    /// is slowed to a few tries a minute per address).
    pub fn allow_admin_login(&self, ip: std::net::IpAddr, now: std::time::Instant) -> bool {
        self.admin_logins.allow(ip, now)
    }

    pub fn admin_token(&self) -> Option<&str> {
        self.admin_token.as_ref().map(Secret::expose).filter(|t| !t.is_empty())
    }
}

pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/api/v1/openapi.json", get(openapi::document))
        .route("/api/v1/clients", post(clients::register))
        .route("/api/v1/clients/{client_id}", patch(clients::change))
        .route("/api/v1/clients/{client_id}/status", get(clients::status))
        .route("/api/v1/payout-batches", get(operators::list_payout_batches))
        .route("/api/v1/payout-batches/{batch_id}/retry", post(operators::retry_payout_batch))
        .route("/api/v1/payout-batches/{batch_id}/cancel", post(operators::cancel_payout_batch))
        .route("/api/v1/payout-batches/{batch_id}/approve", post(operators::approve_payout_batch))
        .route("/api/v1/payout-batches/{batch_id}/reject", post(operators::reject_payout_batch))
        .route("/api/v1/instant-payouts/{payment_id}/approve", post(instant_payouts::approve_instant_payout))
        .route("/api/v1/instant-payouts/{payment_id}/reject", post(instant_payouts::reject_instant_payout))
        .route("/api/v1/clients/{client_id}/payout-now", post(operators::payout_now))
        .route("/api/v1/conversions", get(operators::list_conversions))
        .route("/api/v1/alerts", get(operators::list_alerts))
        .route("/api/v1/alerts/{alert_id}/ack", post(operators::ack_alert))
        .route("/api/v1/settings", get(operators::get_settings).put(operators::put_settings))
        .method_not_allowed_fallback(|| async { ApiError::method_not_allowed() })
        .with_state(state)
}

/// The request body as `T`: 400 when it is not a JSON object, 422 (naming the field when serde
/// does) when it does not fit.
pub(crate) fn read_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("the body is not JSON: {e}")))?;
    if !value.is_object() {
        return Err(ApiError::bad_request("the body must be a JSON object"));
    }
    serde_json::from_value(value).map_err(|e| {
        let message = e.to_string();
        match named_field(&message) {
            Some(field) => ApiError::invalid(&field, message),
            None => ApiError::invalid("body", message),
        }
    })
}

/// The field serde names in "missing field `x`" or "unknown field `x`, expected ...".
fn named_field(message: &str) -> Option<String> {
    let start = message.find('`')? + 1;
    let end = start + message[start..].find('`')?;
    Some(message[start..end].to_owned())
}

/// A USD amount sent as a JSON string or number, as text for the shared validation. Exact:
/// serde_json keeps a number's digits (`arbitrary_precision`), it never passes through `f64`. // float-ok: names the type it avoids
pub(crate) fn decimal_text(field: &str, value: Option<Value>) -> Result<Option<String>, ApiError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text)),
        Some(Value::Number(number)) => Ok(Some(number.to_string())),
        Some(other) => Err(ApiError::invalid(field, format!("{field} must be a decimal string or number, got {other}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Form {
        name: String,
    }

    #[test]
    fn unreadable_bodies_are_400_and_misfits_422_with_the_field() {
        assert_eq!(read_json::<Form>(b"{nope").unwrap_err().status, 400);
        assert_eq!(read_json::<Form>(b"[1]").unwrap_err().status, 400);
        let missing = read_json::<Form>(b"{}").unwrap_err();
        assert_eq!((missing.status.as_u16(), missing.body.field.as_deref()), (422, Some("name")));
        let unknown = read_json::<Form>(br#"{"name": "a", "admin": true}"#).unwrap_err();
        assert_eq!(unknown.body.field.as_deref(), Some("admin"));
    }

    #[test]
    fn amounts_keep_their_digits() {
        let number: Value = serde_json::from_str("100.10").unwrap();
        assert_eq!(decimal_text("t", Some(number)).unwrap().as_deref(), Some("100.10"));
        assert_eq!(decimal_text("t", Some(Value::String("55.5".into()))).unwrap().as_deref(), Some("55.5"));
        assert_eq!(decimal_text("t", Some(Value::Bool(true))).unwrap_err().body.field.as_deref(), Some("t"));
    }
}
