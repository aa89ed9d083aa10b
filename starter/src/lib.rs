//! The starter: the NOWPayments webhook server and the operator CLI.
//! A library as well as a binary so the integration tests drive the very same server.

pub mod api;
pub mod cli;
pub mod ipn;
pub mod metrics;
pub mod pages;
pub mod redriver;
pub mod signature;
pub mod temporal_gateway;
pub mod wallet_address;
pub mod webhook;
pub mod workflow_launcher;
