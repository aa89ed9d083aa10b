//! Proof that whoever registers a channel owns it: Telegram login data signed for the platform's
//! bot (401 when missing, forged or stale), then `getChatMember` saying `creator` or
//! `administrator` (403 otherwise). Nothing is stored before both hold.

use super::{ApiError, ApiState};
use activities::telegram::{
    channel_owner::{self, Ownership, OwnershipError},
    login::{LoginData, TelegramUser},
};
use chrono::Utc;
use serde_json::Value;

pub const FIELD: &str = "telegram_auth";

/// The user Telegram vouches for in `telegram_auth`.
pub fn verified_user(state: &ApiState, telegram_auth: Option<&Value>) -> Result<TelegramUser, ApiError> {
    let token = state.telegram.bot_token.as_ref().ok_or_else(registration_off)?;
    let data = match telegram_auth {
        None | Some(Value::Null) => LoginData::default(),
        Some(value) => LoginData::from_json(value).map_err(|e| ApiError::unauthorized_in(FIELD, e.to_string()))?,
    };
    verify(state, &data, token.expose())
}

/// The same for data that came as form or query pairs (the pages).
pub fn verified_pairs(state: &ApiState, data: &LoginData) -> Result<TelegramUser, ApiError> {
    let token = state.telegram.bot_token.as_ref().ok_or_else(registration_off)?;
    verify(state, data, token.expose())
}

fn verify(state: &ApiState, data: &LoginData, token: &str) -> Result<TelegramUser, ApiError> {
    data.verify(token, Utc::now(), state.telegram.auth_max_age).map_err(|e| {
        tracing::info!(reason = %e, "registration refused: Telegram login data not accepted");
        ApiError::unauthorized_in(FIELD, e.to_string())
    })
}

/// 403 unless Telegram says `user` is the channel's creator or an administrator.
pub async fn require_owner(state: &ApiState, user: &TelegramUser, channel_id: &str) -> Result<(), ApiError> {
    let bot = state.telegram.bot().ok_or_else(registration_off)?;
    match channel_owner::check(&bot, channel_id, user.id).await {
        Ok(Ownership::Owner) => Ok(()),
        Ok(Ownership::NotOwner(status)) => {
            tracing::info!(client_id = channel_id, telegram_user = user.id, status, "registration refused: not an owner of the channel");
            Err(ApiError::forbidden_in(
                FIELD,
                format!("Telegram says {} is not an owner or administrator of channel {channel_id} ({status})", user.display_name()),
            ))
        }
        Err(e @ OwnershipError::NotAChannelId(_)) => Err(ApiError::invalid("client_id", e.to_string())),
        Err(e @ OwnershipError::ChannelNotVisible(_)) => Err(ApiError::forbidden_in(FIELD, e.to_string())),
        Err(e @ OwnershipError::Unavailable(_)) => {
            tracing::warn!(client_id = channel_id, error = %e, "registration paused: Telegram unavailable");
            Err(ApiError::unavailable(format!("{e}; nothing was stored, try again in a minute")))
        }
    }
}

fn registration_off() -> ApiError {
    ApiError::unavailable("registration is off: the platform has no Telegram bot configured (TELEGRAM_BOT_TOKEN)")
}
