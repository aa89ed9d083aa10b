//! Side effects, grouped by the system they touch. Each activity does one thing, idempotently:
//! assume it runs twice and that the process dies between any two lines.

pub mod benchmark;
pub mod config;
pub mod db;

pub use benchmark::BenchmarkActivitiesImpl;
pub use config::{Config, ConfigError};
pub use db::payment_ledger::PaymentLedgerActivities;
