//! NOWPayments IPN signatures: the code lives in `activities` so the sandbox signs its IPNs with
//! the very function the webhook checks them with.

pub use activities::nowpayments::signature::*;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    /// Vectors made by Node's own JSON.stringify (starter/tests/vectors/ipn_signatures.js).
    fn node_vectors() -> Vec<Value> {
        let text = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/ipn_signatures.json"));
        let file: Value = serde_json::from_str(text).unwrap();
        file["vectors"].as_array().unwrap().clone()
    }

    #[test]
    fn accepts_both_documented_forms_as_node_signs_them() {
        for v in node_vectors() {
            let (secret, signature) = (v["secret"].as_str().unwrap(), v["signature"].as_str().unwrap());
            let body = crate::ipn::parse_json(v["body"].as_str().unwrap().as_bytes()).unwrap();
            let case = format!("{} / {}", v["name"], v["form"]);
            let form = verify(secret, &body, Some(signature)).unwrap_or_else(|e| panic!("{case}: Node's signature refused: {e}"));
            assert_eq!(form.as_str(), v["form"], "{case}");
            assert_eq!(form.signed_text(&body), v["signed_text"].as_str().unwrap(), "{case}: signed text differs from Node's");
            assert_eq!(sign_as(form, secret, &body), signature, "{case}");
            assert_eq!(verify("other-secret", &body, Some(signature)), Err(SignatureError::Mismatch), "{case}");
        }
    }

    #[test]
    fn the_vectors_cover_what_real_ipns_carry() {
        let vectors = node_vectors();
        let bodies: Vec<&str> = vectors.iter().map(|v| v["body"].as_str().unwrap()).collect();
        for needle in [r#""fee":{"#, "null", "1e-7", "Канал", "🚀"] {
            assert!(bodies.iter().any(|b| b.contains(needle)), "no vector body contains {needle}");
        }
        assert!(vectors.iter().any(|v| v["signed_text"].as_str().unwrap().contains(r#""fee":{}"#)));
        for form in SigningForm::ALL {
            assert!(vectors.iter().any(|v| v["form"] == form.as_str()), "no vector of {form:?}");
        }
    }
}
