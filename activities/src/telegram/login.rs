//! Telegram's Login Widget data, verified exactly as Telegram documents it: `hash` is the hex
//! HMAC-SHA256 of the data-check-string (every other received field as `key=value`, sorted by
//! key, joined by `\n`) keyed with SHA-256 of the bot token, and `auth_date` is recent.
//!
//! The fields arrive as JSON (`"telegram_auth": {...}` in the API, numbers as numbers) or as the
//! widget's redirect query (all text); both read into the same map, so the check-string is built
//! from exactly what was received, unknown fields included.

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::{collections::BTreeMap, time::Duration};

/// Login data a clock slightly ahead of ours may sign; more than this in the future is refused.
const CLOCK_SKEW_SECS: i64 = 60;

/// The fields as received, values as text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoginData(pub BTreeMap<String, String>);

/// The user Telegram vouches for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TelegramUser {
    pub id: i64,
    pub first_name: String,
    pub username: Option<String>,
}

impl TelegramUser {
    /// `@username`, else the first name: how pages greet the user.
    pub fn display_name(&self) -> String {
        self.username.as_ref().map(|u| format!("@{u}")).unwrap_or_else(|| self.first_name.clone())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoginError {
    #[error("Telegram login data is missing: log in with Telegram first")]
    Missing,
    #[error("Telegram login data is malformed: {0}")]
    Malformed(String),
    #[error("Telegram login data is not signed by Telegram for this bot")]
    Forged,
    #[error("Telegram login data is {age_secs} s old (at most {max_secs} s): log in with Telegram again")]
    Stale { age_secs: i64, max_secs: u64 },
    #[error("Telegram login data is dated in the future")]
    FromTheFuture,
}

impl LoginData {
    /// From the API's JSON object: strings as they are, numbers and booleans as their text.
    pub fn from_json(value: &Value) -> Result<Self, LoginError> {
        let Value::Object(map) = value else { return Err(LoginError::Malformed("expected an object of login fields".into())) };
        let mut fields = BTreeMap::new();
        for (key, value) in map {
            let text = match value {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                Value::Null => continue,
                _ => return Err(LoginError::Malformed(format!("field {key} is not a single value"))),
            };
            fields.insert(key.clone(), text);
        }
        Ok(Self(fields))
    }

    /// From form or query pairs, keeping only Telegram's fields (a form carries others too).
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        const FIELDS: [&str; 7] = ["id", "first_name", "last_name", "username", "photo_url", "auth_date", "hash"];
        Self(pairs.into_iter().filter(|(k, v)| FIELDS.contains(k) && !v.is_empty()).map(|(k, v)| (k.to_owned(), v.to_owned())).collect())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn check_string(&self) -> String {
        self.0.iter().filter(|(k, _)| k.as_str() != "hash").map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("\n")
    }

    /// The user, if Telegram signed this for `bot_token` within `max_age` of `now`.
    pub fn verify(&self, bot_token: &str, now: DateTime<Utc>, max_age: Duration) -> Result<TelegramUser, LoginError> {
        if self.is_empty() {
            return Err(LoginError::Missing);
        }
        let field = |name: &str| self.0.get(name).ok_or_else(|| LoginError::Malformed(format!("field {name} is missing")));
        let hash = hex::decode(field("hash")?).map_err(|_| LoginError::Forged)?;
        let key = Sha256::digest(bot_token.as_bytes());
        let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("HMAC takes any key length");
        mac.update(self.check_string().as_bytes());
        // Constant time: a forger learns nothing from how long the refusal takes.
        mac.verify_slice(&hash).map_err(|_| LoginError::Forged)?;

        let auth_date: i64 = field("auth_date")?.parse().map_err(|_| LoginError::Malformed("auth_date is not a number".into()))?;
        let age_secs = now.timestamp() - auth_date;
        if age_secs < -CLOCK_SKEW_SECS {
            return Err(LoginError::FromTheFuture);
        }
        if age_secs > max_age.as_secs() as i64 {
            return Err(LoginError::Stale { age_secs, max_secs: max_age.as_secs() });
        }
        let id = field("id")?.parse().ok().filter(|id: &i64| *id > 0).ok_or_else(|| LoginError::Malformed("id is not a user id".into()))?;
        Ok(TelegramUser { id, first_name: field("first_name")?.clone(), username: self.0.get("username").cloned() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const TOKEN: &str = "7000000001:test-token";
    /// Computed with Python's hmac and hashlib, independently of this code (see the test below).
    const HASH: &str = "bf6246c4cebcd1297d2855182b7e87915666a1cb1f4ee29b0862311d3f5d1aa8";

    fn signed() -> Value {
        json!({"id": 42, "first_name": "Ann", "username": "ann", "auth_date": 1_700_000_000, "hash": HASH})
    }

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(secs, 0).unwrap()
    }

    const DAY: Duration = Duration::from_secs(86_400);

    #[test]
    fn accepts_what_telegram_signed() {
        // key = sha256(token); hmac.new(key, b"auth_date=1700000000\nfirst_name=Ann\nid=42\nusername=ann", sha256)
        let user = LoginData::from_json(&signed()).unwrap().verify(TOKEN, at(1_700_000_100), DAY).unwrap();
        assert_eq!(user, TelegramUser { id: 42, first_name: "Ann".into(), username: Some("ann".into()) });
        // The redirect's text form of the same data.
        let pairs =
            [("id", "42"), ("first_name", "Ann"), ("username", "ann"), ("auth_date", "1700000000"), ("hash", HASH), ("wallet", "x")];
        assert_eq!(LoginData::from_pairs(pairs).verify(TOKEN, at(1_700_000_100), DAY).unwrap().id, 42);
    }

    #[test]
    fn refuses_a_changed_field_another_bot_or_an_added_field() {
        let mut changed = signed();
        changed["id"] = json!(43);
        assert_eq!(LoginData::from_json(&changed).unwrap().verify(TOKEN, at(1_700_000_100), DAY), Err(LoginError::Forged));
        assert_eq!(LoginData::from_json(&signed()).unwrap().verify("7000000001:other", at(1_700_000_100), DAY), Err(LoginError::Forged));
        let mut added = signed();
        added["last_name"] = json!("Smith");
        assert_eq!(LoginData::from_json(&added).unwrap().verify(TOKEN, at(1_700_000_100), DAY), Err(LoginError::Forged));
        let mut not_hex = signed();
        not_hex["hash"] = json!("zz");
        assert_eq!(LoginData::from_json(&not_hex).unwrap().verify(TOKEN, at(1_700_000_100), DAY), Err(LoginError::Forged));
    }

    #[test]
    fn refuses_stale_future_and_missing_data() {
        let data = LoginData::from_json(&signed()).unwrap();
        assert!(matches!(data.verify(TOKEN, at(1_700_000_000 + 86_401), DAY), Err(LoginError::Stale { .. })));
        assert!(data.verify(TOKEN, at(1_700_000_000 + 86_400), DAY).is_ok(), "exactly the maximum age is fine");
        assert_eq!(data.verify(TOKEN, at(1_700_000_000 - 61), DAY), Err(LoginError::FromTheFuture));
        assert_eq!(LoginData::default().verify(TOKEN, at(0), DAY), Err(LoginError::Missing));
        assert!(matches!(LoginData::from_json(&json!("x")), Err(LoginError::Malformed(_))));
    }
}
