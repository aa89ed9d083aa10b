//! Who may call what: a client with its own key (`Authorization: Bearer <client_key>`), an
//! operator with `ADMIN_TOKEN`. Secrets are compared in constant time, and a client key is
//! stored only as its SHA-256.

use super::{ApiError, ApiState};
use activities::db::clients;
use axum::{
    extract::FromRequestParts,
    http::{header::AUTHORIZATION, request::Parts, HeaderMap},
};
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use subtle::ConstantTimeEq;
use uuid::Uuid;

/// A new client key: 244 random bits (two UUIDv4), shown once.
pub fn new_client_key() -> String {
    format!("ck_{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple())
}

/// How a client key is stored.
pub fn key_hash(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// Compares the SHA-256 of both, so neither the content nor the length of a secret shows in the time taken.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    Sha256::digest(a.as_bytes()).ct_eq(&Sha256::digest(b.as_bytes())).into()
}

/// The bearer token of the request, if it has one.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers.get(AUTHORIZATION)?.to_str().ok()?.strip_prefix("Bearer ").map(str::trim)
}

/// The client behind `client_id`, if `key` is its key. Every refusal is the same 401 with the
/// same body (no key, a wrong key, a channel never registered or never issued a key), and each
/// costs one lookup and one constant-time comparison: channel ids are public, and probing must
/// not tell registered channels apart.
pub async fn authorize_client(pool: &PgPool, client_id: &str, key: Option<&str>) -> Result<clients::ClientRecord, ApiError> {
    let refused = || ApiError::unauthorized("this needs the client key given at registration for this channel");
    let stored = clients::key_hash(pool, client_id).await.map_err(ApiError::internal)?;
    let presented = key.map(str::trim).filter(|k| !k.is_empty());
    // Compared even when there is nothing to compare with, so both take the same time.
    let matches = constant_time_eq(stored.as_deref().unwrap_or(NO_STORED_KEY), &key_hash(presented.unwrap_or_default()));
    if !matches || stored.is_none() || presented.is_none() {
        return Err(refused());
    }
    clients::find(pool, client_id).await.map_err(ApiError::internal)?.ok_or_else(refused)
}

/// Not the SHA-256 hex of anything: never equal to a presented key's hash.
const NO_STORED_KEY: &str = "no stored key";

/// The operator surface is off (404) unless `ADMIN_TOKEN` is set; then it needs that token.
pub fn authorize_operator(admin_token: Option<&str>, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(expected) = admin_token else {
        return Err(ApiError::not_found("the admin surface is off (ADMIN_TOKEN is not set)"));
    };
    match bearer(headers) {
        None => Err(ApiError::unauthorized("operator routes need `Authorization: Bearer <ADMIN_TOKEN>`")),
        Some(token) if constant_time_eq(token, expected) => Ok(()),
        Some(_) => Err(ApiError::forbidden("wrong admin token")),
    }
}

/// An operator's request: the extractor that checks `ADMIN_TOKEN`. Put first among a handler's
/// arguments, so nothing about the request (a bad path, query or body) is answered before the
/// caller has shown the token.
pub struct Operator;

impl FromRequestParts<ApiState> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, Self::Rejection> {
        authorize_operator(state.admin_token(), &parts.headers).map(|()| Operator)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_keys_are_fresh_and_stored_only_as_their_hash() {
        let (a, b) = (new_client_key(), new_client_key());
        assert_ne!(a, b);
        assert_eq!(a.len(), 67);
        assert_eq!(key_hash(&a), key_hash(&a.clone()));
        assert_ne!(key_hash(&a), key_hash(&b));
        assert_eq!(key_hash(&a).len(), 64);
        assert!(!key_hash(&a).contains(&a[3..]));
    }

    #[test]
    fn operator_routes_are_off_without_a_token_and_need_the_right_one() {
        let mut headers = HeaderMap::new();
        assert_eq!(authorize_operator(None, &headers).unwrap_err().status, 404);
        assert_eq!(authorize_operator(Some("s3cret"), &headers).unwrap_err().status, 401);
        headers.insert(AUTHORIZATION, "Bearer s3cre".parse().unwrap());
        assert_eq!(authorize_operator(Some("s3cret"), &headers).unwrap_err().status, 403);
        headers.insert(AUTHORIZATION, "Bearer s3cret".parse().unwrap());
        assert!(authorize_operator(Some("s3cret"), &headers).is_ok());
    }
}
