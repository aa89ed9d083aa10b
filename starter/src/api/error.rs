//! Every API error is JSON `{"error": ..., "field": ...}` with the status that says who must act:
//! 400 unreadable request, 401 no (or forged) credentials, 403 credentials that do not allow it, 404 unknown thing (or the
//! admin surface off), 409 conflicts with what exists, 422 a field that fails validation.

use crate::cli::clients::ClientInputError;
use axum::{
    http::StatusCode,
    response::{IntoResponse, Response},
    Json,
};
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: String,
    /// The request field at fault, when one is.
    pub field: Option<String>,
}

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub body: ErrorBody,
}

impl ApiError {
    fn new(status: StatusCode, error: impl Into<String>, field: Option<&str>) -> Self {
        Self { status, body: ErrorBody { error: error.into(), field: field.map(str::to_owned) } }
    }

    pub fn bad_request(error: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, error, None)
    }

    /// A request part that cannot be read (`field`: `path` or `query`).
    pub fn bad_request_in(field: &str, error: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, error, Some(field))
    }

    pub fn method_not_allowed() -> Self {
        Self::new(StatusCode::METHOD_NOT_ALLOWED, "this route does not take that method", None)
    }

    pub fn unauthorized(error: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, error, None)
    }

    pub fn forbidden(error: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, error, None)
    }

    /// Credentials in a request field that are missing, forged or stale.
    pub fn unauthorized_in(field: &str, error: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, error, Some(field))
    }

    /// Credentials in a request field that are valid but do not allow this.
    pub fn forbidden_in(field: &str, error: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, error, Some(field))
    }

    /// Something the request needs is down or switched off; nothing was changed.
    pub fn unavailable(error: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, error, None)
    }

    pub fn not_found(error: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, error, None)
    }

    pub fn conflict(error: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, error, None)
    }

    pub fn invalid(field: &str, error: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, error, Some(field))
    }

    pub fn too_many_requests(error: impl Into<String>) -> Self {
        Self::new(StatusCode::TOO_MANY_REQUESTS, error, None)
    }

    /// The cause is logged, never shown: it can name tables, hosts or internals.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "API request failed");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error; the operators have the details in the logs", None)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body)).into_response()
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        Self::internal(e)
    }
}

/// The field of the client form each validation error is about (the CLI's own validation).
impl From<ClientInputError> for ApiError {
    fn from(e: ClientInputError) -> Self {
        let field = match &e {
            ClientInputError::BadClientId => "client_id",
            ClientInputError::BadStrategy(_) => "payout_strategy",
            ClientInputError::BadThreshold(_)
            | ClientInputError::ThresholdTooLow(_)
            | ClientInputError::ThresholdTooHigh { .. }
            | ClientInputError::ThresholdTooPrecise(_)
            | ClientInputError::ThresholdOnInstant => "payout_threshold_usd",
            ClientInputError::BadCurrency(_) => "payout_currency",
            ClientInputError::Address(crate::wallet_address::AddressError::UnsupportedNetwork(_)) => "payout_network",
            ClientInputError::Address(_) => "wallet_address",
        };
        Self::invalid(field, e.to_string())
    }
}
