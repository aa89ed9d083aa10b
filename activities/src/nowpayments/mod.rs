//! NOWPayments' API: the wire format of a payment record ([`api`]), an HTTP client
//! ([`NowPaymentsClient`]) and the `nowpayments.*` activity that reads a payment's record before
//! it is routed. The sandbox serves the same wire types, so the two cannot drift apart.

pub mod activities;
pub mod api;
mod client;
pub mod signature;

pub use activities::NowPaymentsActivities;
pub use client::{NowPaymentsClient, NowPaymentsError, REQUEST_TIMEOUT};
