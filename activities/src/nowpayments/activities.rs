//! `nowpayments.get_payment`: NOWPayments' record of a payment, read before it is routed. No side
//! effect on NOWPayments, so running it twice is harmless; after [`ALERT_AFTER_ATTEMPTS`] failed
//! tries it raises one `nowpayments_unreachable` alert (while none is open).

use super::client::NowPaymentsClient;
use crate::db::alerts::{self, AlertKind, NewAlert};
use sqlx::PgPool;
use std::sync::Arc;
use temporalio_common::error::ApplicationFailure;
use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};
use tracing::{info, warn};
use workflows::activity_definitions::{GetPayment, RecordLookup};

/// With the retry policy's backoff (1 s doubling), about a minute of failures.
pub const ALERT_AFTER_ATTEMPTS: u32 = 6;

pub struct NowPaymentsActivities {
    client: NowPaymentsClient,
    pool: PgPool,
}

impl NowPaymentsActivities {
    pub fn new(client: NowPaymentsClient, pool: PgPool) -> Self {
        Self { client, pool }
    }

    /// One open alert for the outage, whichever payment noticed it first. A failure to store it
    /// is logged: the read is retried either way.
    async fn alert_unreachable(&self, payment_id: i64, error: &str) {
        let message = format!(
            "NOWPayments' API has not answered payment {payment_id}'s record for {ALERT_AFTER_ATTEMPTS} tries ({error}). \
             Payments wait `received` and nothing is paid until it answers; check NOWPAYMENTS_API_URL and \
             NOWPAYMENTS_API_KEY, and `starter payment show {payment_id}`."
        );
        let raised = async {
            let mut tx = self.pool.begin().await?;
            let alert = NewAlert {
                dedupe_key: "nowpayments_unreachable".into(),
                kind: AlertKind::NowPaymentsUnreachable,
                subject: "NOWPayments API".into(),
                message: &message,
            };
            alerts::raise_unless_open(&mut tx, &alert).await?;
            tx.commit().await
        };
        if let Err(e) = raised.await {
            warn!(payment_id, error = %e, "cannot store the nowpayments_unreachable alert");
        }
    }
}

#[activities]
impl NowPaymentsActivities {
    #[activity(definition = GetPayment)]
    pub async fn get_payment(self: Arc<Self>, ctx: ActivityContext, payment_id: i64) -> Result<RecordLookup, ActivityError> {
        match self.client.payment(payment_id).await {
            Ok(Some(record)) if record.payment_id != payment_id => {
                Ok(RecordLookup::Unreadable(format!("asked for payment {payment_id}, NOWPayments answered payment {}", record.payment_id)))
            }
            Ok(Some(record)) => {
                info!(payment_id, payment_status = %record.payment_status, "NOWPayments' record read");
                Ok(RecordLookup::Found(record.facts()))
            }
            Ok(None) => {
                warn!(payment_id, "NOWPayments does not know this payment");
                Ok(RecordLookup::Unknown)
            }
            Err(e) => {
                let attempt = ctx.info().attempt;
                warn!(payment_id, attempt, error = %e, "NOWPayments could not be asked; will retry");
                if attempt == ALERT_AFTER_ATTEMPTS {
                    self.alert_unreachable(payment_id, &e.to_string()).await;
                }
                Err(ActivityError::application(ApplicationFailure::new(e)))
            }
        }
    }
}
