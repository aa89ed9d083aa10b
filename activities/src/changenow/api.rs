//! ChangeNow API v2 wire types (https://api.changenow.io/v2), as documented for the endpoints
//! the payout engine uses. Unknown fields are ignored; amounts use [`super::amount`].

use super::amount;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
pub use workflows::domain::{ExchangePair, ExchangeStatus};

pub const API_KEY_HEADER: &str = "x-changenow-api-key";
pub const RANGE_PATH: &str = "/v2/exchange/range";
pub const ESTIMATE_PATH: &str = "/v2/exchange/estimated-amount";
pub const EXCHANGE_PATH: &str = "/v2/exchange";
pub const STATUS_PATH: &str = "/v2/exchange/by-id";

/// Standard flow floats the rate; fixed-rate locks it with a `rateId` for a while.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Flow {
    #[default]
    Standard,
    FixedRate,
}

impl Flow {
    pub fn as_str(self) -> &'static str {
        match self {
            Flow::Standard => "standard",
            Flow::FixedRate => "fixed-rate",
        }
    }
}

/// `GET /v2/exchange/range`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RangeResponse {
    #[serde(with = "amount::required")]
    pub min_amount: Decimal,
    /// `null` when ChangeNow sets no maximum.
    #[serde(with = "amount::optional", default)]
    pub max_amount: Option<Decimal>,
}

/// `GET /v2/exchange/estimated-amount`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EstimateResponse {
    #[serde(with = "amount::required")]
    pub from_amount: Decimal,
    #[serde(with = "amount::required")]
    pub to_amount: Decimal,
    /// Fixed-rate flow with `useRateId=true` only.
    #[serde(default)]
    pub rate_id: Option<String>,
    #[serde(default)]
    pub valid_until: Option<String>,
}

/// `POST /v2/exchange` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateExchangeRequest {
    pub from_currency: String,
    pub from_network: String,
    pub to_currency: String,
    pub to_network: String,
    #[serde(with = "amount::required")]
    pub from_amount: Decimal,
    /// Where ChangeNow pays the coin out: the client's wallet, or the hot wallet for USDT.
    pub address: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_address: Option<String>,
    pub flow: Flow,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_id: Option<String>,
}

/// `POST /v2/exchange` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateExchangeResponse {
    pub id: String,
    pub payin_address: String,
    pub payout_address: String,
    #[serde(with = "amount::required")]
    pub from_amount: Decimal,
    #[serde(with = "amount::optional", default)]
    pub to_amount: Option<Decimal>,
}

/// `GET /v2/exchange/by-id`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExchangeStatusResponse {
    pub id: String,
    pub status: ExchangeStatus,
    #[serde(with = "amount::optional", default)]
    pub expected_amount_from: Option<Decimal>,
    #[serde(with = "amount::optional", default)]
    pub expected_amount_to: Option<Decimal>,
    /// What actually arrived at the pay-in address.
    #[serde(with = "amount::optional", default)]
    pub amount_from: Option<Decimal>,
    /// What was actually sent to the payout address.
    #[serde(with = "amount::optional", default)]
    pub amount_to: Option<Decimal>,
    #[serde(default)]
    pub payin_address: Option<String>,
    #[serde(default)]
    pub payout_address: Option<String>,
    #[serde(default)]
    pub payin_hash: Option<String>,
    #[serde(default)]
    pub payout_hash: Option<String>,
    #[serde(default)]
    pub refund_hash: Option<String>,
    #[serde(with = "amount::optional", default)]
    pub refund_amount: Option<Decimal>,
}

/// ChangeNow's error body, e.g. `{"error": "not_valid_address", "message": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorResponse {
    pub error: String,
    #[serde(default)]
    pub message: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn reads_a_documented_status_answer() {
        let body = r#"{"id":"a1b2c3","status":"finished","actionsAvailable":false,"fromCurrency":"eth",
            "toCurrency":"xmr","amountFrom":0.0512,"amountTo":"1.2345678","payinHash":"0xabc",
            "payoutHash":"def","refundHash":null,"refundAmount":null,"expectedAmountFrom":0.0512}"#;
        let status: ExchangeStatusResponse = serde_json::from_str(body).unwrap();
        assert_eq!(status.status, ExchangeStatus::Finished);
        assert_eq!(status.amount_from, Some(dec!(0.0512)));
        assert_eq!(status.amount_to, Some(dec!(1.2345678)));
        assert_eq!(status.refund_amount, None);
    }

    #[test]
    fn range_without_maximum() {
        let range: RangeResponse = serde_json::from_str(r#"{"minAmount":0.0046,"maxAmount":null}"#).unwrap();
        assert_eq!(range, RangeResponse { min_amount: dec!(0.0046), max_amount: None });
    }
}
