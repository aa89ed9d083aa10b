//! Whether a Telegram user owns a channel: `getChatMember(chat_id = channel, user_id)` says
//! `creator` or `administrator` (the platform's bot is an administrator of every paid channel,
//! so it may ask).

use teloxide_core::{
    requests::Requester,
    types::{ChatId, ChatMemberKind, UserId},
    ApiError, Bot, RequestError,
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ownership {
    /// `creator` or `administrator`.
    Owner,
    /// Any other status (`member`, `left`, `kicked`, ...), named as Telegram names it.
    NotOwner(&'static str),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OwnershipError {
    #[error("'{0}' is not a Telegram channel id (a negative number such as -1001234567890)")]
    NotAChannelId(String),
    #[error("the platform's bot cannot see channel {0}: add the bot to the channel as an administrator, then try again")]
    ChannelNotVisible(String),
    /// Telegram did not answer, or answered with an error that says nothing about the user; the
    /// text never holds the request's URL (it carries the bot token).
    #[error("Telegram cannot be asked now: {0}")]
    Unavailable(String),
}

/// Asks Telegram whether `user_id` owns `channel_id`.
pub async fn check(bot: &Bot, channel_id: &str, user_id: i64) -> Result<Ownership, OwnershipError> {
    let chat: i64 =
        channel_id.trim().parse().ok().filter(|id| *id < 0).ok_or_else(|| OwnershipError::NotAChannelId(channel_id.to_owned()))?;
    let user = u64::try_from(user_id).map_err(|_| OwnershipError::Unavailable("the user id is not a Telegram user id".into()))?;
    match bot.get_chat_member(ChatId(chat), UserId(user)).await {
        Ok(member) => Ok(match member.kind {
            ChatMemberKind::Owner(_) | ChatMemberKind::Administrator(_) => Ownership::Owner,
            ChatMemberKind::Member(_) => Ownership::NotOwner("member"),
            ChatMemberKind::Restricted(_) => Ownership::NotOwner("restricted"),
            ChatMemberKind::Left => Ownership::NotOwner("left"),
            ChatMemberKind::Banned(_) => Ownership::NotOwner("kicked"),
        }),
        Err(RequestError::Api(ApiError::ChatNotFound | ApiError::BotKicked)) => {
            Err(OwnershipError::ChannelNotVisible(channel_id.to_owned()))
        }
        Err(RequestError::Api(ApiError::UserNotFound)) => Ok(Ownership::NotOwner("unknown to Telegram")),
        Err(e) => Err(OwnershipError::Unavailable(describe(&e))),
    }
}

/// A request error in words that never include the request's URL (and so never the token).
pub fn describe(error: &RequestError) -> String {
    match error {
        RequestError::Network(e) => {
            let kind = if e.is_timeout() {
                "timed out"
            } else if e.is_connect() {
                "connection refused or unreachable"
            } else {
                "network error"
            };
            format!("Telegram's Bot API: {kind}")
        }
        RequestError::RetryAfter(secs) => format!("Telegram asks to retry after {} s", secs.seconds()),
        RequestError::Api(api) => format!("Telegram answered: {api}"),
        RequestError::InvalidJson { .. } => "Telegram's answer could not be read".into(),
        RequestError::MigrateToChatId(id) => format!("the chat moved to {id}"),
        RequestError::Io(_) => "an I/O error talking to Telegram".into(),
    }
}
