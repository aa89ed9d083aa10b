//! Telegram's settings: `TELEGRAM_BOT_TOKEN` (a secret), `TELEGRAM_API_URL`,
//! `TELEGRAM_BOT_USERNAME` and `TELEGRAM_AUTH_MAX_AGE_SECS`.

use crate::config::{ConfigError, Secret};
use std::time::Duration;
use teloxide_core::Bot;

/// Telegram's own Bot API; locally the sandbox stands in for it.
pub const TELEGRAM_API: &str = "https://api.telegram.org";

#[derive(Debug, Clone)]
pub struct TelegramConfig {
    /// `TELEGRAM_BOT_TOKEN`: the platform bot's token. Without it no one can prove a channel is
    /// theirs, so public registration is off.
    pub bot_token: Option<Secret>,
    /// `TELEGRAM_API_URL` (default Telegram's own).
    pub api_url: url::Url,
    /// `TELEGRAM_BOT_USERNAME`: the bot the Login Widget names (production pages need it).
    pub bot_username: Option<String>,
    /// `TELEGRAM_AUTH_MAX_AGE_SECS` (default 86400): how old login data may be.
    pub auth_max_age: Duration,
}

impl TelegramConfig {
    pub fn from_lookup(get: &impl Fn(&'static str) -> Option<String>) -> Result<Self, ConfigError> {
        let invalid = |name: &'static str, reason: String| ConfigError::Invalid { name, reason };
        let api_text = get("TELEGRAM_API_URL").unwrap_or_else(|| TELEGRAM_API.to_owned());
        let api_url = url::Url::parse(api_text.trim().trim_end_matches('/'))
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .ok_or_else(|| invalid("TELEGRAM_API_URL", format!("'{api_text}' is not an http(s) URL")))?;
        let max_age: u64 =
            match get("TELEGRAM_AUTH_MAX_AGE_SECS") {
                None => 86_400,
                Some(text) => text.trim().parse().ok().filter(|secs| (60..=30 * 86_400).contains(secs)).ok_or_else(|| {
                    invalid("TELEGRAM_AUTH_MAX_AGE_SECS", format!("'{text}' is not a number of seconds from 60 to 2592000"))
                })?,
            };
        let bot_token = match get("TELEGRAM_BOT_TOKEN") {
            None => None,
            Some(token) if looks_like_a_bot_token(token.trim()) => Some(Secret::new(token.trim())),
            Some(_) => return Err(invalid("TELEGRAM_BOT_TOKEN", "is not a bot token (digits, a colon, then the secret)".into())),
        };
        Ok(Self {
            bot_token,
            api_url,
            bot_username: get("TELEGRAM_BOT_USERNAME").map(|u| u.trim().trim_start_matches('@').to_owned()),
            auth_max_age: Duration::from_secs(max_age),
        })
    }

    /// Whether the pages use Telegram's own Login Widget (else the sandbox's login page).
    pub fn is_telegram_itself(&self) -> bool {
        self.api_url.host_str() == Some("api.telegram.org")
    }

    /// The Bot API client, when a token is set.
    pub fn bot(&self) -> Option<Bot> {
        self.bot_token.as_ref().map(|token| Bot::new(token.expose()).set_api_url(self.api_url.clone()))
    }
}

fn looks_like_a_bot_token(token: &str) -> bool {
    token.split_once(':').is_some_and(|(id, secret)| !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) && secret.len() >= 8)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from(pairs: &[(&'static str, &'static str)]) -> Result<TelegramConfig, ConfigError> {
        let pairs = pairs.to_vec();
        TelegramConfig::from_lookup(&move |name| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string()))
    }

    #[test]
    fn defaults_to_telegram_itself_without_a_token() {
        let config = from(&[]).unwrap();
        assert!(config.is_telegram_itself() && config.bot_token.is_none() && config.bot().is_none());
        assert_eq!(config.auth_max_age, Duration::from_secs(86_400));
    }

    #[test]
    fn refuses_what_cannot_work_and_hides_the_token() {
        let named = |pairs: &[(&'static str, &'static str)]| match from(pairs) {
            Err(ConfigError::Invalid { name, .. }) => name,
            other => panic!("{other:?}"),
        };
        assert_eq!(named(&[("TELEGRAM_BOT_TOKEN", "not-a-token")]), "TELEGRAM_BOT_TOKEN");
        assert_eq!(named(&[("TELEGRAM_API_URL", "ftp://x")]), "TELEGRAM_API_URL");
        assert_eq!(named(&[("TELEGRAM_AUTH_MAX_AGE_SECS", "5")]), "TELEGRAM_AUTH_MAX_AGE_SECS");
        let config = from(&[("TELEGRAM_BOT_TOKEN", "123:secret-part"), ("TELEGRAM_API_URL", "http://127.0.0.1:8090")]).unwrap();
        assert!(!config.is_telegram_itself());
        assert!(!format!("{config:?}").contains("secret-part"));
    }
}
