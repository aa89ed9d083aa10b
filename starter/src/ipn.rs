//! Reading a NOWPayments IPN body into an [`IncomingIpn`], with an error that names the field.
//!
//! Amounts arrive as JSON numbers or strings; both are read from their text into `Decimal`,
//! never through binary floating point.

use activities::db::payments::IncomingIpn;
use rust_decimal::Decimal;
use serde_json::{Map, Value};
use std::str::FromStr;

/// The statuses NOWPayments documents. Others are still recorded (the contract: every status
/// but `finished` is recorded and not paid), with a warning, since refusing them would only make
/// NOWPayments retry forever.
pub const KNOWN_STATUSES: [&str; 9] =
    ["waiting", "confirming", "confirmed", "sending", "partially_paid", "finished", "failed", "refunded", "expired"];

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IpnError {
    #[error("body is not valid JSON: {0}")]
    NotJson(String),
    #[error("body must be a JSON object")]
    NotAnObject,
    #[error("field '{0}' is missing")]
    MissingField(&'static str),
    #[error("field '{field}' is invalid: {reason}")]
    InvalidField { field: &'static str, reason: String },
}

/// Parses the raw body; the signature is checked on the result before anything else.
pub fn parse_json(raw: &[u8]) -> Result<Value, IpnError> {
    serde_json::from_slice(raw).map_err(|e| IpnError::NotJson(e.to_string()))
}

pub fn parse_ipn(body: &Value, raw_body: &str) -> Result<IncomingIpn, IpnError> {
    let fields = body.as_object().ok_or(IpnError::NotAnObject)?;
    let payment_id = integer(fields, "payment_id")?.ok_or(IpnError::MissingField("payment_id"))?;
    if payment_id <= 0 {
        return Err(invalid("payment_id", "must be positive"));
    }
    let order_id = text(fields, "order_id")?.ok_or(IpnError::MissingField("order_id"))?;
    let (user_id, client_id) = parse_order_id(&order_id)?;
    let payment_status = text(fields, "payment_status")?.ok_or(IpnError::MissingField("payment_status"))?;
    let payment_status = payment_status.to_ascii_lowercase();
    let well_formed = (1..=32).contains(&payment_status.len()) && payment_status.chars().all(|c| c.is_ascii_lowercase() || c == '_');
    if !well_formed {
        return Err(invalid("payment_status", format!("'{payment_status}' is not a status word")));
    }
    if !KNOWN_STATUSES.contains(&payment_status.as_str()) {
        tracing::warn!(payment_id, payment_status, "IPN with an undocumented status; recorded, not paid");
    }
    let price_amount = amount(fields, "price_amount")?.ok_or(IpnError::MissingField("price_amount"))?;
    let price_currency = text(fields, "price_currency")?.ok_or(IpnError::MissingField("price_currency"))?;
    Ok(IncomingIpn {
        payment_id,
        order_id,
        user_id,
        client_id,
        payment_status,
        price_amount,
        price_currency: price_currency.to_ascii_lowercase(),
        pay_amount: amount(fields, "pay_amount")?,
        actually_paid: amount(fields, "actually_paid")?,
        pay_currency: text(fields, "pay_currency")?.map(|c| c.to_ascii_lowercase()),
        outcome_amount: amount(fields, "outcome_amount")?,
        outcome_currency: text(fields, "outcome_currency")?.map(|c| c.to_ascii_lowercase()),
        raw_body: raw_body.to_owned(),
    })
}

/// `PGP-{user_id}|{client_id}`: the Telegram user and the channel (client) paid for (the rule
/// lives beside payment verification, which reads NOWPayments' own order id the same way).
pub fn parse_order_id(order_id: &str) -> Result<(i64, String), IpnError> {
    workflows::domain::payment_verification::parse_order_id(order_id).map_err(|reason| invalid("order_id", reason))
}

fn invalid(field: &'static str, reason: impl Into<String>) -> IpnError {
    IpnError::InvalidField { field, reason: reason.into() }
}

fn present<'a>(fields: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    fields.get(name).filter(|v| !v.is_null())
}

fn text(fields: &Map<String, Value>, name: &'static str) -> Result<Option<String>, IpnError> {
    match present(fields, name) {
        None => Ok(None),
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(Some(s.trim().to_owned())),
        Some(Value::String(_)) => Err(invalid(name, "is empty")),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(_) => Err(invalid(name, "must be a string")),
    }
}

fn integer(fields: &Map<String, Value>, name: &'static str) -> Result<Option<i64>, IpnError> {
    match present(fields, name) {
        None => Ok(None),
        Some(Value::Number(n)) => n.as_i64().map(Some).ok_or_else(|| invalid(name, "must be an integer")),
        Some(Value::String(s)) => s.trim().parse().map(Some).map_err(|_| invalid(name, "must be an integer")),
        Some(_) => Err(invalid(name, "must be an integer")),
    }
}

fn amount(fields: &Map<String, Value>, name: &'static str) -> Result<Option<Decimal>, IpnError> {
    let text = match present(fields, name) {
        None => return Ok(None),
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::String(s)) => s.trim().to_owned(),
        Some(_) => return Err(invalid(name, "must be a number")),
    };
    let value = Decimal::from_str(&text)
        .or_else(|_| Decimal::from_scientific(&text))
        .map_err(|_| invalid(name, format!("'{text}' is not a decimal amount")))?;
    if value.is_sign_negative() {
        return Err(invalid(name, "must not be negative"));
    }
    Ok(Some(value.normalize()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    const SAMPLE: &str = r#"{"payment_id":5077125051,"payment_status":"finished","pay_address":"0xabc",
        "price_amount":170.10,"price_currency":"usd","pay_amount":"0.0512345678901234567","actually_paid":0.05,
        "pay_currency":"ETH","order_id":"PGP-6271402111|-1002345678901","outcome_amount":0.049,
        "outcome_currency":"eth","fee":{"currency":"eth","depositFee":0.0001}}"#;

    #[test]
    fn reads_a_full_ipn_without_losing_digits() {
        let ipn = parse_ipn(&parse_json(SAMPLE.as_bytes()).unwrap(), SAMPLE).unwrap();
        assert_eq!(ipn.payment_id, 5077125051);
        assert_eq!((ipn.user_id, ipn.client_id.as_str()), (6271402111, "-1002345678901"));
        assert_eq!(ipn.price_amount, dec!(170.1));
        assert_eq!(ipn.pay_amount, Some(dec!(0.0512345678901234567)));
        assert_eq!(ipn.pay_currency.as_deref(), Some("eth"));
        assert_eq!(ipn.outcome_amount, Some(dec!(0.049)));
        assert_eq!(ipn.raw_body, SAMPLE);
    }

    #[test]
    fn names_what_is_wrong() {
        let parse = |text: &str| parse_json(text.as_bytes()).and_then(|v| parse_ipn(&v, text));
        assert!(matches!(parse("{not json"), Err(IpnError::NotJson(_))));
        assert_eq!(parse("[1]"), Err(IpnError::NotAnObject));
        assert_eq!(parse(r#"{"payment_status":"finished"}"#), Err(IpnError::MissingField("payment_id")));
        let with =
            |extra: &str| format!(r#"{{"payment_id":1,"order_id":"PGP-1|c1","payment_status":"finished","price_currency":"usd",{extra}}}"#);
        assert!(matches!(parse(&with(r#""price_amount":"ten""#)), Err(IpnError::InvalidField { field: "price_amount", .. })));
        assert!(matches!(parse(&with(r#""price_amount":-1"#)), Err(IpnError::InvalidField { field: "price_amount", .. })));
        assert_eq!(parse(&with(r#""price_amount":1e1"#)).unwrap().price_amount, dec!(10));
        let odd_status = r#"{"payment_id":1,"order_id":"PGP-1|c1","payment_status":"on_hold","price_amount":1,"price_currency":"usd"}"#;
        assert_eq!(parse(odd_status).unwrap().payment_status, "on_hold", "undocumented statuses are recorded");
        let bad_status = r#"{"payment_id":1,"order_id":"PGP-1|c1","payment_status":"paid; DROP","price_amount":1,"price_currency":"usd"}"#;
        assert!(matches!(parse(bad_status), Err(IpnError::InvalidField { field: "payment_status", .. })));
    }

    #[test]
    fn order_ids_follow_the_pgp_scheme() {
        assert_eq!(parse_order_id("PGP-42|-100123"), Ok((42, "-100123".to_owned())));
        for bad in ["42|-100123", "PGP-42", "PGP-x|c", "PGP-42|", "PGP-42|a|b", "PGP-42|a b"] {
            assert!(parse_order_id(bad).is_err(), "{bad} should be refused");
        }
    }
}
