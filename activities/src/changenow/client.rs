//! The HTTP client for ChangeNow API v2.
//!
//! Errors are classified for Temporal: a request ChangeNow refuses (bad address, amount out of
//! range, unknown pair) is not retryable, the workflow fails fast with ChangeNow's own reason;
//! 429, 5xx, time-outs, connection errors and a refused API key (alerted) are retried.

use super::api::{
    CreateExchangeRequest, CreateExchangeResponse, ErrorResponse, EstimateResponse, ExchangePair, ExchangeStatusResponse, Flow,
    RangeResponse, API_KEY_HEADER, ESTIMATE_PATH, EXCHANGE_PATH, RANGE_PATH, STATUS_PATH,
};
use reqwest::{RequestBuilder, StatusCode};
use rust_decimal::Decimal;
use serde::de::DeserializeOwned;
use std::time::Duration;

/// How long one ChangeNow request may take, connecting included. Below the activities'
/// start-to-close timeout ([`workflows::steps::STEP_TIMEOUT`]) with room for the database write
/// that follows: a request still running when Temporal gives up on the attempt could create an
/// exchange nobody stores (an orphan), and the retry would create a second one.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum ChangeNowError {
    /// 4xx other than 401/403/429: the request itself is wrong and will stay wrong.
    #[error("ChangeNow refused the request ({status}): {code}: {message}")]
    Rejected { status: u16, code: String, message: String },
    #[error("ChangeNow refused the API key ({status}); check CHANGENOW_API_KEY")]
    Unauthorized { status: u16 },
    #[error("ChangeNow rate-limited the request (429)")]
    RateLimited,
    #[error("ChangeNow is unavailable ({status}): {body}")]
    Unavailable { status: u16, body: String },
    #[error("ChangeNow did not answer: {0}")]
    Transport(String),
    #[error("ChangeNow answered something unreadable: {0}")]
    BadResponse(String),
}

impl ChangeNowError {
    /// A refused API key is retried too: it is a configuration problem an operator fixes (and is
    /// alerted about), not a reason to give up on the payout.
    pub fn is_retryable(&self) -> bool {
        !matches!(self, Self::Rejected { .. })
    }

    /// ChangeNow's error code, e.g. `not_valid_address`.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Rejected { code, .. } => Some(code),
            _ => None,
        }
    }
}

#[derive(Clone)]
pub struct ChangeNowClient {
    http: reqwest::Client,
    base_url: String,
    api_key: String,
}

impl std::fmt::Debug for ChangeNowClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The base URL may carry credentials in some set-ups, the key always is one.
        f.debug_struct("ChangeNowClient").finish_non_exhaustive()
    }
}

impl ChangeNowClient {
    pub fn new(base_url: &str, api_key: &str, timeout: Duration) -> Result<Self, ChangeNowError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .build()
            .map_err(|e| ChangeNowError::Transport(e.to_string()))?;
        Ok(Self { http, base_url: base_url.trim_end_matches('/').to_owned(), api_key: api_key.to_owned() })
    }

    pub async fn range(&self, pair: &ExchangePair, flow: Flow) -> Result<RangeResponse, ChangeNowError> {
        let request = self.http.get(self.url(RANGE_PATH)).query(&pair_query(pair)).query(&[("flow", flow.as_str())]);
        self.send(request).await
    }

    pub async fn estimate(&self, pair: &ExchangePair, from_amount: Decimal, flow: Flow) -> Result<EstimateResponse, ChangeNowError> {
        let mut request = self
            .http
            .get(self.url(ESTIMATE_PATH))
            .query(&pair_query(pair))
            .query(&[("fromAmount", from_amount.normalize().to_string()), ("flow", flow.as_str().to_owned())]);
        if flow == Flow::FixedRate {
            request = request.query(&[("useRateId", "true")]);
        }
        self.send(request).await
    }

    pub async fn create_exchange(&self, order: &CreateExchangeRequest) -> Result<CreateExchangeResponse, ChangeNowError> {
        self.send(self.http.post(self.url(EXCHANGE_PATH)).json(order)).await
    }

    pub async fn exchange_status(&self, id: &str) -> Result<ExchangeStatusResponse, ChangeNowError> {
        self.send(self.http.get(self.url(STATUS_PATH)).query(&[("id", id)])).await
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    async fn send<T: DeserializeOwned>(&self, request: RequestBuilder) -> Result<T, ChangeNowError> {
        let response = request.header(API_KEY_HEADER, &self.api_key).send().await.map_err(|e| ChangeNowError::Transport(without_url(e)))?;
        let status = response.status();
        let body = response.text().await.map_err(|e| ChangeNowError::Transport(without_url(e)))?;
        if status.is_success() {
            return serde_json::from_str(&body).map_err(|e| ChangeNowError::BadResponse(format!("{e} in {}", excerpt(&body))));
        }
        Err(classify(status, &body))
    }
}

fn pair_query(pair: &ExchangePair) -> [(&'static str, &str); 4] {
    [
        ("fromCurrency", &pair.from_currency),
        ("toCurrency", &pair.to_currency),
        ("fromNetwork", &pair.from_network),
        ("toNetwork", &pair.to_network),
    ]
}

fn classify(status: StatusCode, body: &str) -> ChangeNowError {
    match status.as_u16() {
        401 | 403 => ChangeNowError::Unauthorized { status: status.as_u16() },
        429 => ChangeNowError::RateLimited,
        // 408 is the server giving up on a slow request: worth another try.
        code @ (408 | 500..=599) => ChangeNowError::Unavailable { status: code, body: excerpt(body) },
        code => {
            let parsed: Option<ErrorResponse> = serde_json::from_str(body).ok();
            ChangeNowError::Rejected {
                status: code,
                code: parsed.as_ref().map(|e| e.error.clone()).unwrap_or_else(|| "unknown_error".into()),
                message: parsed.and_then(|e| e.message).unwrap_or_else(|| excerpt(body)),
            }
        }
    }
}

/// reqwest errors print the URL, and a query string could carry an API key in other set-ups.
fn without_url(e: reqwest::Error) -> String {
    e.without_url().to_string()
}

fn excerpt(body: &str) -> String {
    body.chars().take(300).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_gives_up_well_before_the_activity_does() {
        // The attempt must still have time to store what ChangeNow answered.
        let room_for_the_database = Duration::from_secs(3);
        assert!(
            REQUEST_TIMEOUT + room_for_the_database <= workflows::steps::STEP_TIMEOUT,
            "ChangeNow timeout {REQUEST_TIMEOUT:?} leaves less than {room_for_the_database:?} of the activity's {:?}",
            workflows::steps::STEP_TIMEOUT
        );
    }

    #[test]
    fn refusals_fail_fast_and_outages_are_retried() {
        let bad_address = classify(StatusCode::BAD_REQUEST, r#"{"error":"not_valid_address","message":"Invalid payout address"}"#);
        assert!(!bad_address.is_retryable());
        assert_eq!(bad_address.code(), Some("not_valid_address"));
        assert!(bad_address.to_string().contains("Invalid payout address"));
        assert!(classify(StatusCode::UNAUTHORIZED, "").is_retryable(), "a key rotation must not fail payouts");
        assert!(!classify(StatusCode::NOT_FOUND, "not json").is_retryable());
        assert!(classify(StatusCode::TOO_MANY_REQUESTS, "").is_retryable());
        assert!(classify(StatusCode::BAD_GATEWAY, "<html>").is_retryable());
        assert!(classify(StatusCode::SERVICE_UNAVAILABLE, "").is_retryable());
    }
}
