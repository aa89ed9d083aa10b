//! The HTTP client for NOWPayments' payment record.
//!
//! Every failure is worth another try: an outage, a rate limit, a slow answer, a refused API key
//! (an operator fixes the configuration), even a 2xx that is not a record (a proxy's page, a
//! field that changed shape): guessing would refuse a real payment for good. The payment waits
//! `received` meanwhile, and the activity alerts after a few tries.

use super::api::{payment_url, ErrorBody, PaymentRecord, API_KEY_HEADER};
use reqwest::StatusCode;
use std::time::Duration;

/// One request, connecting included; below the activity attempt's 20 s.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum NowPaymentsError {
    #[error("NOWPayments refused the API key ({status}); check NOWPAYMENTS_API_KEY")]
    Unauthorized { status: u16 },
    #[error("NOWPayments rate-limited the request (429)")]
    RateLimited,
    #[error("NOWPayments is unavailable ({status}): {body}")]
    Unavailable { status: u16, body: String },
    #[error("NOWPayments did not answer: {0}")]
    Transport(String),
    #[error("NOWPayments answered something that is not a payment record: {0}")]
    BadResponse(String),
}

#[derive(Clone)]
pub struct NowPaymentsClient {
    http: reqwest::Client,
    base_url: String,
    api_key: String,
}

impl std::fmt::Debug for NowPaymentsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key is a secret, and some set-ups carry credentials in the URL.
        f.debug_struct("NowPaymentsClient").finish_non_exhaustive()
    }
}

impl NowPaymentsClient {
    pub fn new(base_url: &str, api_key: &str, timeout: Duration) -> Result<Self, NowPaymentsError> {
        // No redirects: the API key header would follow them to wherever they point.
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .build()
            .map_err(|e| NowPaymentsError::Transport(e.to_string()))?;
        Ok(Self { http, base_url: base_url.trim_end_matches('/').to_owned(), api_key: api_key.to_owned() })
    }

    /// The payment's record; `None` when NOWPayments says it does not know the payment.
    pub async fn payment(&self, payment_id: i64) -> Result<Option<PaymentRecord>, NowPaymentsError> {
        let response = self
            .http
            .get(payment_url(&self.base_url, payment_id))
            .header(API_KEY_HEADER, &self.api_key)
            .send()
            .await
            .map_err(|e| NowPaymentsError::Transport(e.without_url().to_string()))?;
        let status = response.status();
        let body = response.text().await.map_err(|e| NowPaymentsError::Transport(e.without_url().to_string()))?;
        classify(status, &body)
    }
}

fn classify(status: StatusCode, body: &str) -> Result<Option<PaymentRecord>, NowPaymentsError> {
    match status.as_u16() {
        200..=299 => serde_json::from_str(body).map(Some).map_err(|e| NowPaymentsError::BadResponse(format!("{e} in {}", excerpt(body)))),
        // Only NOWPayments' own "not found" counts: a 404 from a proxy or a wrong base URL would
        // otherwise mark every payment unverified.
        404 if serde_json::from_str::<ErrorBody>(body).is_ok() => Ok(None),
        401 | 403 => Err(NowPaymentsError::Unauthorized { status: status.as_u16() }),
        429 => Err(NowPaymentsError::RateLimited),
        code => Err(NowPaymentsError::Unavailable { status: code, body: excerpt(body) }),
    }
}

fn excerpt(body: &str) -> String {
    body.chars().take(300).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_nowpayments_own_not_found_means_unknown() {
        let not_found = r#"{"status":false,"statusCode":404,"code":"NOT_FOUND","message":"Payment not found"}"#;
        assert!(matches!(classify(StatusCode::NOT_FOUND, not_found), Ok(None)));
        let proxy = classify(StatusCode::NOT_FOUND, "<html>404</html>");
        assert!(
            matches!(proxy, Err(NowPaymentsError::Unavailable { status: 404, .. })),
            "a proxy's 404 is an outage, not an unknown payment"
        );
        assert!(matches!(classify(StatusCode::UNAUTHORIZED, ""), Err(NowPaymentsError::Unauthorized { status: 401 })));
        assert!(matches!(classify(StatusCode::TOO_MANY_REQUESTS, ""), Err(NowPaymentsError::RateLimited)));
        assert!(matches!(classify(StatusCode::OK, "{}"), Err(NowPaymentsError::BadResponse(_))));
    }
}
