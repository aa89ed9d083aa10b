//! "Log in with Telegram" on the pages: Telegram's Login Widget in production, the sandbox's login
//! page locally. Both hand back the same signed fields in the query of a redirect to `/register`;
//! the page verifies them and carries them, unchanged, in the form's hidden fields, so the POST is
//! verified again (nothing is kept on the server between the two).

use crate::api::{channel_proof, ApiError, ApiState};
use activities::telegram::login::LoginData;
use axum::http::{header, HeaderMap};

/// How the page offers to log in.
pub enum TelegramLogin {
    Widget { bot_username: String, auth_url: String },
    Sandbox { login_url: String },
    Off,
}

/// Telegram's widget loads its script from telegram.org and opens oauth.telegram.org in a frame.
pub const WIDGET_CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'self'; script-src 'self' https://telegram.org; \
     frame-src https://oauth.telegram.org; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The verified user, with the fields to carry on.
pub struct LoggedIn {
    pub name: String,
    pub id: i64,
    pub fields: Vec<(String, String)>,
}

pub fn choice(state: &ApiState, headers: &HeaderMap) -> TelegramLogin {
    let telegram = &state.telegram;
    if telegram.bot_token.is_none() {
        return TelegramLogin::Off;
    }
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).filter(|h| h.bytes().all(|b| b.is_ascii_graphic()));
    let auth_url = format!("http://{}/register", host.unwrap_or("127.0.0.1"));
    if telegram.is_telegram_itself() {
        return match &telegram.bot_username {
            Some(bot) => TelegramLogin::Widget { bot_username: bot.clone(), auth_url },
            None => TelegramLogin::Off,
        };
    }
    let base = telegram.api_url.as_str().trim_end_matches('/');
    let return_to: String = url_encode(&auth_url);
    TelegramLogin::Sandbox { login_url: format!("{base}/sim/telegram/login?return_to={return_to}") }
}

fn url_encode(text: &str) -> String {
    serde_urlencoded::to_string([("x", text)]).map(|s| s[2..].to_owned()).unwrap_or_default()
}

/// The Telegram fields among `pairs`; `None` when there are none (not logged in yet).
pub fn login_data(pairs: &[(String, String)]) -> Option<LoginData> {
    let data = LoginData::from_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    (!data.is_empty()).then_some(data)
}

pub fn verify(state: &ApiState, data: &LoginData) -> Result<(LoggedIn, activities::telegram::login::TelegramUser), ApiError> {
    let user = channel_proof::verified_pairs(state, data)?;
    let logged_in =
        LoggedIn { name: user.display_name(), id: user.id, fields: data.0.iter().map(|(k, v)| (k.clone(), v.clone())).collect() };
    Ok((logged_in, user))
}
