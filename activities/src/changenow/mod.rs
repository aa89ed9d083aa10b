//! ChangeNow API v2: the wire format ([`api`]), an HTTP client ([`ChangeNowClient`]) and the
//! `changenow.*` activities built on it.
//!
//! The same wire types are served by the ChangeNow simulator, so the two can never drift apart
//! on field names; amounts are read from JSON numbers or strings into `Decimal` without ever
//! passing through binary floating point.

pub mod activities;
pub mod amount;
pub mod api;
mod client;
pub mod stablecoin_price;

pub use activities::ChangeNowActivities;
pub use client::{ChangeNowClient, ChangeNowError, REQUEST_TIMEOUT};
