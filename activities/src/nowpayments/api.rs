//! NOWPayments' payment record, as `GET /v1/payment/{payment_id}` answers it (and as the
//! sandbox serves it). Amounts are JSON numbers or strings, read into `Decimal` from their text.

use crate::changenow::amount;
use rust_decimal::Decimal;
use serde::{de::Error as _, Deserialize, Deserializer, Serialize};
use serde_json::Value;
use workflows::domain::PaymentFacts;

/// The header NOWPayments reads the API key from.
pub const API_KEY_HEADER: &str = "x-api-key";
/// `GET` a payment's record; `POST` (without the id) creates a payment.
pub const PAYMENT_PATH: &str = "/v1/payment";

pub fn payment_url(base_url: &str, payment_id: i64) -> String {
    format!("{}{PAYMENT_PATH}/{payment_id}", base_url.trim_end_matches('/'))
}

/// A payment as NOWPayments reports it. Unknown fields are ignored; the ones the engine routes on
/// are typed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentRecord {
    #[serde(deserialize_with = "integer")]
    pub payment_id: i64,
    pub payment_status: String,
    #[serde(default)]
    pub pay_address: Option<String>,
    #[serde(with = "amount::required")]
    pub price_amount: Decimal,
    pub price_currency: String,
    #[serde(with = "amount::optional", default)]
    pub pay_amount: Option<Decimal>,
    #[serde(with = "amount::optional", default)]
    pub actually_paid: Option<Decimal>,
    #[serde(default)]
    pub pay_currency: Option<String>,
    #[serde(default)]
    pub order_id: Option<String>,
    #[serde(default)]
    pub order_description: Option<String>,
    #[serde(with = "amount::optional", default)]
    pub outcome_amount: Option<Decimal>,
    #[serde(default)]
    pub outcome_currency: Option<String>,
    #[serde(default)]
    pub created_at: Option<String>,
    #[serde(default)]
    pub updated_at: Option<String>,
}

impl PaymentRecord {
    /// The facts a payment is routed on. A record without an order cannot be routed: its empty
    /// order id is refused as a mismatch downstream.
    pub fn facts(&self) -> PaymentFacts {
        PaymentFacts {
            payment_id: self.payment_id,
            payment_status: self.payment_status.trim().to_ascii_lowercase(),
            order_id: self.order_id.clone().unwrap_or_default(),
            price_amount: self.price_amount,
            price_currency: self.price_currency.trim().to_ascii_lowercase(),
            outcome_amount: self.outcome_amount,
            outcome_currency: self.outcome_currency.as_ref().map(|c| c.trim().to_ascii_lowercase()),
        }
    }
}

/// NOWPayments' error body: `{"status": false, "statusCode": 404, "code": "...", "message": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    pub status: bool,
    pub status_code: u16,
    pub code: String,
    pub message: String,
}

/// Payment ids arrive as numbers, and in some answers as strings.
fn integer<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    match Value::deserialize(d)? {
        Value::Number(n) => n.as_i64().ok_or_else(|| D::Error::custom(format!("payment_id {n} is not an integer"))),
        Value::String(s) => s.trim().parse().map_err(|_| D::Error::custom(format!("payment_id '{s}' is not an integer"))),
        other => Err(D::Error::custom(format!("payment_id must be an integer, got {other}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn reads_nowpayments_record_without_losing_digits() {
        let text = r#"{"payment_id":"5524759814","invoice_id":null,"payment_status":"finished","pay_address":"0xabc",
            "price_amount":170.1,"price_currency":"USD","pay_amount":0.0512345678901234567,"actually_paid":"0.05",
            "pay_currency":"eth","order_id":"PGP-1|-1001","order_description":"sub","purchase_id":"1",
            "outcome_amount":0.049,"outcome_currency":"ETH","created_at":"2026-12-01T10:00:00.000Z"}"#;
        let record: PaymentRecord = serde_json::from_str(text).unwrap();
        assert_eq!(record.payment_id, 5524759814);
        assert_eq!(record.pay_amount, Some(dec!(0.0512345678901234567)));
        let facts = record.facts();
        assert_eq!((facts.price_amount, facts.price_currency.as_str()), (dec!(170.1), "usd"));
        assert_eq!(facts.outcome_currency.as_deref(), Some("eth"));
        assert!(serde_json::from_str::<PaymentRecord>(
            r#"{"payment_id":1.5,"payment_status":"x","price_amount":1,"price_currency":"usd"}"#
        )
        .is_err());
    }
}
