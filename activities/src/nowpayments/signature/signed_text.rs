//! The text NOWPayments signs, in both forms it documents. Both are what JavaScript's
//! `JSON.stringify` writes (NOWPayments builds the body and the signature in JavaScript):
//!
//! - its help pages sort the keys at every depth (`sortObject`), then stringify;
//! - its API reference stringifies with `Object.keys(params).sort()` as the replacer: a list of
//!   the top-level keys that `JSON.stringify` applies as a whitelist at every depth, so a nested
//!   object keeps only the keys that are also top-level keys (a nested `fee` object of
//!   `currency`, `depositFee`, ... becomes `{}`), in the list's order.
//!
//! Numbers are written exactly as they arrived (serde_json's `arbitrary_precision`): a body made
//! by JavaScript already carries `JSON.stringify`'s forms (`1e-7`, `1e+21`), digit for digit.
//! Keys sort as JavaScript's default sort does, by UTF-16 code units.

use serde_json::{Map, Value};
use std::cmp::Ordering;

/// The help pages' form: keys sorted at every depth, no whitespace.
pub fn recursive_sort(value: &Value) -> String {
    let mut out = String::new();
    write(value, None, &mut out);
    out
}

/// The API reference's form: `JSON.stringify(params, Object.keys(params).sort())`.
pub fn top_level_key_list(value: &Value) -> String {
    let whitelist = match value {
        Value::Object(map) => sorted_keys(map),
        _ => Vec::new(),
    };
    let mut out = String::new();
    write(value, Some(&whitelist), &mut out);
    out
}

/// JavaScript's default `sort()` on strings: by UTF-16 code units, which differs from the UTF-8
/// byte order for keys beyond the Basic Multilingual Plane.
fn js_order(a: &str, b: &str) -> Ordering {
    a.encode_utf16().cmp(b.encode_utf16())
}

fn sorted_keys(map: &Map<String, Value>) -> Vec<&str> {
    let mut keys: Vec<&str> = map.keys().map(String::as_str).collect();
    keys.sort_by(|a, b| js_order(a, b));
    keys
}

/// `whitelist`: the replacer's key list, applied to every object; `None` sorts each object's
/// own keys.
fn write(value: &Value, whitelist: Option<&[&str]>, out: &mut String) {
    match value {
        Value::Object(map) => {
            let keys = match whitelist {
                None => sorted_keys(map),
                Some(list) => list.iter().copied().filter(|key| map.contains_key(*key)).collect(),
            };
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.to_owned()).to_string());
                out.push(':');
                write(&map[key], whitelist, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write(item, whitelist, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// As the webhook reads a body.
    fn parse(text: &str) -> Value {
        serde_json::from_slice(text.as_bytes()).unwrap()
    }

    #[test]
    fn sorts_keys_recursively_and_drops_whitespace() {
        let body = parse(r#"{ "b": 1, "a": { "z": [ {"y": 2, "x": 1} ], "c": null }, "A": "s p" }"#);
        assert_eq!(recursive_sort(&body), r#"{"A":"s p","a":{"c":null,"z":[{"x":1,"y":2}]},"b":1}"#);
    }

    #[test]
    fn keeps_numbers_exactly_as_sent() {
        let body =
            parse(r#"{"price_amount": 170.10, "pay_amount": 0.000000000000000001, "big": 123456789012345678901234567890, "tiny": 1e-7}"#);
        assert_eq!(
            recursive_sort(&body),
            r#"{"big":123456789012345678901234567890,"pay_amount":0.000000000000000001,"price_amount":170.10,"tiny":1e-7}"#
        );
    }

    #[test]
    fn escapes_strings_like_json_stringify() {
        let body = serde_json::json!({"order_description": "Канал \"VIP\"/1\n\u{1}"});
        assert_eq!(recursive_sort(&body), r#"{"order_description":"Канал \"VIP\"/1\n\u0001"}"#);
    }

    #[test]
    fn the_key_list_filters_nested_objects_and_keeps_arrays() {
        let body = parse(r#"{"payment_id":1,"fee":{"currency":"eth","payment_id":2,"depositFee":1e-7},"a":[{"fee":null,"x":1},3]}"#);
        assert_eq!(top_level_key_list(&body), r#"{"a":[{"fee":null},3],"fee":{"payment_id":2},"payment_id":1}"#);
    }

    #[test]
    fn keys_sort_by_utf16_code_units_as_javascript_does() {
        // U+FF5A sorts after U+1F600 in UTF-16 (0xFF5A > 0xD83D), before it in UTF-8.
        let body = parse(r#"{"ｚ":1,"😀":2}"#);
        assert_eq!(recursive_sort(&body), r#"{"😀":2,"ｚ":1}"#);
        assert_eq!(top_level_key_list(&body), r#"{"😀":2,"ｚ":1}"#);
    }
}
