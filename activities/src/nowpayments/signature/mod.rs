//! NOWPayments IPN signatures (here so the webhook that checks them and the sandbox that
//! makes them share one HMAC): `x-nowpayments-sig` is the hex HMAC-SHA512 of the JSON body,
//! keyed with the IPN secret. NOWPayments documents two ways of turning the body into the signed
//! text ([`signed_text`]); a signature made either way is accepted.

pub mod signed_text;

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

/// How the signed text was made from the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigningForm {
    /// Keys sorted at every depth (NOWPayments' help pages).
    RecursiveSort,
    /// `JSON.stringify(params, Object.keys(params).sort())` (NOWPayments' API reference).
    TopLevelKeyList,
}

impl SigningForm {
    /// Tried in this order: the first is the form this engine has always accepted.
    pub const ALL: [Self; 2] = [Self::RecursiveSort, Self::TopLevelKeyList];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::RecursiveSort => "recursive_sort",
            Self::TopLevelKeyList => "top_level_key_list",
        }
    }

    pub fn signed_text(self, body: &Value) -> String {
        match self {
            Self::RecursiveSort => signed_text::recursive_sort(body),
            Self::TopLevelKeyList => signed_text::top_level_key_list(body),
        }
    }
}

fn mac(secret: &str, text: &str) -> HmacSha512 {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <HmacSha512 as Mac>::new_from_slice(secret.as_bytes()).unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    mac.update(text.as_bytes());
    mac
}

/// The signature NOWPayments would send for this body, by its help pages' form.
pub fn sign(secret: &str, body: &Value) -> String {
    sign_as(SigningForm::RecursiveSort, secret, body)
}

pub fn sign_as(form: SigningForm, secret: &str, body: &Value) -> String {
    hex::encode(mac(secret, &form.signed_text(body)).finalize().into_bytes())
}

/// Checks a received signature against each documented form, each comparison in constant time;
/// returns the form that matched.
pub fn verify(secret: &str, body: &Value, signature: Option<&str>) -> Result<SigningForm, SignatureError> {
    let signature = signature.map(str::trim).filter(|s| !s.is_empty()).ok_or(SignatureError::Missing)?;
    let expected = hex::decode(signature).map_err(|_| SignatureError::Malformed)?;
    let mut tried: Vec<String> = Vec::with_capacity(SigningForm::ALL.len());
    for form in SigningForm::ALL {
        let text = form.signed_text(body);
        // Without nested objects both forms are the same text: one HMAC is enough.
        if tried.contains(&text) {
            continue;
        }
        if mac(secret, &text).verify_slice(&expected).is_ok() {
            return Ok(form);
        }
        tried.push(text);
    }
    Err(SignatureError::Mismatch)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(text: &str) -> Value {
        serde_json::from_str(text).unwrap()
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
        assert_eq!(verify("ipn-secret", &reordered, Some(&sig)), Ok(SigningForm::RecursiveSort));
        assert_eq!(verify("ipn-secret", &reordered, Some(&sig.to_uppercase())), Ok(SigningForm::RecursiveSort));
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
