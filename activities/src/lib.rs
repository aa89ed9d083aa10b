//! Side effects, grouped by the system they touch. Each activity does one thing, idempotently:
//! assume it runs twice and that the process dies between any two lines.

pub mod alert_webhook;
pub mod benchmark;
pub mod changenow;
pub mod config;
pub mod db;
pub mod ethereum;
pub mod metrics;
pub mod nowpayments;
pub mod payout_starts;
pub mod polling;
pub mod reconciliation;
pub mod telegram;

pub use benchmark::BenchmarkActivitiesImpl;
pub use changenow::ChangeNowActivities;
pub use config::{Config, ConfigError};
pub use db::conversion_ledger::ConversionLedgerActivities;
pub use db::instant_payout_ledger::InstantPayoutLedgerActivities;
pub use db::payment_ledger::PaymentLedgerActivities;
pub use db::payout_ledger::PayoutLedgerActivities;
pub use db::stranded_batches::StrandedBatchActivities;
pub use ethereum::EthereumActivities;
