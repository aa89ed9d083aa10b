//! Amounts on ChangeNow's wire: JSON numbers (`0.1`), strings (`"0.1"`), scientific notation
//! (`1e-7`) or `null`, all read from their text into `Decimal`. `serde_json` is built with
//! `arbitrary_precision`, so a number's text reaches us digit for digit.

use rust_decimal::Decimal;
use serde::{de::Error as _, Deserialize, Deserializer, Serializer};
use serde_json::Value;
use std::str::FromStr;

pub fn parse(text: &str) -> Option<Decimal> {
    let text = text.trim();
    Decimal::from_str(text).ok().or_else(|| Decimal::from_scientific(text).ok()).map(|d| d.normalize())
}

fn from_value<E: serde::de::Error>(value: Value) -> Result<Option<Decimal>, E> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) if s.trim().is_empty() => Ok(None),
        Value::Number(n) => parse(&n.to_string()).map(Some).ok_or_else(|| E::custom(format!("amount {n} is out of range"))),
        Value::String(s) => parse(&s).map(Some).ok_or_else(|| E::custom(format!("'{s}' is not an amount"))),
        other => Err(E::custom(format!("expected an amount, got {other}"))),
    }
}

/// `#[serde(with = "amount::required")]`
pub mod required {
    use super::*;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Decimal, D::Error> {
        from_value(Value::deserialize(d)?)?.ok_or_else(|| D::Error::custom("amount is missing"))
    }

    /// As a JSON number, like ChangeNow sends it.
    pub fn serialize<S: Serializer>(value: &Decimal, s: S) -> Result<S::Ok, S::Error> {
        rust_decimal::serde::arbitrary_precision::serialize(value, s)
    }
}

/// `#[serde(with = "amount::optional", default)]`
pub mod optional {
    use super::*;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Decimal>, D::Error> {
        from_value(Option::<Value>::deserialize(d)?.unwrap_or(Value::Null))
    }

    pub fn serialize<S: Serializer>(value: &Option<Decimal>, s: S) -> Result<S::Ok, S::Error> {
        rust_decimal::serde::arbitrary_precision_option::serialize(value, s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;
    use serde::{Deserialize, Serialize};

    #[derive(Debug, Deserialize, Serialize)]
    struct Amounts {
        #[serde(with = "required")]
        a: Decimal,
        #[serde(with = "optional", default)]
        b: Option<Decimal>,
    }

    fn read(json: &str) -> Amounts {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn numbers_strings_and_scientific_notation_keep_every_digit() {
        assert_eq!(read(r#"{"a": 0.123456789012345678}"#).a, dec!(0.123456789012345678));
        assert_eq!(read(r#"{"a": "48.50"}"#).a, dec!(48.5));
        assert_eq!(read(r#"{"a": 1e-7}"#).a, dec!(0.0000001));
        assert_eq!(read(r#"{"a": 0.1, "b": null}"#).b, None);
        assert_eq!(read(r#"{"a": 0.1}"#).b, None);
        assert_eq!(read(r#"{"a": 0.1, "b": "2.5"}"#).b, Some(dec!(2.5)));
    }

    #[test]
    fn garbage_is_an_error_not_zero() {
        assert!(serde_json::from_str::<Amounts>(r#"{"a": "abc"}"#).is_err());
        assert!(serde_json::from_str::<Amounts>(r#"{"a": null}"#).is_err());
        assert!(serde_json::from_str::<Amounts>(r#"{"a": true}"#).is_err());
    }

    #[test]
    fn written_as_exact_json_numbers() {
        let json = serde_json::to_string(&Amounts { a: dec!(0.000000000000000001), b: Some(dec!(12.5)) }).unwrap();
        assert_eq!(json, r#"{"a":0.000000000000000001,"b":12.5}"#);
    }
}
