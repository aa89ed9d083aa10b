//! `reconciliation.run`: [`reconcile`] then [`raise_alerts`], for the daily schedule.

use super::{raise_alerts, reconcile, ReconcileError, Sources};
use crate::{changenow::ChangeNowClient, ethereum::HotWallet};
use alloy::primitives::Address;
use sqlx::PgPool;
use std::{sync::Arc, time::Duration};
use temporalio_common::error::ApplicationFailure;
use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};
use tracing::warn;
use workflows::activity_definitions::{Reconcile, ReconcileRequest, ReconcileSummary};

/// Every difference is an alert; the summary lists the first ones.
const MAX_DIFFERENCES_IN_RESULT: usize = 50;

pub struct ReconciliationActivities {
    pool: PgPool,
    wallet: Arc<HotWallet>,
    changenow: ChangeNowClient,
    usdt_contract: Option<Address>,
    usdc_contract: Option<Address>,
}

impl ReconciliationActivities {
    pub fn new(
        pool: PgPool,
        wallet: Arc<HotWallet>,
        changenow: ChangeNowClient,
        usdt_contract: Option<Address>,
        usdc_contract: Option<Address>,
    ) -> Self {
        Self { pool, wallet, changenow, usdt_contract, usdc_contract }
    }
}

#[activities]
impl ReconciliationActivities {
    #[activity(definition = Reconcile)]
    pub async fn reconcile(self: Arc<Self>, _ctx: ActivityContext, request: ReconcileRequest) -> Result<ReconcileSummary, ActivityError> {
        // Every failure here is something away (node, ChangeNow, database): retried.
        let retry = |e: ReconcileError| ActivityError::application(ApplicationFailure::new(e));
        let sources = Sources {
            wallet: &self.wallet,
            changenow: Some(&self.changenow),
            usdt_contract: self.usdt_contract,
            usdc_contract: self.usdc_contract,
        };
        let report = reconcile(&self.pool, &sources, Duration::from_secs(request.window_secs)).await.map_err(retry)?;
        let raised = raise_alerts(&self.pool, &report).await.map_err(|e| retry(e.into()))?;
        for difference in &report.differences {
            warn!(check = difference.check.as_str(), subject = %difference.subject, alert = true, "{}", difference.message);
        }
        Ok(ReconcileSummary {
            intents_checked: report.intents_checked as u32,
            exchanges_checked: report.exchanges_checked as u32,
            batches_checked: report.batches_checked as u32,
            // The first ones only: the result goes into the workflow's history.
            differences: report
                .differences
                .iter()
                .take(MAX_DIFFERENCES_IN_RESULT)
                .map(|d| format!("[{}] {}: {}", d.check.as_str(), d.subject, d.message))
                .collect(),
            differences_found: report.differences.len() as u32,
            alerts_raised: raised as u32,
        })
    }
}
