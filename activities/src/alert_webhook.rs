//! `alerts.deliver_to_webhook`: each stored alert POSTed once to `ALERT_WEBHOOK_URL` as DESIGN.md's
//! JSON, oldest first. At least once: an alert is marked delivered only after a 2xx, so a
//! receiver that is down gets it later (Temporal's retries within the run, then the next run of
//! the schedule); a receiver that answered but whose 2xx was lost gets it twice and dedupes by
//! `alert_id`.

use crate::db::alerts::{self, Alert};
use sqlx::PgPool;
use std::{sync::Arc, time::Duration};
use temporalio_common::error::ApplicationFailure;
use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};
use tracing::{info, warn};
use workflows::activity_definitions::{AlertDeliveryReport, DeliverToWebhook};

/// Alerts sent per call; more wait for the next minute's run.
const PER_CALL: i64 = 100;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum AlertDeliveryError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// Retryable: the receiver may come back.
    #[error("the alert receiver did not take alert {alert_id}: {reason}")]
    Receiver { alert_id: i64, reason: String },
}

/// DESIGN.md's alert JSON.
pub fn payload(alert: &Alert) -> serde_json::Value {
    let mut details = match &alert.details {
        serde_json::Value::Object(map) => map.clone(),
        _ => serde_json::Map::new(),
    };
    details.insert("subject".to_owned(), alert.subject.clone().into());
    serde_json::json!({
        "alert_id": alert.alert_id,
        "kind": alert.kind,
        "severity": alert.severity,
        "summary": alert.message,
        "details": details,
        "raised_at": alert.raised_at.to_rfc3339(),
    })
}

pub struct AlertWebhookActivities {
    pool: PgPool,
    url: Option<String>,
    http: reqwest::Client,
}

impl AlertWebhookActivities {
    pub fn new(pool: PgPool, url: Option<String>) -> Self {
        let http = reqwest::Client::builder().timeout(REQUEST_TIMEOUT).build().expect("a default reqwest client");
        Self { pool, url, http }
    }

    pub async fn deliver(&self) -> Result<AlertDeliveryReport, AlertDeliveryError> {
        let Some(url) = &self.url else {
            return Ok(AlertDeliveryReport::default());
        };
        let pending = alerts::undelivered(&self.pool, PER_CALL).await?;
        let mut report = AlertDeliveryReport { configured: true, delivered: 0, undelivered: pending.len() as u32 };
        for alert in &pending {
            let answer = self.http.post(url).json(&payload(alert)).send().await;
            let reason = match answer {
                Ok(response) if response.status().is_success() => {
                    alerts::mark_delivered(&self.pool, alert.alert_id).await?;
                    info!(alert_id = alert.alert_id, kind = %alert.kind, "alert delivered");
                    report.delivered += 1;
                    report.undelivered -= 1;
                    continue;
                }
                Ok(response) => format!("answered {}", response.status()),
                Err(e) => format!("unreachable: {e}"),
            };
            alerts::mark_delivery_failed(&self.pool, alert.alert_id, &reason).await?;
            warn!(alert_id = alert.alert_id, %reason, "alert not delivered; retried later");
            // Later alerts wait too: the receiver sees them in the order they were raised.
            return Err(AlertDeliveryError::Receiver { alert_id: alert.alert_id, reason });
        }
        Ok(report)
    }
}

#[activities]
impl AlertWebhookActivities {
    #[activity(definition = DeliverToWebhook)]
    pub async fn deliver_to_webhook(self: Arc<Self>, _ctx: ActivityContext, _unit: ()) -> Result<AlertDeliveryReport, ActivityError> {
        self.deliver().await.map_err(|e| ActivityError::application(ApplicationFailure::new(e)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_payload_has_designs_fields_and_the_subject_in_its_details() {
        let alert = Alert {
            alert_id: 7,
            kind: "stablecoin_depeg".into(),
            severity: "critical".into(),
            subject: "usdt".into(),
            message: "USDT trades at 0.97 USD".into(),
            details: serde_json::json!({"usd_price": "0.97"}),
            raised_at: chrono::DateTime::from_timestamp(1_790_000_000, 0).unwrap(),
        };
        let json = payload(&alert);
        let mut keys: Vec<&str> = json.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort();
        assert_eq!(keys, ["alert_id", "details", "kind", "raised_at", "severity", "summary"]);
        assert_eq!(json["alert_id"], 7);
        assert_eq!(json["details"]["subject"], "usdt");
        assert_eq!(json["details"]["usd_price"], "0.97");
        assert_eq!(json["raised_at"], "2026-09-21T14:13:20+00:00");
    }
}
