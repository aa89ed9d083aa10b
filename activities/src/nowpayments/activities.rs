//! `nowpayments.get_payment`: NOWPayments' record of a payment, read before it is routed. No side
//! effect, so running it twice is harmless.

use super::client::NowPaymentsClient;
use std::sync::Arc;
use temporalio_common::error::ApplicationFailure;
use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};
use tracing::{info, warn};
use workflows::activity_definitions::{GetPayment, RecordLookup};

pub struct NowPaymentsActivities {
    client: NowPaymentsClient,
}

impl NowPaymentsActivities {
    pub fn new(client: NowPaymentsClient) -> Self {
        Self { client }
    }
}

#[activities]
impl NowPaymentsActivities {
    #[activity(definition = GetPayment)]
    pub async fn get_payment(self: Arc<Self>, _ctx: ActivityContext, payment_id: i64) -> Result<RecordLookup, ActivityError> {
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
            Err(e) if !e.is_retryable() => Ok(RecordLookup::Unreadable(e.to_string())),
            Err(e) => {
                warn!(payment_id, error = %e, "NOWPayments could not be asked; will retry");
                Err(ActivityError::application(ApplicationFailure::new(e)))
            }
        }
    }
}
