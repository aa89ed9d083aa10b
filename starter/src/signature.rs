//! NOWPayments IPN signatures: `x-nowpayments-sig` is the hex HMAC-SHA512 of the JSON body
//! with its keys sorted recursively and no whitespace, keyed with the IPN secret.
//!
//! Numbers are written exactly as they arrived (serde_json's `arbitrary_precision`), so the
//! canonical form of a body is the sender's, digit for digit.

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha512;

type HmacSha512 = Hmac<Sha512>;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignatureError {
    #[error("missing x-nowpayments-sig header")]
    Missing,
    #[error("x-nowpayments-sig is not a hex HMAC-SHA512")]
    Malformed,
    #[error("x-nowpayments-sig does not match the body")]
    Mismatch,
}

/// The body's canonical form: object keys sorted (recursively, by their UTF-8 bytes; the IPN's
/// keys are ASCII, where this equals JavaScript's default sort), no whitespace.
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(item, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

fn mac(secret: &str) -> HmacSha512 {
    // HMAC accepts keys of any length, so this cannot fail.
    <HmacSha512 as Mac>::new_from_slice(secret.as_bytes()).unwrap_or_else(|_| unreachable!("HMAC takes any key length"))
}

/// The signature NOWPayments would send for this body.
pub fn sign(secret: &str, body: &Value) -> String {
    let mut mac = mac(secret);
    mac.update(canonical_json(body).as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Checks a received signature in constant time.
pub fn verify(secret: &str, body: &Value, signature: Option<&str>) -> Result<(), SignatureError> {
    let signature = signature.map(str::trim).filter(|s| !s.is_empty()).ok_or(SignatureError::Missing)?;
    let expected = hex::decode(signature).map_err(|_| SignatureError::Malformed)?;
    let mut mac = mac(secret);
    mac.update(canonical_json(body).as_bytes());
    mac.verify_slice(&expected).map_err(|_| SignatureError::Mismatch)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(text: &str) -> Value {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn sorts_keys_recursively_and_drops_whitespace() {
        let body = parse(r#"{ "b": 1, "a": { "z": [ {"y": 2, "x": 1} ], "c": null }, "A": "s p" }"#);
        assert_eq!(canonical_json(&body), r#"{"A":"s p","a":{"c":null,"z":[{"x":1,"y":2}]},"b":1}"#);
    }

    #[test]
    fn keeps_numbers_exactly_as_sent() {
        let body = parse(r#"{"price_amount": 170.10, "pay_amount": 0.000000000000000001, "big": 123456789012345678901234567890}"#);
        assert_eq!(
            canonical_json(&body),
            r#"{"big":123456789012345678901234567890,"pay_amount":0.000000000000000001,"price_amount":170.10}"#
        );
    }

    #[test]
    fn escapes_strings_like_json_stringify() {
        let body = json!({"order_description": "Канал \"VIP\"/1\n"});
        assert_eq!(canonical_json(&body), r#"{"order_description":"Канал \"VIP\"/1\n"}"#);
    }

    #[test]
    fn matches_independently_computed_hmacs() {
        // Vectors from Python: hmac.new(key, canonical_body, hashlib.sha512).hexdigest()
        assert_eq!(
            sign("secret", &json!({"a": 1})),
            "42f08c0da01c9a46d4e5663d5f2140526a016507c598182c6769cca2bcf7ba43c395b719b01d288f5ad322564dce1d40ca28ef50b876fc49a33d13d6783114dd"
        );
        let nested = parse(r#"{"s": "Канал", "n": 1.50, "a": {"b": [1, 2]}}"#);
        assert_eq!(
            sign("ipn-secret", &nested),
            "7267aaa3bd55c6318432db3fd2def81d5a321d24535fc81d00e6c5def97b7f0d6d02db91948315a3acbe9f1a17dd56c40f85905b1b4623aa0f964a1546139a92"
        );
    }

    #[test]
    fn accepts_the_right_signature_whatever_the_key_order_sent() {
        let sent = parse(r#"{"payment_status":"finished","payment_id":5077125051,"fee":{"depositFee":0.1,"currency":"eth"}}"#);
        let sig = sign("ipn-secret", &sent);
        let reordered = parse(r#"{"fee":{"currency":"eth","depositFee":0.1},"payment_id":5077125051,"payment_status":"finished"}"#);
        assert_eq!(verify("ipn-secret", &reordered, Some(&sig)), Ok(()));
        assert_eq!(verify("ipn-secret", &reordered, Some(&sig.to_uppercase())), Ok(()));
    }

    #[test]
    fn refuses_missing_malformed_and_wrong_signatures() {
        let body = json!({"payment_id": 1});
        let sig = sign("ipn-secret", &body);
        assert_eq!(verify("ipn-secret", &body, None), Err(SignatureError::Missing));
        assert_eq!(verify("ipn-secret", &body, Some("")), Err(SignatureError::Missing));
        assert_eq!(verify("ipn-secret", &body, Some("not-hex")), Err(SignatureError::Malformed));
        assert_eq!(verify("other-secret", &body, Some(&sig)), Err(SignatureError::Mismatch));
        assert_eq!(verify("ipn-secret", &json!({"payment_id": 2}), Some(&sig)), Err(SignatureError::Mismatch));
        // A nested value changed: the signature covers the whole tree.
        let nested = json!({"a": {"b": [1, 2]}});
        let nested_sig = sign("ipn-secret", &nested);
        assert_eq!(verify("ipn-secret", &json!({"a": {"b": [2, 1]}}), Some(&nested_sig)), Err(SignatureError::Mismatch));
    }
}
