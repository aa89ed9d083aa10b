//! Telegram, as the engine uses it: who a user is (the Login Widget's signed data, [`login`]),
//! whether they own a channel (`getChatMember`, [`channel_owner`]), and the Bot API client both
//! go through ([`TelegramConfig::bot`]).

pub mod channel_owner;
pub mod config;
pub mod login;

pub use config::TelegramConfig;
