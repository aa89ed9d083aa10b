//! Postgres: the ledger of payments, accumulations and batches.
//!
//! `payment_ledger` holds the activities; `clients` and `payments` are the plain queries the
//! webhook and the operator CLI share with them.

pub mod alert_rules;
pub mod alerts;
pub mod auto_threshold;
pub mod batch_outcomes;
pub mod client_status;
pub mod clients;
pub mod conversion_ledger;
pub mod instant_payout_ledger;
pub mod ledger_gauges;
pub mod operator_dashboard;
pub mod operator_lists;
pub mod payment_ledger;
pub mod payment_verification;
pub mod payments;
pub mod payout_approval;
pub mod payout_ledger;
pub mod payout_limits;
pub mod settings;
pub mod stranded_batches;
pub mod unroutable_ipns;

use sqlx::{postgres::PgPoolOptions, PgPool};
use std::time::Duration;

/// The project's migrations, embedded so every binary (and every test database) can apply them.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

/// Opens a pool without failing when Postgres is briefly away: connections are made on demand.
pub async fn connect(database_url: &str) -> Result<PgPool, sqlx::Error> {
    PgPoolOptions::new().max_connections(16).acquire_timeout(Duration::from_secs(5)).connect(database_url).await
}
